// Command spawner is a test plugin that starts a long-lived helper
// process sharing its stdout and stderr (as a careless plugin would), and
// writes the helper's process ID to the file named by
// REFPLUG_TEST_PIDFILE, then serves contract.NewService.
package main

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/refplug/refplug/plugin"
	"github.com/refplug/refplug/testdata/contract"
)

func main() {
	helper := exec.Command("sleep", "120")
	helper.Stdout, helper.Stderr = os.Stdout, os.Stderr
	if err := helper.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "spawner:", err)
		os.Exit(1)
	}
	if f := os.Getenv("REFPLUG_TEST_PIDFILE"); f != "" {
		os.WriteFile(f, []byte(fmt.Sprint(helper.Process.Pid)), 0o644)
	}
	plugin.Serve(map[string]any{"svc": contract.NewService(plugin.Stats)})
}
