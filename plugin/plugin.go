// Package plugin is the plugin side of refplug: a plugin binary's main calls
// Serve with the objects it offers, by name (or ServeRemote, to serve hosts
// on other machines), and logs through Logger.
package plugin

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/refplug/refplug/internal/gp"
	"github.com/refplug/refplug/refbroker"
)

// Option configures Serve (and ServeRemote). A limit (WithMax…) given 0
// takes its default; Serve refuses a negative limit or WithCallTimeout,
// naming each.
type Option func(*config)

type config struct {
	logger      hclog.Logger
	limits      refbroker.Options // the limits only
	cookieKey   string
	cookieValue string
	versions    map[int]map[string]any
	version     int // the protocol version of the objects given to Serve
	tls         *tls.Config
	bad         []string // options given values they cannot take (check)
}

// check reports the options given values they cannot take, and a
// WithVersion of the version the objects given to Serve already are
// (base), as Serve's error.
func (c *config) check(base int) error {
	bad := append(c.bad, gp.LimitProblems(c.limits)...)
	if _, ok := c.versions[base]; ok {
		bad = append(bad, fmt.Sprintf("WithVersion(%d, …): version %d is the objects given to Serve (WithProtocolVersion, default 1); give each version once", base, base))
	}
	if len(bad) > 0 {
		return fmt.Errorf("plugin: Serve: %s", strings.Join(bad, "; "))
	}
	return nil
}

// WithLogger sets the logger of the plugin's own diagnostics (go-plugin's
// and the broker's). Default: Logger().
func WithLogger(l hclog.Logger) Option { return func(c *config) { c.logger = l } }

// WithMaxMessageSize bounds one message between host and plugin, in bytes.
// Default (and 0): refbroker.DefaultMaxMessageSize (64 MiB).
func WithMaxMessageSize(n int) Option { return func(c *config) { c.limits.MaxMessageSize = n } }

// WithMaxConcurrentCalls bounds how many of the host's calls the plugin
// runs at once; a call beyond it fails at once with an error naming the
// limit. Default (and 0): refbroker.DefaultMaxConcurrentCalls (1024).
func WithMaxConcurrentCalls(n int) Option {
	return func(c *config) { c.limits.MaxConcurrentCalls = n }
}

// WithMaxImports bounds how many of the host's objects (callbacks, and
// objects the host passed) the plugin holds proxies for at once. Default (and 0):
// refbroker.DefaultMaxImports (1,048,576).
func WithMaxImports(n int) Option { return func(c *config) { c.limits.MaxImports = n } }

// WithMaxServedBytes bounds the bytes of the host's calls into the plugin
// running at once (the sizes of their messages); a call beyond it fails at
// once with an error naming the limit, and a call alone always runs.
// Default (and 0): refbroker.DefaultMaxServedBytes (256 MiB).
func WithMaxServedBytes(n int) Option { return func(c *config) { c.limits.MaxServedBytes = n } }

// WithMaxExports bounds how many of the plugin's objects the host holds
// references to at once. Default (and 0): refbroker.DefaultMaxExports (1,048,576).
func WithMaxExports(n int) Option { return func(c *config) { c.limits.MaxExports = n } }

// WithMaxQueuedBytes bounds the plugin's outgoing data waiting for a host
// that is slow to read. Default (and 0): refbroker.DefaultMaxQueuedBytes (16 MiB).
func WithMaxQueuedBytes(n int) Option { return func(c *config) { c.limits.MaxQueuedBytes = n } }

// WithCallTimeout bounds each call the plugin makes into the host that
// its caller cannot bound itself (a callback, or a method of a host
// object, that takes no context.Context): past d it returns an error
// wrapping context.DeadlineExceeded that names it. Default: 0, no bound
// (refbroker.Options.CallTimeout; the host has host.WithCallTimeout).
func WithCallTimeout(d time.Duration) Option { return func(c *config) { c.limits.CallTimeout = d } }

// WithoutSpinning keeps the plugin's reads from spinning: by default,
// after serving a call while nothing else goes on, the plugin tries its
// socket again for up to 100 µs before its thread sleeps, since the host's
// next call is often on its way; it stops after four misses in a row
// (refbroker.Options.NoSpin). The host has its own option,
// host.WithoutSpinning.
func WithoutSpinning() Option { return func(c *config) { c.limits.NoSpin = true } }

