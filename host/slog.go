package host

import (
	"context"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// WithSlog sets the host's logger to an slog.Logger, for a host that logs
// with log/slog: as WithLogger, with everything refplug and go-plugin
// log, and every entry of the plugin's (Logger() and slog, with their
// levels and fields), going to l. A logger's name (the plugin's, as
// "svcplugin", under go-plugin's and refplug's) is the attribute
// "logger". hclog's Trace is slog.LevelDebug-4. The plugin logs at the
// lowest level l is enabled for. Default: hclog at Info level on stderr.
func WithSlog(l *slog.Logger) Option {
	return WithLogger(SlogLogger(l))
}

// SlogLogger returns an hclog.Logger that logs to l, as WithSlog's does:
// for ManagerLogger, or anything else that takes hclog. A nil l is
// slog.Default(). SetLevel on it (or on a logger made from it, as with
// hclog) drops entries below that level, whatever l would take.
func SlogLogger(l *slog.Logger) hclog.Logger { return newSlogLogger(l) }

// slogLogger is hclog.Logger over an slog.Logger.
type slogLogger struct {
	l    *slog.Logger // with the implied arguments
	name string
	args []any // the implied arguments (ImpliedArgs)
	// min is SetLevel's: entries below it are dropped, whatever l's
	// handler would take. Shared with the loggers made from this one, as
	// hclog's are.
	min *atomic.Int32
}

func newSlogLogger(l *slog.Logger) *slogLogger {
	if l == nil {
		l = slog.Default()
	}
	return &slogLogger{l: l, min: new(atomic.Int32)} // hclog.NoLevel (0): no minimum
}

// slogLevel maps an hclog level to slog's.
func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (s *slogLogger) enabled(l hclog.Level) bool {
	if l == hclog.Off || l == hclog.NoLevel {
		return false
	}
	if m := hclog.Level(s.min.Load()); m != hclog.NoLevel && l < m {
		return false
	}
	return s.l.Enabled(context.Background(), slogLevel(l))
}

func (s *slogLogger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	if !s.enabled(level) {
		return
	}
	if s.name != "" {
		args = append([]any{"logger", s.name}, args...)
	}
	s.l.Log(context.Background(), slogLevel(level), msg, args...)
}

func (s *slogLogger) Trace(msg string, args ...any) { s.Log(hclog.Trace, msg, args...) }
func (s *slogLogger) Debug(msg string, args ...any) { s.Log(hclog.Debug, msg, args...) }
func (s *slogLogger) Info(msg string, args ...any)  { s.Log(hclog.Info, msg, args...) }
func (s *slogLogger) Warn(msg string, args ...any)  { s.Log(hclog.Warn, msg, args...) }
func (s *slogLogger) Error(msg string, args ...any) { s.Log(hclog.Error, msg, args...) }

func (s *slogLogger) IsTrace() bool { return s.enabled(hclog.Trace) }
func (s *slogLogger) IsDebug() bool { return s.enabled(hclog.Debug) }
func (s *slogLogger) IsInfo() bool  { return s.enabled(hclog.Info) }
func (s *slogLogger) IsWarn() bool  { return s.enabled(hclog.Warn) }
func (s *slogLogger) IsError() bool { return s.enabled(hclog.Error) }

func (s *slogLogger) ImpliedArgs() []any { return s.args }

func (s *slogLogger) With(args ...any) hclog.Logger {
	if len(args) == 0 {
		return s
	}
	c := *s
	c.l = s.l.With(args...)
	c.args = append(append([]any(nil), s.args...), args...)
	return &c
}

func (s *slogLogger) Name() string { return s.name }

func (s *slogLogger) Named(name string) hclog.Logger {
	if s.name != "" {
		name = s.name + "." + name
	}
	return s.ResetNamed(name)
}

func (s *slogLogger) ResetNamed(name string) hclog.Logger {
	c := *s
	c.name = name
	return &c
}

func (s *slogLogger) SetLevel(level hclog.Level) { s.min.Store(int32(level)) }

// GetLevel returns the lowest level the logger takes: what refplug passes
// to its plugins, and below which go-plugin drops their entries.
func (s *slogLogger) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if s.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

func (s *slogLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(s.StandardWriter(opts), "", 0)
}

// StandardWriter returns a writer that logs each line written to it
// (lineWriter, as the plugin's output is logged), at Info, or, with
// opts.InferLevels, at the level its "[DEBUG]"-style prefix names.
func (s *slogLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	infer := opts != nil && opts.InferLevels
	return &lineWriter{lines: lineSplitter{max: logLineSize}, line: func(line string) {
		level := hclog.Info
		if infer {
			level, line = inferLevel(line)
		}
		s.Log(level, line)
	}}
}

// inferLevel reads the level a line's "[DEBUG]"-style prefix names, and
// returns the line without it; Info if it has none.
func inferLevel(line string) (hclog.Level, string) {
	for _, p := range []struct {
		prefix string
		level  hclog.Level
	}{{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info}, {"[WARN]", hclog.Warn}, {"[ERROR]", hclog.Error}, {"[ERR]", hclog.Error}} {
		if rest, ok := strings.CutPrefix(line, p.prefix); ok {
			return p.level, strings.TrimSpace(rest)
		}
	}
	return hclog.Info, line
}
