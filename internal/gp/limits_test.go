package gp

import (
	"strings"
	"testing"
	"time"

	"github.com/refplug/refplug/refbroker"
)

// TestLimitProblems: each negative limit is named with its option, its
// value and its default; zero (the default) and positive values pass, and
// the defaults quoted are refbroker's.
func TestLimitProblems(t *testing.T) {
	if bad := LimitProblems(refbroker.Options{}); len(bad) != 0 {
		t.Errorf("the zero Options: %q; want nothing", bad)
	}
	if bad := LimitProblems(refbroker.Options{MaxMessageSize: 1, MaxConcurrentCalls: 1, MaxServedBytes: 1, MaxImports: 1, MaxExports: 1, MaxQueuedBytes: 1, CallTimeout: time.Second}); len(bad) != 0 {
		t.Errorf("positive limits: %q; want nothing", bad)
	}
	bad := LimitProblems(refbroker.Options{MaxMessageSize: -5, MaxConcurrentCalls: -1, MaxServedBytes: -1, MaxImports: -1, MaxExports: -1, MaxQueuedBytes: -1, CallTimeout: -time.Second})
	want := []string{
		"WithMaxMessageSize(-5): a limit cannot be negative (0 means the default, 64 MiB)",
		"WithMaxConcurrentCalls(-1)", "WithMaxServedBytes(-1)", "WithMaxImports(-1)", "WithMaxExports(-1)", "WithMaxQueuedBytes(-1)",
		"WithCallTimeout(-1s): a timeout cannot be negative (0 means none)",
	}
	if len(bad) != len(want) {
		t.Fatalf("every limit negative: %q; want %d problems", bad, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(bad[i], w) {
			t.Errorf("problem %d = %q; want it to start %q", i, bad[i], w)
		}
	}
	// The defaults quoted are the ones refbroker applies.
	if refbroker.DefaultMaxMessageSize != 64<<20 || refbroker.DefaultMaxConcurrentCalls != 1024 || refbroker.DefaultMaxServedBytes != 256<<20 ||
		refbroker.DefaultMaxImports != 1<<20 || refbroker.DefaultMaxExports != 1<<20 || refbroker.DefaultMaxQueuedBytes != 16<<20 {
		t.Error("a refbroker default changed: update LimitProblems' messages")
	}
}
