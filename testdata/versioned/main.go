// Command versioned is a test plugin with its own handshake cookie that
// serves a different "thing" under protocol versions 1 and 2.
package main

import "github.com/refplug/refplug/plugin"

type thing string

func (t thing) Name() string { return string(t) }

func main() {
	plugin.Serve(map[string]any{"thing": thing("version 1")},
		plugin.WithHandshake("REFPLUG_TEST_COOKIE", "versioned"),
		plugin.WithVersion(2, map[string]any{"thing": thing("version 2")}))
}
