// Command empty is a test plugin that gives plugin.Serve nothing to serve.
package main

import "github.com/refplug/refplug/plugin"

func main() { plugin.Serve(map[string]any{}) }