// WithHandshake sets the magic cookie hosts must present
// (host.WithHandshake). Default: refplug's own cookie.
func WithHandshake(key, value string) Option {
	return func(c *config) { c.cookieKey, c.cookieValue = key, value }
}

// WithVersion also serves objects under protocol version v, for hosts
// that ask for it (host.WithVersions). The objects given to Serve are
// version 1's, unless WithProtocolVersion says otherwise. Versions start
// at 1, and each is given once: Serve refuses v below 1, or given twice.
func WithVersion(v int, objects map[string]any) Option {
	return func(c *config) {
		switch _, twice := c.versions[v]; {
		case v < 1:
			c.bad = append(c.bad, fmt.Sprintf("WithVersion(%d, …): protocol versions start at 1", v))
		case twice:
			c.bad = append(c.bad, fmt.Sprintf("WithVersion(%d, …) is given twice", v))
		default:
			if c.versions == nil {
				c.versions = map[int]map[string]any{}
			}
			c.versions[v] = objects
		}
	}
}

// WithProtocolVersion says which protocol version the objects given to
// Serve are, so that a plugin may serve any set of versions, version 1
// among them or not: Serve(v2objs, WithProtocolVersion(2),
// WithVersion(3, v3objs)) serves versions 2 and 3 only, and a host that
// supports neither fails to load it. Default: 1 (Serve refuses v below 1).
func WithProtocolVersion(v int) Option {
	return func(c *config) {
		if v < 1 {
			c.bad = append(c.bad, fmt.Sprintf("WithProtocolVersion(%d): protocol versions start at 1", v))
			return
		}
		c.version = v
	}
}

// exitGrace is how long a plugin whose host connection ended waits for the
// host's orderly shutdown request before it exits by itself.
const exitGrace = 500 * time.Millisecond

