package host

import (
	"bytes"
	"io"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// Plugin output. go-plugin forwards what a plugin logs through hclog; what
// its code writes to os.Stdout (after the handshake) or os.Stderr travels
// on go-plugin's stdio streams, which it drops unless told where to put
// them (SyncStdout, SyncStderr). refplug puts them in the host's log by
// default, a line at a time, or in the writers WithStdout and WithStderr
// give.

// WithStdout sends what the plugin writes to its standard output (after
// go-plugin's handshake: fmt.Println in a method, say) to w. Default: the
// host's logger, a line at a time at info level, under the plugin's name
// with stream=stdout.
func WithStdout(w io.Writer) Option {
	return func(c *config) { c.stdout = w; c.processOnly = append(c.processOnly, "WithStdout") }
}

// WithStderr sends what the plugin writes to its standard error without
// going through its logger (os.Stderr.Write, fmt.Fprintln(os.Stderr, …))
// to w. Default: the host's logger, a line at a time at info level, under
// the plugin's name with stream=stderr.
func WithStderr(w io.Writer) Option {
	return func(c *config) { c.stderr = w; c.processOnly = append(c.processOnly, "WithStderr") }
}

// logLines writes each line it is given to a logger, at info level.
type logLines struct {
	log    hclog.Logger
	stream string
	mu     sync.Mutex
	part   []byte
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.part = append(l.part, p...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		if line := strings.TrimRight(string(l.part[:i]), "\r"); line != "" {
			l.log.Info(line, "stream", l.stream)
		}
		l.part = l.part[i+1:]
	}
	if len(l.part) > 64<<10 { // a very long line without an end
		l.log.Info(string(l.part), "stream", l.stream)
		l.part = l.part[:0]
	}
	return len(p), nil
}

// outputs returns where the plugin named name's stdout and stderr go.
func (c *config) outputs(name string) (stdout, stderr io.Writer) {
	stdout, stderr = c.stdout, c.stderr
	if stdout == nil {
		stdout = &logLines{log: c.logger.Named(name), stream: "stdout"}
	}
	if stderr == nil {
		stderr = &logLines{log: c.logger.Named(name), stream: "stderr"}
	}
	return stdout, stderr
}
