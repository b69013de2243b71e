package host

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// A plugin's stderr. go-plugin reads the plugin process's stderr, copies
// each line to ClientConfig.Stderr and logs it: an hclog JSON entry (what
// plugin.Logger writes) at its level with its fields, other lines by
// their "[WARN]"-style prefix, a panic's lines as errors, the rest at
// debug level. Its parser asserts that an entry's "@message", "@level"
// and "@timestamp" are strings, in a goroutine of its own: one line such
// as {"@message":1} from a broken or hostile plugin panicked there and
// ended the host (go-plugin issue 38, still so in v1.8.0). And it logs
// the message, the logger's name and the field names as they came, so
// that a plugin could put terminal escapes, or a newline and a line that
// looks like the host's own, into the host's log.
//
// So go-plugin's logger for those lines is muted (mutedLogger: it then
// skips the parsing as well), and the host logs the lines it copies
// (pluginLog), with the same levels and fields, in the order the plugin
// gave them, its own parser taking any JSON, and with control characters
// in the message and field names written as Go escapes (hclog escapes
// field values itself).

// mutedLogger is go-plugin's logger for a plugin's stderr lines: at level
// Off, which makes go-plugin skip its parsing and logging of them, and
// dropping the lines it logs before it looks at the level (the parts of
// lines over 64 KiB). Its error that reading stderr failed still goes
// through.
type mutedLogger struct{ hclog.Logger }

func (mutedLogger) GetLevel() hclog.Level            { return hclog.Off }
func (mutedLogger) Log(hclog.Level, string, ...any)  {}
func (mutedLogger) Trace(string, ...any)             {}
func (mutedLogger) Debug(string, ...any)             {}
func (mutedLogger) Info(string, ...any)              {}
func (mutedLogger) Warn(string, ...any)              {}
func (l mutedLogger) Named(name string) hclog.Logger { return mutedLogger{l.Logger.Named(name)} }
func (l mutedLogger) With(args ...any) hclog.Logger  { return mutedLogger{l.Logger.With(args...)} }
func (l mutedLogger) ResetNamed(name string) hclog.Logger {
	return mutedLogger{l.Logger.ResetNamed(name)}
}
func (l mutedLogger) IsTrace() bool { return false }
func (l mutedLogger) IsDebug() bool { return false }
func (l mutedLogger) IsInfo() bool  { return false }
func (l mutedLogger) IsWarn() bool  { return false }
func (l mutedLogger) IsError() bool { return false }

// pluginLog logs each line written to it (go-plugin's copy of the
// plugin's stderr) as go-plugin would have, safely.
type pluginLog struct {
	log     hclog.Logger
	mu      sync.Mutex
	split   lineSplitter // max logLineSize
	inPanic bool         // a panic's first line was seen: the rest are errors
}

func newPluginLog(log hclog.Logger) *pluginLog {
	return &pluginLog{log: log, split: lineSplitter{max: logLineSize}}
}

func (p *pluginLog) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.split.write(b, p.line)
	return len(b), nil
}

func (p *pluginLog) line(line string) {
	if strings.TrimSpace(line) == "" {
		return
	}
	if level, msg, fields, ok := hclogEntry(line); ok {
		p.log.Log(level, msg, fields...)
		return
	}
	level := hclog.Debug
	switch {
	case strings.HasPrefix(line, "[TRACE]"):
		level = hclog.Trace
	case strings.HasPrefix(line, "[DEBUG]"):
		level = hclog.Debug
	case strings.HasPrefix(line, "[INFO]"):
		level = hclog.Info
	case strings.HasPrefix(line, "[WARN]"):
		level = hclog.Warn
	case strings.HasPrefix(line, "[ERROR]"):
		level = hclog.Error
	case strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: "):
		p.inPanic = true
		level = hclog.Error
	case p.inPanic:
		level = hclog.Error
	}
	if level >= p.log.GetLevel() { // a flood of debug lines costs no escaping
		p.log.Log(level, printable(line, logLineSize))
	}
}

// hclogEntry parses line as an hclog JSON entry: an object whose
// "@level" names a level from trace to error. It returns the level, the
// message ("@message"; a value that is not a string as its JSON), and the
// other fields in their order, "@timestamp" last as "timestamp" in
// hclog's format, as go-plugin gives it. A line that is not such an
// entry, or whose timestamp does not parse, is not one (go-plugin logs it
// as a line).
func hclogEntry(line string) (level hclog.Level, msg string, fields []any, ok bool) {
	dec := json.NewDecoder(strings.NewReader(line))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, "", nil, false
	}
	level = hclog.NoLevel
	var stamp time.Time
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return 0, "", nil, false
		}
		key, _ := t.(string) // an object's keys are strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 0, "", nil, false
		}
		var v any // numbers as json.Number: exact, as the plugin wrote them
		vd := json.NewDecoder(bytes.NewReader(raw))
		vd.UseNumber()
		if err := vd.Decode(&v); err != nil {
			return 0, "", nil, false
		}
		switch s, isString := v.(string); key {
		case "@message":
			msg = s
			if !isString {
				msg = string(raw)
			}
		case "@level":
			if isString {
				level = hclog.LevelFromString(s)
			}
		case "@timestamp":
			if !isString {
				return 0, "", nil, false
			}
			if stamp, err = time.Parse("2006-01-02T15:04:05.000000Z07:00", s); err != nil {
				return 0, "", nil, false
			}
		default:
			fields = append(fields, printable(key, logLineSize), v)
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return 0, "", nil, false
	}
	if _, err := dec.Token(); err != io.EOF || level < hclog.Trace || level > hclog.Error {
		return 0, "", nil, false
	}
	if !stamp.IsZero() {
		fields = append(fields, "timestamp", stamp.Format(hclog.TimeFormat))
	}
	return level, printable(msg, logLineSize), fields, true
}
