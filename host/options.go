package host

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/refplug/refplug/internal/gp"
	"github.com/refplug/refplug/refbroker"
)

// DefaultStartTimeout is how long Load waits for a plugin to start,
// complete the handshake and connect, and Attach and Reattach for the
// connection, unless WithStartTimeout says otherwise.
const DefaultStartTimeout = 20 * time.Second

// Option configures Load (and Attach, Reattach and Manager). A limit
// (WithMax…) given 0 takes its default; Load, Attach and Reattach refuse
// a negative limit, a negative WithCallTimeout and a WithStartTimeout of
// zero or less, naming each.
type Option func(*config)

type config struct {
	args         []string
	logger       hclog.Logger
	startTimeout time.Duration
	limits       refbroker.Options // the limits only
	checksum     []byte
	autoMTLS     bool
	cookieKey    string
	cookieValue  string
	versions     []int
	tls          *tls.Config
	muxBroker    bool
	adjustCmd    []func(*exec.Cmd)
	name         string // the plugin's name in logs and errors; default: its file's
	stdout       io.Writer
	stderr       io.Writer
	noHostEnv    bool
	reattachable bool
	// processOnly names the options given that apply only to a process
	// this host starts (Load), for Attach to refuse.
	processOnly []string
}

// newConfig applies opts over base and fills in what they left unset.
func newConfig(opts []Option, base config) config {
	for _, o := range opts {
		o(&base)
	}
	if base.logger == nil {
		base.logger = hclog.New(&hclog.LoggerOptions{Name: "refplug", Level: hclog.Info, Output: os.Stderr})
	}
	return base
}

// plugin is go-plugin's plugin that connects to the plugin named name.
func (c *config) plugin(name string) *gp.Plugin {
	return &gp.Plugin{Logger: c.logger.Named(name).Named("refbroker"), Limits: c.limits}
}

// handshake is go-plugin's handshake with the configured cookie.
func (c *config) handshake() goplugin.HandshakeConfig {
	h := gp.Handshake
	if c.cookieKey != "" {
		h.MagicCookieKey, h.MagicCookieValue = c.cookieKey, c.cookieValue
	}
	return h
}

// WithArgs sets the arguments the plugin binary is started with. Default:
// none.
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = args; c.processOnly = append(c.processOnly, "WithArgs") }
}

// WithCmd lets adjust the plugin's exec.Cmd before it starts: its working
// directory, environment, SysProcAttr. adjust runs after refplug has set
// the command up: cmd.Env then holds the host's environment (unless
// WithoutHostEnv) and refplug's variables. adjust may add to it, or
// replace it whole: a variable it sets wins over the host's of the same
// name (`cmd.Env = append(cmd.Env, "GOGC=400")`), and refplug sets its
// own again after adjust, so they are never lost. refplug keeps
// SysProcAttr.Setpgid set (the plugin leads its own process group, see
// Load) and its socket as ExtraFiles[0]. Several WithCmd run in order.
// Default: none.
func WithCmd(adjust func(cmd *exec.Cmd)) Option {
	return func(c *config) {
		c.adjustCmd = append(c.adjustCmd, adjust)
		c.processOnly = append(c.processOnly, "WithCmd")
	}
}

// WithoutHostEnv starts the plugin without the host's environment (as
// go-plugin's SkipHostEnv): it gets only refplug's own variables and what
// WithCmd adds. Default: the plugin inherits the host's environment.
func WithoutHostEnv() Option {
	return func(c *config) { c.noHostEnv = true; c.processOnly = append(c.processOnly, "WithoutHostEnv") }
}

// WithLogger sets the host's logger. The plugin's own log lines appear in
// it too, under the plugin's name, and the plugin logs at its level.
// Default: hclog at Info level on stderr.
func WithLogger(l hclog.Logger) Option { return func(c *config) { c.logger = l } }

