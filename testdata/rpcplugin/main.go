// Command rpcplugin serves baseline.Calc with hand-written go-plugin net/rpc
// glue, for the benchmarks' baseline.
package main

import (
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/refplug/refplug/internal/baseline"
)

func main() {
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: baseline.Handshake,
		Plugins:         goplugin.PluginSet{"calc": &baseline.Plugin{Impl: baseline.Impl{}}},
		Logger:          hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, JSONFormat: true}),
	})
}
