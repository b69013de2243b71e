package host

import (
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/refplug/refplug/internal/textsafe"
)

// Explaining a failed start. go-plugin's own error for a plugin that exits
// or fails the handshake is generic ("Unrecognized remote plugin message
// … Failed to read any lines from plugin's stdout"), and the plugin's
// reason is on its stderr, which go-plugin logs only at debug level. So
// Load keeps the last lines the plugin wrote to stderr and, when the start
// fails, says how the process ended and what it wrote.

// stderrTail keeps the last lines written to it (go-plugin's
// ClientConfig.Stderr gets every line the plugin writes to stderr).
type stderrTail struct {
	mu    sync.Mutex
	lines []string
	split lineSplitter // max tailLineSize
}

const (
	tailLines    = 10
	tailLineSize = 500
)

func (t *stderrTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.split.write(p, t.add)
	return len(p), nil
}

func (t *stderrTail) add(line string) {
	line = strings.TrimRight(line, "\r")
	if strings.TrimSpace(line) == "" {
		return
	}
	t.lines = append(t.lines, printable(line, tailLineSize))
	if len(t.lines) > tailLines {
		t.lines = t.lines[len(t.lines)-tailLines:]
	}
}

func (t *stderrTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if len(t.split.part) > 0 {
		lines = append(lines[:len(lines):len(lines)], printable(string(t.split.part), tailLineSize))
	}
	return "  " + strings.Join(lines, "\n  ")
}

// printable is line as an error message may quote it: its first limit
// bytes (or up to three more, to end at a character; "…" marks a cut),
// with control characters other than tab and bytes that are not UTF-8
// written as Go escapes (\x1b, \x00), so that what a plugin writes to
// stderr can neither drive the terminal that shows the error nor garble
// it.
func printable(line string, limit int) string { return textsafe.Escape(line, limit, "\t") }

func (t *stderrTail) empty() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.lines) == 0 && len(t.split.part) == 0
}

// startFailure explains a start that failed with goErr: how the process
// ended (it has been reaped: abort waited for go-plugin) and the last
// lines it wrote to stderr. killed says the host killed it, once goErr
// had ended the start: then goErr says why (a handshake line go-plugin
// refused, say no protocol version in common), not the kill.
func startFailure(path string, cmd *exec.Cmd, tail *stderrTail, goErr error, killed bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "host: start plugin %s: ", path)
	switch st := cmd.ProcessState; {
	case st != nil && st.Exited():
		fmt.Fprintf(&b, "it exited with status %d before completing go-plugin's handshake", st.ExitCode())
	case st != nil && !killed:
		fmt.Fprintf(&b, "it ended (%v) before completing go-plugin's handshake", st)
	default:
		b.WriteString(explainGoErr(goErr))
		if st != nil {
			b.WriteString("; its process was killed")
		}
	}
	if strings.Contains(tail.String(), "This binary is a plugin") {
		b.WriteString(" (its handshake cookie is not this host's: see WithHandshake)")
	}
	if tail.empty() {
		b.WriteString("; it wrote nothing to stderr (hint: a refplug plugin's main calls plugin.Serve, built with the same handshake and a protocol version this host supports)")
	} else {
		b.WriteString("; the last it wrote to stderr:\n")
		b.WriteString(tail.String())
	}
	return fmt.Errorf("%s", b.String())
}

// explainGoErr words go-plugin's error for a start it refused: a line on
// the plugin's stdout that is not its handshake line comes with a list of
// causes that cannot apply to a process that ran and printed it (another
// architecture, missing libraries, permissions), so it is said plainly.
func explainGoErr(goErr error) string {
	if goErr == nil {
		return "go-plugin's start failed"
	}
	msg := goErr.Error()
	const unrecognized = "Unrecognized remote plugin message: "
	switch {
	case strings.HasPrefix(msg, unrecognized):
		line, _, _ := strings.Cut(strings.TrimPrefix(msg, unrecognized), "\n")
		if line == "" {
			return "it wrote no handshake line on stdout"
		}
		return fmt.Sprintf("its first line on stdout, %q, is not go-plugin's handshake line: a plugin must write nothing to stdout before plugin.Serve (log with plugin.Logger, which writes to stderr)", line)
	case strings.Contains(msg, "incompatible API version"):
		return msg + " (this host's versions are set by WithVersions, the plugin's by plugin.WithVersion)"
	}
	// Other errors may quote the handshake line's parts (a dial error
	// names the address the plugin gave).
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		lines[i] = printable(l, 4096)
	}
	return strings.Join(lines, "\n")
}

// startLogger is the logger go-plugin gets: the host's, without go-plugin's
// warning that a plugin "failed to exit gracefully", nor its error that
// it could not connect to it ("client"), while a failed start is being
// cleaned up (the process is being killed on purpose; the start's error
// says what happened), with its line that the "plugin process exited"
// (an error, or information for status 0) at debug level until Load has
// returned the plugin (Load's error says
// how a process that exits before then ended; go-plugin's says "context
// canceled" of one killed on purpose), nor go-plugin Kill's complaints
// once Close has quit the plugin itself (Client.quit: the quit Kill sends
// again fails, as the plugin has already gone, and so does its connection
// if it was still being made).
type startLogger struct {
	hclog.Logger
	failing  *atomic.Bool
	quitDone *atomic.Bool
	loaded   *atomic.Bool // Load has returned the plugin
}

// Named is go-plugin's logger for the plugin's stderr lines (the only
// one it names): muted, since the host logs them itself (pluginLog).
func (l startLogger) Named(name string) hclog.Logger { return mutedLogger{l.Logger.Named(name)} }

func (l startLogger) Warn(msg string, args ...any) {
	switch {
	case l.failing.Load() && msg == "plugin failed to exit gracefully":
		return
	case l.quitDone.Load() && (msg == "plugin failed to exit gracefully" || msg == "error closing client during Kill"):
		return
	}
	l.Logger.Warn(msg, args...)
}

func (l startLogger) Info(msg string, args ...any) {
	if !l.loaded.Load() && msg == "plugin process exited" {
		l.Logger.Debug(msg, args...) // status 0: Load's error says so
		return
	}
	l.Logger.Info(msg, args...)
}

func (l startLogger) Error(msg string, args ...any) {
	switch {
	case (l.failing.Load() || l.quitDone.Load()) && msg == "client":
		return
	case !l.loaded.Load() && msg == "plugin process exited":
		l.Logger.Debug(msg, args...)
		return
	}
	l.Logger.Error(msg, args...)
}
