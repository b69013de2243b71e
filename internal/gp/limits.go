package gp

import (
	"fmt"

	"github.com/refplug/refplug/refbroker"
)

// LimitProblems names the limits in o (as host's and plugin's With…
// options set them) that were given values no limit can take: a negative
// size or count, or a negative call timeout. Zero means the default.
func LimitProblems(o refbroker.Options) []string {
	var bad []string
	for _, l := range []struct {
		option string
		n      int
		def    string
	}{
		{"WithMaxMessageSize", o.MaxMessageSize, "64 MiB"},
		{"WithMaxConcurrentCalls", o.MaxConcurrentCalls, "1024"},
		{"WithMaxServedBytes", o.MaxServedBytes, "256 MiB"},
		{"WithMaxImports", o.MaxImports, "1,048,576"},
		{"WithMaxExports", o.MaxExports, "1,048,576"},
		{"WithMaxQueuedBytes", o.MaxQueuedBytes, "16 MiB"},
	} {
		if l.n < 0 {
			bad = append(bad, fmt.Sprintf("%s(%d): a limit cannot be negative (0 means the default, %s)", l.option, l.n, l.def))
		}
	}
	if o.CallTimeout < 0 {
		bad = append(bad, fmt.Sprintf("WithCallTimeout(%v): a timeout cannot be negative (0 means none)", o.CallTimeout))
	}
	return bad
}
