// Command empty is a test plugin that gives plugin.Serve nothing to serve;
// with REFPLUG_TEST_VALUE_ROOT=1, an object whose methods have pointer
// receivers, served as a value (so it has none); with
// REFPLUG_TEST_NO_METHODS=1, data and a channel beside an object; with
// REFPLUG_TEST_BAD_VERSIONS=1, protocol versions (and a limit) Serve
// cannot take; with
// REFPLUG_TEST_STDOUT_FIRST=1, a line on stdout before Serve.
package main

import (
	"fmt"
	"os"

	"github.com/refplug/refplug/plugin"
)

type counter struct{ n int }

func (c *counter) Add(n int) (int, error) { c.n += n; return c.n, nil }

func main() {
	if os.Getenv("REFPLUG_TEST_VALUE_ROOT") == "1" {
		plugin.Serve(map[string]any{"counter": counter{}})
		return
	}
	if os.Getenv("REFPLUG_TEST_NO_METHODS") == "1" {
		plugin.Serve(map[string]any{"counter": &counter{}, "config": struct{ Name string }{"x"}, "events": make(chan int)})
		return
	}
	if os.Getenv("REFPLUG_TEST_STDOUT_FIRST") == "1" {
		fmt.Println("starting my plugin v1.2")
		plugin.Serve(map[string]any{"counter": &counter{}})
		return
	}
	if os.Getenv("REFPLUG_TEST_BAD_VERSIONS") == "1" {
		objs := map[string]any{"counter": &counter{}}
		plugin.Serve(objs, plugin.WithProtocolVersion(0), plugin.WithVersion(-2, objs), plugin.WithVersion(1, objs), plugin.WithMaxMessageSize(-1))
		return
	}
	plugin.Serve(map[string]any{})
}