// WithStartTimeout bounds how long Load waits for the plugin to start,
// complete go-plugin's handshake and connect; past it, the process is
// killed and Load fails. For Attach and Reattach it bounds the
// connection. Afterwards it bounds Dispense, Describe and Ping called
// without a context, unless WithCallTimeout is set (see Dispense). It
// must be positive. Default: DefaultStartTimeout (20s).
func WithStartTimeout(d time.Duration) Option {
	return func(c *config) { c.startTimeout = d }
}

// check refuses options given values they cannot take: a start timeout
// no start could meet, a negative limit.
func (c *config) check() error {
	var bad []string
	if c.startTimeout <= 0 {
		bad = append(bad, fmt.Sprintf("WithStartTimeout(%v): the start timeout must be positive", c.startTimeout))
	}
	bad = append(bad, gp.LimitProblems(c.limits)...)
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

// WithMaxMessageSize bounds one message between host and plugin, in bytes.
// Default (and 0): refbroker.DefaultMaxMessageSize (64 MiB).
func WithMaxMessageSize(n int) Option { return func(c *config) { c.limits.MaxMessageSize = n } }

// WithMaxConcurrentCalls bounds how many of the plugin's calls into the
// host (callbacks, and calls on objects the host passed) run at once; a
// call beyond it fails at once with an error naming the limit. Default (and 0):
// refbroker.DefaultMaxConcurrentCalls (1024).
func WithMaxConcurrentCalls(n int) Option {
	return func(c *config) { c.limits.MaxConcurrentCalls = n }
}

// WithMaxServedBytes bounds the bytes of the plugin's calls into the host
// running at once (the sizes of their messages: a plugin writing large
// buffers, many at a time, to a slow io.Writer the host passed it would
// otherwise have the host hold up to WithMaxConcurrentCalls of them); a
// call beyond it fails at once with an error naming the limit, and a call
// alone always runs. Default (and 0): refbroker.DefaultMaxServedBytes (256 MiB).
func WithMaxServedBytes(n int) Option { return func(c *config) { c.limits.MaxServedBytes = n } }

// WithMaxImports bounds how many of the plugin's objects the host holds
// proxies for at once (Client.Stats().Imports); a result or callback
// argument that would pass it fails its call with an error naming the
// limit. Default (and 0): refbroker.DefaultMaxImports (1,048,576, about 250 MiB of
// proxies).
func WithMaxImports(n int) Option { return func(c *config) { c.limits.MaxImports = n } }

// WithMaxExports bounds how many of the host's objects (callbacks, and
// objects the host passed or returned) the plugin holds references to at
// once (Client.Stats().Exports): each keeps its object alive in the host
// until the plugin releases it. A call that would export more fails with
// an error naming the limit (for a callback's result, the plugin's call
// does). Default (and 0): refbroker.DefaultMaxExports (1,048,576).
func WithMaxExports(n int) Option { return func(c *config) { c.limits.MaxExports = n } }

// WithMaxQueuedBytes bounds the host's outgoing data waiting for a plugin
// that is slow to read: callers beyond it wait for room, and return when
// their context ends. Default (and 0): refbroker.DefaultMaxQueuedBytes (16 MiB).
func WithMaxQueuedBytes(n int) Option { return func(c *config) { c.limits.MaxQueuedBytes = n } }

// WithCallTimeout bounds each call the host makes into the plugin that
// the caller cannot bound itself: calls of methods (and funcs) that take
// no context.Context, and Dispense, Describe, Ping and CallJSON (their
// …Context forms take the caller's context instead). A plugin that hangs
// in such a method, or stops, then costs the caller d, not its
// goroutine for the plugin's life: the call returns an error wrapping
// context.DeadlineExceeded that names the method and the timeout (or,
// for a method whose last result is a registered failure type, that
// failure). Methods that take a context are bounded by it alone, so a
// Watch(ctx, …) that runs until cancelled is not cut short. Set d above
// the longest such call, callbacks included. Default: 0, no bound
// (refbroker.Options.CallTimeout); Dispense, Describe and Ping are then
// bounded by the start timeout.
func WithCallTimeout(d time.Duration) Option { return func(c *config) { c.limits.CallTimeout = d } }

// WithoutSpinning keeps the host's reads on this plugin's connection from
// spinning: by default a caller alone waiting for its return or its
// callbacks tries the socket again for up to 100 µs before its thread
// sleeps, which with the plugin doing the same makes a short call several
// times faster, for up to that much CPU per call
// (refbroker.Options.NoSpin). The plugin's side has its own option,
// plugin.WithoutSpinning.
func WithoutSpinning() Option { return func(c *config) { c.limits.NoSpin = true } }

// WithChecksum makes Load refuse a binary whose SHA-256 checksum is not
// sum (go-plugin's SecureConfig): the binary is checked before it is
// started. Default: no check.
func WithChecksum(sum []byte) Option {
	return func(c *config) { c.checksum = sum; c.processOnly = append(c.processOnly, "WithChecksum") }
}

// WithAutoMTLS turns mutual TLS on go-plugin's connection on or off: host
// and plugin authenticate each other with keys made for this one run, and
// the connection is encrypted, so no other local process can connect to
// the plugin or pose as it. Default: on.
//
// With a socket pair (Load's default transport), refplug makes the keys:
// P-256, the plugin's handed to it down its socket before it starts, which
// costs about a millisecond of start-up instead of the ~15 ms of
// go-plugin's AutoMTLS (BENCHMARKS.md, Start-up by part). Otherwise
// (WithMuxBroker, or a plugin that did not get its socket), it is
// go-plugin's AutoMTLS. Off, go-plugin's connection is unencrypted, and
// a process that finds the plugin's go-plugin socket can talk to it: ask
// it to quit, or read the plugin's stdout and stderr. The plugin's objects
// stay out of its reach on the socket pair (the plugin serves its host
// there before its go-plugin socket answers, and then refuses any other
// connection), but not with WithMuxBroker or WithReattachable, where a
// process that connects before the host could dispense them. Turn it off
// only on a machine whose every process is trusted, or for
// WithReattachable.
func WithAutoMTLS(on bool) Option {
	return func(c *config) { c.autoMTLS = on; c.processOnly = append(c.processOnly, "WithAutoMTLS") }
}

// WithHandshake sets the magic cookie the plugin must have been built with
// (plugin.WithHandshake), so a host loads only the plugins meant for it.
// Default: refplug's own cookie, shared by every refplug plugin.
func WithHandshake(key, value string) Option {
	return func(c *config) { c.cookieKey, c.cookieValue = key, value }
}

// WithVersions sets the protocol versions this host supports; the highest
// one the plugin also serves (plugin.WithVersion) is used, and
// Client.Version reports it. Versions start at 1: Load refuses any below.
// Default: 1.
func WithVersions(versions ...int) Option {
	return func(c *config) { c.versions = versions; c.processOnly = append(c.processOnly, "WithVersions") }
}

// WithMuxBroker carries the traffic between host and plugin on a go-plugin
// broker stream (a yamux stream inside go-plugin's own connection, under
// its TLS when AutoMTLS is on) instead of the private socket pair Load
// makes for each plugin. It is slower (BENCHMARKS.md); it exists for
// comparison, and for plugins started in ways that cannot pass a socket.
// Default: off (on where there are no unix sockets; Attach always uses a
// broker stream). Client.Transport says which one a plugin uses.
func WithMuxBroker() Option { return func(c *config) { c.muxBroker = true } }

// withName names the plugin in logs and errors (Manager.LoadAs).
func withName(name string) Option { return func(c *config) { c.name = name } }

// WithReattachable starts the plugin so that a later host process may
// reattach to it (see Client.ReattachConfig and Reattach): it outlives a
// host that goes away, and runs until a host closes it. It needs
// WithAutoMTLS(false): AutoMTLS's certificates die with the host that made
// them. Default: a plugin ends within a second of losing its host.
func WithReattachable() Option {
	return func(c *config) { c.reattachable = true; c.processOnly = append(c.processOnly, "WithReattachable") }
}
