package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

type secret string

func (secret) LogValue() slog.Value { return slog.StringValue("***") }

// TestSlogHandler: each record becomes one hclog entry at the matching
// level, with slog's attributes as fields: groups qualify keys, an
// unnamed group is inline, an empty attribute is dropped, a LogValuer is
// resolved, and attributes from With stay with the handler they were
// added to.
func TestSlogHandler(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	h := &slogHandler{l: hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: &buf, JSONFormat: true})}
	l := slog.New(h)
	base := l.With("svc", "a")
	base.WithGroup("req").With("id", 7).Info("one", "pw", secret("x"), slog.Group("", "inline", 1), slog.Attr{}, slog.Group("empty"))
	base.Warn("two", slog.Group("g", slog.Group("h", "k", true)), "d", time.Second)
	l.Log(ctx, slog.LevelDebug-1, "trace, dropped at debug")
	l.Debug("three")
	l.Log(ctx, slog.LevelError+4, "four")
	if l.Enabled(ctx, slog.LevelDebug-1) || !l.Enabled(ctx, slog.LevelDebug) {
		t.Error("Enabled does not follow the logger's level (Debug)")
	}

	var got []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		delete(m, "@timestamp")
		got = append(got, m)
	}
	want := []map[string]any{
		{"@level": "info", "@message": "one", "svc": "a", "req.id": 7.0, "req.pw": "***", "req.inline": 1.0},
		{"@level": "warn", "@message": "two", "svc": "a", "g.h.k": true, "d": "1s"},
		{"@level": "debug", "@message": "three"},
		{"@level": "error", "@message": "four"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d:\n%s", len(got), len(want), buf.String())
	}
	for i := range want {
		if g, w := fmtMap(got[i]), fmtMap(want[i]); g != w {
			t.Errorf("entry %d: got %s, want %s", i, g, w)
		}
	}
}

func fmtMap(m map[string]any) string {
	b, _ := json.Marshal(m) // keys sorted
	return string(b)
}
