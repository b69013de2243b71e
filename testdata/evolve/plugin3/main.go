// Command plugin3 serves version 3 of the evolution tests' contract
// (testdata/evolve/v3/contract) as "store".
package main

import (
	"github.com/refplug/refplug/plugin"
	"github.com/refplug/refplug/refbroker"
	"github.com/refplug/refplug/testdata/evolve/v3/contract"
)

func main() {
	refbroker.RegisterTypeName("evolve.Note", contract.Note{})
	plugin.Serve(map[string]any{"store": contract.NewStore()})
}
