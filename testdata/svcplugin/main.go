// Command svcplugin is the test plugin: it serves contract.NewService as "svc".
package main

import (
	"github.com/refplug/refplug/plugin"
	"github.com/refplug/refplug/testdata/contract"
)

func main() {
	plugin.Serve(map[string]any{"svc": contract.NewService()})
}