// Serve serves objects, by name, to the host that started this process, and
// returns when the host is done with the plugin: it closed the plugin, or
// it went away (then Serve returns within half a second, so a plugin never
// outlives its host, and, on Linux, first ends every process the plugin
// started: the host, which would otherwise end them, is gone). When the
// host closes the plugin, Serve first waits (half a second at most) until
// what the plugin's methods wrote to os.Stdout and os.Stderr is on its way
// to the host, so that nothing written before Close is lost when the
// process exits after Serve. Each object is dispensed by the host as an interface
// type; it must have that interface's methods.
//
// Serve also points log/slog's default logger at SlogHandler, so that
// slog.Info and the rest, and the standard log package's output, which
// slog's default takes over, reach the host's logger as Logger()'s entries
// do, with their levels and attributes (without it, go-plugin logs such
// lines at debug level, where a host at Info never shows them). A plugin
// that has set its own default logger, or pointed the log package's
// output elsewhere, before Serve keeps them.
//
// Run by hand rather than by a host, the binary prints that it is a plugin
// and exits with status 1. Serve exits with status 1, naming the problem, if
// objects is empty, holds a nil object, or holds one with no methods,
// which no host could dispense: a value whose methods have pointer
// receivers (serve a pointer to it), or data, a func or a channel
// (refbroker.CheckServable); or if a protocol version is below 1 or given
// twice (WithProtocolVersion, WithVersion).
func Serve(objects map[string]any, opts ...Option) {
	cfg := config{}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = Logger()
	}
	// Before go-plugin's Serve replaces os.Stderr: Logger() writes to the
	// process's own, which the host parses.
	routeSlog(os.Stderr)
	handshake := gp.Handshake
	if cfg.cookieKey != "" {
		handshake.MagicCookieKey, handshake.MagicCookieValue = cfg.cookieKey, cfg.cookieValue
	}
	base := int(handshake.ProtocolVersion)
	if cfg.version > 0 {
		base = cfg.version
	}
	if err := cfg.check(base); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	all := map[int]map[string]any{base: objects}
	for v, objs := range cfg.versions {
		all[v] = objs
	}
	ownGroup, parent := gp.LeadsOwnGroup(), os.Getppid()
	// The host reads this process's stdout and stderr; if it dies, a log
	// line written then must not kill the process (SIGPIPE) before it has
	// ended its children and exited in order.
	gp.IgnoreBrokenPipes()
	socket := gp.NewSocketSlot(gp.InheritedSocket())
	defer socket.Close() // unless the connection took it
	// A plugin a host loaded WithReattachable serves any number of hosts,
	// one after the other or at once, until one closes it.
	reattachable := os.Getenv(gp.ReattachEnv) == "1"
	os.Unsetenv(gp.ReattachEnv)
	// The host's offer to end this plugin by hanging up (see the end of
	// Serve), taken unless hosts may reattach; and where the plugin's
	// output goes before go-plugin's Serve points it at its pipes.
	quitToken := gp.OfferedHangUp()
	if quitToken != "" && !reattachable && gp.CanTellHostExiting {
		socket.AcceptHangUp()
	}
	stdout, stderr := os.Stdout, os.Stderr
	var connected chan *refbroker.Conn
	if !reattachable {
		connected = make(chan *refbroker.Conn, 1)
	}
	versioned := map[int]goplugin.PluginSet{}
	plugins := map[int]*gp.Plugin{}
	for v, objs := range all {
		if err := checkObjects(objs); err != nil {
			fmt.Fprintf(os.Stderr, "%v (protocol version %d)\n", err, v)
			os.Exit(1)
		}
		plugins[v] = &gp.Plugin{Roots: objs, Logger: cfg.logger.Named("refbroker"), Limits: cfg.limits, Connected: connected, Socket: socket}
		versioned[v] = goplugin.PluginSet{gp.PluginName: plugins[v]}
	}
	// An early start that fails (see ownMTLS) ends the plugin: its host
	// has gone, or cannot be served.
	startFailed := make(chan struct{})
	early := func(conn *refbroker.Conn, err error) {
		if err != nil {
			cfg.logger.Error("the connection to the host did not start", "error", err)
			close(startFailed)
		}
	}
	if reattachable {
		early = nil // serves any number of hosts, through go-plugin
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		goplugin.Serve(&goplugin.ServeConfig{
			HandshakeConfig:  handshake,
			VersionedPlugins: versioned,
			Logger:           cfg.logger,
			TLSProvider:      func() (*tls.Config, error) { return ownMTLS(socket, plugins, early, cfg.logger) },
		})
	}()
	if reattachable {
		<-served // a host asked the plugin to quit
		return
	}
	var conn *refbroker.Conn
	select {
	case <-served:
		return
	case <-startFailed:
		return
	case conn = <-connected:
		// Keep the slot full: a second host connection, as a process that
		// found the plugin's socket could try without TLS, is refused.
		connected <- nil
	}
	current.Store(conn)
	defer conn.Close()
	// hostDied tells the host's death from its orderly end: a process
	// whose host died gets a new parent, a moment after it sees the
	// connection end; one that ends when its host hangs up asks the system
	// whether the host is exiting.
	hostDied := func() bool {
		return os.Getppid() != parent || socket.QuitsOnHangUp() && gp.HostExiting(parent)
	}
	select {
	case <-served:
		// The host asked us to quit. It hangs up as soon as it has the
		// answer; returning before that could lose the answer as the
		// process exits (go-plugin issue 331), so wait for it, briefly.
		select {
		case <-conn.Done():
		case <-time.After(time.Second):
			cfg.logger.Debug("asked to quit, but the host did not hang up within a second; exiting")
		}
	case <-conn.Done(): // the host closed the connection or died
		if socket.QuitsOnHangUp() {
			// The host ends this plugin so (gp.QuitEnv): once go-plugin has
			// sent on what its methods wrote, it waits for the exit. (A
			// host that died reads nothing more.)
			if !hostDied() {
				flushOutput(conn, stdout, stderr, quitToken, cfg.logger)
			}
			break
		}
		select {
		case <-served:
		case <-time.After(exitGrace):
			cfg.logger.Debug("the host connection ended; exiting")
		}
	}
	if ownGroup && hostDied() {
		// The host is gone (this process has a new parent, or its host is
		// exiting), and with it whoever would end the processes this
		// plugin started: end them here. Otherwise the host ends them once
		// this process exits.
		gp.KillDescendants()
	}
}

