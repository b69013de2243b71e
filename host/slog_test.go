package host_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/internal/testutil"
)

// TestWithSlog: a host that logs with log/slog gets everything refplug,
// go-plugin and the plugin log (its hclog and slog entries) as slog
// records, at their levels and with their fields, the logger's name as
// "logger"; the plugin logs at the lowest level the host's handler takes.
func TestWithSlog(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		t.Run(level.String(), func(t *testing.T) {
			var out testutil.Buffer
			l := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: level}))
			c := load(t, "svcplugin", host.WithSlog(l))
			defer func() {
				if t.Failed() {
					t.Logf("the host's log:\n%s", out.String())
				}
			}()
			if err := dispenseSvc(t, c).Logs("m"); err != nil {
				t.Fatal(err)
			}
			records := func() []map[string]any {
				var rs []map[string]any
				for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
					var r map[string]any
					if json.Unmarshal([]byte(line), &r) == nil {
						rs = append(rs, r)
					}
				}
				return rs
			}
			// find reports whether a record has every key and value of want.
			find := func(want map[string]any) bool {
				for _, r := range records() {
					ok := true
					for k, v := range want {
						if r[k] != v {
							ok = false
						}
					}
					if ok {
						return true
					}
				}
				return false
			}
			want := []map[string]any{
				{"level": "INFO", "msg": "m", "logger": "svcplugin", "n": 2.0, "grp.a": true},
				{"level": "WARN", "msg": "m", "logger": "svcplugin"},
				{"level": "ERROR", "msg": "m", "logger": "svcplugin", "svc": 1.0, "g.err": "boom"},
				{"level": "INFO", "msg": "m via log", "logger": "svcplugin"},
			}
			debug := map[string]any{"level": "DEBUG", "msg": "m", "logger": "svcplugin", "g.at": "debug"}
			if level == slog.LevelDebug {
				want = append(want, debug)
			}
			testutil.Eventually(t, "the plugin's entries as slog records", func() bool {
				for _, w := range want {
					if !find(w) {
						return false
					}
				}
				return true
			})
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if level == slog.LevelInfo {
				for _, r := range records() {
					if r["level"] == "DEBUG" {
						t.Errorf("a host at Info got a debug record: %v", r)
					}
				}
			} else if !find(map[string]any{"level": "DEBUG", "msg": "plugin started"}) {
				t.Error("go-plugin's own debug entries are missing")
			}
		})
	}
}

// TestSlogLoggerLevels: the hclog logger WithSlog makes answers hclog's
// questions from the slog handler's level, SetLevel raises it, and its
// standard writer logs whole lines at the levels their prefixes name.
func TestSlogLoggerLevels(t *testing.T) {
	var out testutil.Buffer
	l := host.SlogLogger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if l.GetLevel() != hclog.Debug || l.IsTrace() || !l.IsDebug() {
		t.Errorf("level %v, IsTrace %v, IsDebug %v; want Debug, false, true", l.GetLevel(), l.IsTrace(), l.IsDebug())
	}
	n := l.Named("a").Named("b").With("k", 1)
	n.Info("hello", "x", 2)
	n.SetLevel(hclog.Warn)
	n.Info("dropped")
	if l.GetLevel() != hclog.Warn {
		t.Errorf("SetLevel on a derived logger: the base is at %v; want Warn (shared, as hclog's)", l.GetLevel())
	}
	w := l.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true})
	w.Write([]byte("[ERROR] half"))
	w.Write([]byte(" a line\n[INFO] below warn\n"))
	s := out.String()
	for _, want := range []string{`level=INFO msg=hello k=1 logger=a.b x=2`, `level=ERROR msg="half a line"`} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in:\n%s", want, s)
		}
	}
	for _, not := range []string{"dropped", "below warn"} {
		if strings.Contains(s, not) {
			t.Errorf("%q logged below the level SetLevel set:\n%s", not, s)
		}
	}
}
