package plugin

import (
	"context"
	"log"
	"log/slog"
	"os"
	"reflect"
	"slices"

	"github.com/hashicorp/go-hclog"
)

// Logging through log/slog.
//
// A plugin's slog records reach the host as the entries of Logger() do:
// with their level, message and attributes. Serve makes slog's default
// logger (slog.Info and the rest, and the standard log package, which
// slog's default takes over) write through SlogHandler, unless the plugin
// has set a default logger of its own, or pointed the log package's output
// elsewhere, before Serve: then both are left as they are.

// SlogHandler returns an slog.Handler that logs through Logger(): each
// record becomes one entry at the matching level (below Debug: Trace;
// between two levels: the lower), its attributes as the entry's fields,
// a group's named "group.key". Its level is Logger()'s: the host's.
func SlogHandler() slog.Handler { return &slogHandler{l: Logger()} }

// slogHandler is SlogHandler's handler: the attributes from WithAttrs,
// flattened, and the group prefix from WithGroup.
type slogHandler struct {
	l      hclog.Logger
	args   []any  // key, value, … (keys qualified by their groups)
	prefix string // "g1.g2." for records under WithGroup("g1").WithGroup("g2")
}

// hclogLevel maps an slog level to hclog's.
func hclogLevel(l slog.Level) hclog.Level {
	switch {
	case l < slog.LevelDebug:
		return hclog.Trace
	case l < slog.LevelInfo:
		return hclog.Debug
	case l < slog.LevelWarn:
		return hclog.Info
	case l < slog.LevelError:
		return hclog.Warn
	}
	return hclog.Error
}

func (h *slogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return hclogLevel(l) >= h.l.GetLevel()
}

func (h *slogHandler) Handle(_ context.Context, r slog.Record) error {
	args := slices.Clip(h.args)
	r.Attrs(func(a slog.Attr) bool {
		args = appendAttr(args, h.prefix, a)
		return true
	})
	h.l.Log(hclogLevel(r.Level), r.Message, args...)
	return nil
}

func (h *slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	args := slices.Clip(h.args)
	for _, a := range attrs {
		args = appendAttr(args, h.prefix, a)
	}
	return &slogHandler{l: h.l, args: args, prefix: h.prefix}
}

func (h *slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &slogHandler{l: h.l, args: h.args, prefix: h.prefix + name + "."}
}

// appendAttr appends a's key and value to args, as slog's own handlers
// would show them: a LogValuer resolved, an empty attribute dropped, a
// group's attributes under "group." (an unnamed group's inline), a
// duration as its text.
func appendAttr(args []any, prefix string, a slog.Attr) []any {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return args
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			args = appendAttr(args, prefix, g)
		}
		return args
	}
	v := a.Value.Any()
	if a.Value.Kind() == slog.KindDuration {
		v = a.Value.Duration().String() // "1.5s", as slog's text shows it, not nanoseconds
	}
	return append(args, prefix+a.Key, v)
}

// defaultSlogHandler is the type of slog's own default handler, taken
// before any code of the plugin's could set another.
var defaultSlogHandler = reflect.TypeOf(slog.Default().Handler())

// routeSlog points slog's default logger at SlogHandler, if the plugin has
// left slog's default and the log package's output as they were. stderr
// is the process's standard error before go-plugin's Serve replaces it.
func routeSlog(stderr *os.File) {
	if reflect.TypeOf(slog.Default().Handler()) != defaultSlogHandler || log.Writer() != stderr {
		return
	}
	slog.SetDefault(slog.New(SlogHandler()))
}
