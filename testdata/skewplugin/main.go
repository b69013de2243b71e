// Command skewplugin is a plugin built from an older contract
// (testdata/skew/contract), for the version-skew tests.
package main

import (
	"github.com/refplug/refplug/plugin"
	"github.com/refplug/refplug/testdata/skew/contract"
)

func main() {
	plugin.Serve(map[string]any{"factory": contract.Factory{}, "widener": contract.Widener{}})
}
