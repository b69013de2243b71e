// Command webplugin serves contract.NewWeb as "web": an HTTP handler for a
// host's server.
package main

import (
	"github.com/refplug/refplug/plugin"
	"github.com/refplug/refplug/testdata/contract"
)

func main() {
	plugin.Serve(map[string]any{"web": contract.NewWeb()})
}
