// Command stubborn is a plugin that ignores the host's request to exit: it
// keeps running after plugin.Serve returns, so only a kill ends it.
package main

import (
	"time"

	"github.com/refplug/refplug/plugin"
	"github.com/refplug/refplug/testdata/contract"
)

func main() {
	plugin.Serve(map[string]any{"svc": contract.NewService(plugin.Stats)})
	time.Sleep(time.Hour)
}
