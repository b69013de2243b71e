// Command bigplugin serves the Mattermost-sized contract of
// testdata/bigapi: "api" (about 250 methods) and "hooks" (47), for the
// scale test.
package main

import (
	"github.com/refplug/refplug/plugin"
	"github.com/refplug/refplug/testdata/bigapi/api"
)

func main() {
	plugin.Serve(map[string]any{"api": api.NewAPI(), "hooks": api.NewHooks()})
}
