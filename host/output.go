package host

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/refplug/refplug/internal/gp"
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

// lineSplitter cuts what is written into lines: each whole line, without
// its "\n" or "\r\n", and a line longer than max without an end so far,
// as it stands, go to the func write is given. Its user holds the lock.
type lineSplitter struct {
	max  int
	part []byte
}

func (s *lineSplitter) write(p []byte, line func(string)) {
	s.part = append(s.part, p...)
	for {
		i := bytes.IndexByte(s.part, '\n')
		if i < 0 {
			break
		}
		line(strings.TrimRight(string(s.part[:i]), "\r"))
		s.part = s.part[i+1:]
	}
	if len(s.part) > s.max {
		line(string(s.part))
		s.part = s.part[:0]
	}
}

// logLineSize is the longest line without an end logLines holds back.
const logLineSize = 64 << 10

// lineWriter hands each line written to it to line (see lineSplitter).
type lineWriter struct {
	mu    sync.Mutex
	lines lineSplitter
	line  func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines.write(p, w.line)
	return len(p), nil
}

// logLines writes each line it is given to log, at info level, with the
// stream it came from, control characters written as Go escapes (hclog
// writes a message as it is: a plugin could drive the terminal that
// shows the host's log, or start a line of its own there).
func logLines(log hclog.Logger, stream string) *lineWriter {
	return &lineWriter{lines: lineSplitter{max: logLineSize}, line: func(line string) {
		if line != "" {
			log.Info(printable(line, logLineSize), "stream", stream)
		}
	}}
}

// outputs returns where the plugin named name's stdout and stderr go, with
// fence (gp.Fence; nil: none) taken out of them.
func (c *config) outputs(name string, fence []byte) (stdout, stderr *outputSink) {
	out, errOut := c.stdout, c.stderr
	if out == nil {
		out = logLines(c.logger.Named(name), "stdout")
	}
	if errOut == nil {
		errOut = logLines(c.logger.Named(name), "stderr")
	}
	return newOutputSink(out, fence), newOutputSink(errOut, fence)
}

// outputSink is what go-plugin copies one of the plugin's output streams
// into, for the plugin's life: w, read into through a buffer of
// outputBuffer bytes. (go-plugin's io.Copy would otherwise make one of 32
// KiB per stream, 64 KiB of each loaded plugin's host memory, kept while
// it waits for output that mostly never comes.) The fence a plugin writes
// as it ends (gp.FlushOutput) is taken out, and done is closed once the
// copy has ended: Close waits for that, so that what the plugin wrote
// before it exited has reached w. The copy ends at the fence, which is
// the plugin's last output: a read after it would wait for go-plugin's
// session to shut down, in which yamux v0.1.2 spins (RELIABILITY.md).
type outputSink struct {
	w      io.Writer
	filter *gp.FenceFilter
	done   chan struct{}
	ended  sync.Once
}

const outputBuffer = 4 << 10

func newOutputSink(w io.Writer, fence []byte) *outputSink {
	return &outputSink{w: w, filter: gp.NewFenceFilter(fence), done: make(chan struct{})}
}

// Write writes p to w, the fence taken out.
func (s *outputSink) Write(p []byte) (int, error) {
	if err := s.pass(s.filter.Pass(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// pass writes p to w, as io.Copy would: an error for a short write, or a
// writer that says it wrote more than it was given.
func (s *outputSink) pass(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	m, err := s.w.Write(p)
	switch {
	case m < 0 || m > len(p):
		return fmt.Errorf("host: the plugin output's writer reported %d bytes written of %d", m, len(p))
	case err != nil:
		return err
	case m < len(p):
		return io.ErrShortWrite
	}
	return nil
}

// ReadFrom copies r into w until r ends, as io.Copy would, and returns the
// number of bytes read from r.
func (s *outputSink) ReadFrom(r io.Reader) (int64, error) {
	defer s.ended.Do(func() { close(s.done) })
	buf := make([]byte, outputBuffer)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if werr := s.pass(s.filter.Pass(buf[:n])); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		switch {
		case err == io.EOF || s.filter.Fenced(): // the fence is the plugin's last output
			return total, s.pass(s.filter.End())
		case err != nil:
			return total, err
		}
	}
}

// yamuxLines logs, under the plugin's name, the lines of the yamux session
// under go-plugin's connection to the plugin (gp.RouteYamuxLog), which
// would otherwise go to the host process's standard error: yamux's errors
// and warnings at warn level while the plugin's connection is up, and
// every line at debug once it has ended (Close, or the plugin gone), when
// they only echo that ("Failed to write header: broken pipe").
type yamuxLines struct {
	lineWriter
	log    hclog.Logger
	client atomic.Pointer[Client] // set once the Client exists
}

func newYamuxLines(log hclog.Logger, plugin string) *yamuxLines {
	y := &yamuxLines{log: log.Named("yamux").With("plugin", plugin)}
	y.lineWriter = lineWriter{lines: lineSplitter{max: logLineSize}, line: y.logLine}
	return y
}

// route gives go-plugin's connection rpc this log, or says why not.
func (y *yamuxLines) route(rpc goplugin.ClientProtocol) {
	if !gp.RouteYamuxLog(rpc, y) {
		y.log.Debug("go-plugin's yamux session could not be given the host's logger (another go-plugin version?); its lines go to standard error")
	}
}

// logLine logs one of yamux's lines (y.lineWriter's line).
func (y *yamuxLines) logLine(line string) {
	msg, found := strings.CutPrefix(line, "[ERR] ")
	if !found {
		msg, found = strings.CutPrefix(line, "[WARN] ")
	}
	msg = strings.TrimPrefix(msg, "yamux: ")
	switch c := y.client.Load(); {
	case msg == "":
	case found && (c == nil || c.conn.Err() == nil):
		y.log.Warn(msg)
	default:
		y.log.Debug(msg)
	}
}