// flushOutput waits, for at most exitGrace, until go-plugin has sent on
// to the host what the plugin's methods wrote to os.Stdout and os.Stderr
// (gp.FlushOutput). It has nothing to wait for if no method ran: the host
// calls only once go-plugin's Serve has pointed os.Stdout and os.Stderr at
// its pipes (stdout and stderr are what they were before), so they are
// read only then.
func flushOutput(conn *refbroker.Conn, stdout, stderr *os.File, token string, log hclog.Logger) {
	if conn.Stats().CallsServed == 0 {
		return
	}
	var pipes []*os.File
	for _, f := range []struct{ now, before *os.File }{{os.Stdout, stdout}, {os.Stderr, stderr}} {
		if f.now != f.before && f.now != nil && gp.IsPipe(f.now) { // not a file the plugin's own code put there
			pipes = append(pipes, f.now)
		}
	}
	if len(pipes) > 0 && !gp.FlushOutput(pipes, gp.Fence(token), time.Now().Add(exitGrace)) {
		log.Debug("the host hung up; what the plugin last wrote to stdout and stderr may not have reached it")
	}
}

// ownMTLS is go-plugin's TLS configuration when the host uses refplug's
// mutual TLS (gp.MTLS), read from the socket. Without it (the host did not
// ask, or the socket did not arrive), it returns nil, and go-plugin
// decides: its own AutoMTLS if the host passed a certificate, else none.
// If the host asked for it and early is not nil, the plugin starts serving
// on the socket at once, with refplug's TLS or without TLS
// (gp.SocketSlot.StartEarly, StartEarlyPlain; early gets the outcome);
// go-plugin calls ownMTLS before it prints its handshake line, which the
// host waits for.
func ownMTLS(socket *gp.SocketSlot, plugins map[int]*gp.Plugin, early func(*refbroker.Conn, error), log hclog.Logger) (*tls.Config, error) {
	v := os.Getenv(gp.MTLSEnv)
	if v == "" {
		if os.Getenv(gp.EarlyEnv) == "1" {
			os.Unsetenv(gp.EarlyEnv)
			if early != nil {
				if err := socket.StartEarlyPlain(plugins, early); err != nil {
					log.Debug("not serving on the socket at once; waiting for the host's Dispense", "error", err)
				}
			}
		}
		return nil, nil
	}
	os.Unsetenv(gp.MTLSEnv)
	m, err := socket.ReadCredentials()
	if err != nil {
		log.Debug("no TLS credentials from the host; using go-plugin's AutoMTLS", "error", err)
		return nil, nil
	}
	if gp.EarlyRequested(v) && early != nil {
		if err := socket.StartEarly(plugins, m.GoPluginServing(), early); err != nil {
			log.Debug("not serving on the socket at once; waiting for the host's Dispense", "error", err)
		}
	}
	return m.PluginConfig(), nil
}

func checkObjects(objects map[string]any) error {
	if len(objects) == 0 {
		return fmt.Errorf("plugin: Serve was given no objects to serve")
	}
	if problems := gp.RootProblems(objects); len(problems) > 0 {
		return fmt.Errorf("plugin: Serve: %s", strings.Join(problems, "; "))
	}
	return nil
}

// current is the connection to the host, once there is one.
var current atomic.Pointer[refbroker.Conn]

// Stats returns the counts of the plugin's connection to its host (live
// references both ways, calls made and served); zero before the host has
// connected.
func Stats() refbroker.Stats {
	if c := current.Load(); c != nil {
		return c.Stats()
	}
	return refbroker.Stats{}
}

var (
	loggerOnce sync.Once
	logger     hclog.Logger
)

// Logger returns the plugin's logger. It writes JSON to stderr, which
// go-plugin forwards into the host's logger with the level and fields kept,
// named after the plugin. Its level is the host's (passed in the
// environment), Info by default.
func Logger() hclog.Logger {
	loggerOnce.Do(func() {
		level := hclog.LevelFromString(os.Getenv(gp.LogLevelEnv))
		if level == hclog.NoLevel {
			level = hclog.Info
		}
		logger = hclog.New(&hclog.LoggerOptions{
			Level:      level,
			Output:     os.Stderr,
			JSONFormat: true,
		})
	})
	return logger
}
