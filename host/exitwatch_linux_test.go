package host_test

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/internal/testutil"
)

// TestExitWatchHoldsNoThread: the host watches each loaded plugin's exit
// (to end its descendants at once, and for Exited) without holding an OS
// thread per plugin: the watches wait in the runtime's poller.
func TestExitWatchHoldsNoThread(t *testing.T) {
	const n = 6
	for range n {
		load(t, "svcplugin")
	}
	testutil.Eventually(t, "every plugin's exit watch parked in the poller", func() bool {
		buf := make([]byte, 8<<20)
		parked, blocked := 0, 0
		for g := range strings.SplitSeq(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if !strings.Contains(g, "gp.AwaitExit(") {
				continue
			}
			if strings.Contains(g, "[IO wait") {
				parked++
			} else {
				blocked++
			}
		}
		return parked >= n && blocked == 0
	})
}

// TestCloseAfterThePluginExited: closing a client whose plugin has
// already exited (it crashed, or another host ended it) is quiet:
// go-plugin's Kill, whose quit can only fail then, logs no warning that
// the plugin "failed to exit gracefully" or could not be asked to. (It
// relies on the exit watch, Linux's: elsewhere the warnings stay.)
func TestCloseAfterThePluginExited(t *testing.T) {
	for name, opts := range map[string][]host.Option{
		"defaults":     nil,
		"reattachable": {host.WithReattachable(), host.WithAutoMTLS(false)},
	} {
		t.Run(name, func(t *testing.T) {
			var logs testutil.Buffer
			c, err := host.Load(filepath.Join(bin, "svcplugin"), append([]host.Option{host.WithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &logs}))}, opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			svc := dispenseSvc(t, c)
			svc.Exit(3) // fails: the plugin is gone
			testutil.Eventually(t, "the plugin to exit", c.Exited)
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if strings.Contains(logs.String(), "[WARN]") {
				t.Errorf("Close of a plugin that had exited logged a warning:\n%s", logs.String())
			}
		})
	}
}
