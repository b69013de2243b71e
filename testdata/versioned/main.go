// Command versioned is a test plugin with its own handshake cookie that
// serves a different "thing" under protocol versions 1 and 2 or, run with
// the argument "2-3", under versions 2 and 3 only.
package main

import (
	"os"

	"github.com/refplug/refplug/plugin"
)

type thing string

func (t thing) Name() string { return string(t) }

func main() {
	cookie := plugin.WithHandshake("REFPLUG_TEST_COOKIE", "versioned")
	if len(os.Args) > 1 && os.Args[1] == "2-3" {
		plugin.Serve(map[string]any{"thing": thing("version 2")}, cookie, plugin.WithProtocolVersion(2),
			plugin.WithVersion(3, map[string]any{"thing": thing("version 3")}))
		return
	}
	plugin.Serve(map[string]any{"thing": thing("version 1")},
		plugin.WithHandshake("REFPLUG_TEST_COOKIE", "versioned"),
		plugin.WithVersion(2, map[string]any{"thing": thing("version 2")}))
}
