package host

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestPluginLogLines: each kind of line a plugin writes to stderr, as
// pluginLog logs it (the test of a real plugin process is
// TestPluginStderrCannotHarmTheHost).
func TestPluginLogLines(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{`{"@message":"hi","@level":"info","@module":"p","n":1.5,"big":12345678901234567890,"s":"x y","o":{"a":[1,2]}}`, `[INFO]  p: hi: @module=p n=1.5 big=12345678901234567890 s="x y" o="map[a:[1 2]]"`},
		{`{"@message":"hi","@level":"error","@timestamp":"2026-11-28T10:00:00.000000Z"}`, `[ERROR] p: hi: timestamp=2026-11-28T10:00:00.000Z`},
		{`{"@message":"hi","@level":"info","@timestamp":"yesterday"}`, `[DEBUG] p: {"@message":"hi","@level":"info","@timestamp":"yesterday"}`},
		{`{"@message":["a"],"@level":"trace"}`, `[TRACE] p: ["a"]`},
		{`{"@message":"hi","@level":"off"}`, `[DEBUG] p: {"@message":"hi","@level":"off"}`},
		{`{"@message":"hi","@level":"info"} and more`, `[DEBUG] p: {"@message":"hi","@level":"info"} and more`},
		{`{"@message":"hi","@level":"info"`, `[DEBUG] p: {"@message":"hi","@level":"info"`},
		{`null`, `[DEBUG] p: null`},
		{`[1,2]`, `[DEBUG] p: [1,2]`},
		{`{"@message":"a","@message":"b","@level":"warn"}`, `[WARN]  p: b`},
		{`{"@message":"tab\there","@level":"info","k\nk":"v\u0001"}`, `[INFO]  p: tab	here: k\x0ak="v\x01"`},
		{"[TRACE] t", "[TRACE] p: [TRACE] t"},
		{"[INFO] i", "[INFO]  p: [INFO] i"},
		{"[ERROR] e", "[ERROR] p: [ERROR] e"},
		{"plain\r", "[DEBUG] p: plain"},
	} {
		var out bytes.Buffer
		p := newPluginLog(hclog.New(&hclog.LoggerOptions{Name: "p", Output: &out, Level: hclog.Trace, DisableTime: true}))
		p.Write([]byte(c.line + "\n"))
		if got := strings.TrimSuffix(out.String(), "\n"); got != c.want {
			t.Errorf("%q logged as\n\t%q; want\n\t%q", c.line, got, c.want)
		}
	}
	// Below the logger's level, nothing is logged.
	var info bytes.Buffer
	p := newPluginLog(hclog.New(&hclog.LoggerOptions{Name: "p", Output: &info, Level: hclog.Info, DisableTime: true}))
	p.Write([]byte("plain\n[DEBUG] d\n{\"@message\":\"m\",\"@level\":\"debug\"}\n[WARN] w\n"))
	if want := "[WARN]  p: [WARN] w\n"; info.String() != want {
		t.Errorf("at info level, logged\n%s; want\n%s", info.String(), want)
	}
	// After a panic's first line, lines without a level are errors.
	var out bytes.Buffer
	p = newPluginLog(hclog.New(&hclog.LoggerOptions{Name: "p", Output: &out, Level: hclog.Trace, DisableTime: true}))
	p.Write([]byte("before\nfatal error: all goroutines are asleep\n\nmain.main()\n"))
	if want := "[DEBUG] p: before\n[ERROR] p: fatal error: all goroutines are asleep\n[ERROR] p: main.main()\n"; out.String() != want {
		t.Errorf("logged\n%s; want\n%s", out.String(), want)
	}
}

// TestMutedLogger: go-plugin's logger for stderr lines is off, so that
// go-plugin neither parses nor logs them, and so are its names.
func TestMutedLogger(t *testing.T) {
	var out bytes.Buffer
	l := startLogger{Logger: hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Trace})}.Named("plugin")
	if l.GetLevel() != hclog.Off || l.Named("x").GetLevel() != hclog.Off || l.With("k", 1).GetLevel() != hclog.Off {
		t.Error("go-plugin's logger for a plugin's stderr is not off")
	}
	l.Debug("a long line's part")
	l.Info("info")
	if out.Len() != 0 {
		t.Errorf("the muted logger logged %q", out.String())
	}
	l.Error("reading plugin stderr", "error", "EOF")
	if !strings.Contains(out.String(), "reading plugin stderr") {
		t.Error("the muted logger dropped go-plugin's error that reading stderr failed")
	}
}
