package host_test

import (
	"runtime"
	"strings"
	"testing"

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
