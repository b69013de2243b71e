// Command svcplugin is the test plugin: it serves contract.NewService as
// "svc", and as "args" a Thing whose name is its command-line arguments.
package main

import (
	"os"
	"strings"

	"github.com/refplug/refplug/plugin"
	"github.com/refplug/refplug/testdata/contract"
)

type args struct{}

func (args) Name() string { return strings.Join(os.Args[1:], " ") }

func main() {
	plugin.Serve(map[string]any{"svc": contract.NewService(plugin.Stats), "args": args{}})
}
