package host

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/refplug/refplug/internal/gp"
	"github.com/refplug/refplug/refbroker"
)

// Client is a running plugin.
type Client struct {
	name      string
	gp        *goplugin.Client
	rpc       goplugin.ClientProtocol
	conn      *refbroker.Conn
	transport string

	closeOnce sync.Once
	closeErr  error
	closed    atomic.Bool // Close has returned
	endProc   func()      // ends the plugin's process group (Load only)
	cmd       *exec.Cmd   // the plugin's command (Load only)
	// reattachable: loaded WithReattachable (its process group is not ended
	// when this host's connection is)
	reattachable bool
	log          hclog.Logger
	detach       func() error // set by Attach: disconnect instead of ending the process
	// early: the connection started on the socket without a lifeline
	// (gp.Plugin.StartEarly), so Close quits the plugin itself (quit).
	early bool
	// hangUp: the plugin of an early start exits when the host closes the
	// connection (gp.QuitEnv), so Close quits it so (quit).
	hangUp bool
	// outputs are the plugin's stdout and stderr as the host copies them
	// (Load only): Close waits for the copies to end (waitOutputs).
	outputs []*outputSink
	// gpReady is closed once go-plugin's connection of an early start is
	// made, or has failed (connectGoPlugin); rpc is set before, if made.
	gpReady chan struct{}
	// exited is closed once the plugin process has exited (Load, where
	// that can be seen; nil otherwise).
	exited chan struct{}
	// quitDone is set once the plugin has ended before go-plugin's Kill
	// (quit ended it, or it had exited by itself; see kill), so that Kill,
	// left with its bookkeeping, does not log that its own quit failed
	// (startLogger).
	quitDone *atomic.Bool
	// inProcess ends both sides of a client made by InProcess (nil
	// otherwise), which has no process.
	inProcess func() error
	// answerWithin bounds, where the caller gives no context and
	// WithCallTimeout is not set (callTimeout 0), what the plugin's refplug
	// answers itself: Dispense, Describe and Ping (the start timeout; 0 for
	// InProcess: no bound). See answered.
	answerWithin, callTimeout time.Duration
	// guard stands between go-plugin's connection and the plugin (nil for
	// InProcess); Close ends it.
	guard *goGuard
}

// Load starts the plugin binary at path and connects to it. The plugin runs
// until Close. go-plugin starts the process, shakes hands, forwards its logs
// and, at Close, asks it to quit; the calls themselves travel on a unix
// socket pair Load makes for this process alone (passed as descriptor 3),
// unless WithMuxBroker says otherwise (see Transport).
//
// Load fails, without leaving a process behind, if path is not an
// executable file, if the plugin is not started and connected within the
// start timeout (WithStartTimeout: the handshake and the connection
// after it), or if it exits first. With refplug's mutual TLS (the
// default) the plugin serves on the socket pair as soon as it has read its
// credentials from it, and go-plugin's own connection (its TLS handshake,
// the plugin's stdout and stderr, and at Close the quit) is made in the
// background once Load has returned; should it fail, the host logs why,
// and Close kills the process rather than asking it to exit (not made
// within the start timeout, it ends the plugin); the first calls (not
// Dispense) wait for it. Without TLS (WithAutoMTLS(false)) the start is
// the same; with WithReattachable the plugin is dispensed through
// go-plugin, and Load waits for that.
//
// The plugin runs as the leader of a process group of its own (on systems
// that have them), and every process it starts is ended with it: when it
// exits, when Close ends it, and, as far as the plugin can, when the host
// dies (see Close and plugin.Serve).
func Load(path string, opts ...Option) (*Client, error) {
	return LoadContext(context.Background(), path, opts...)
}

// LoadContext is Load, ended early when ctx ends: the starting process
// (and anything it started) is killed at once and LoadContext returns
// ctx's error. ctx bounds only the start; it has no effect once
// LoadContext has returned.
func LoadContext(ctx context.Context, path string, opts ...Option) (*Client, error) {
	cfg := newConfig(opts, config{startTimeout: DefaultStartTimeout, autoMTLS: true})
	name := cfg.name
	if name == "" {
		name = filepath.Base(path)
	}
	info, err := os.Stat(path)
	switch {
	case err != nil:
		return nil, fmt.Errorf("host: load plugin: %w", err)
	case info.IsDir():
		return nil, fmt.Errorf("host: load plugin %s: it is a directory, not a plugin binary", path)
	case info.Mode()&0o111 == 0:
		return nil, fmt.Errorf("host: load plugin %s: the file is not executable (hint: chmod +x, or build it with go build)", path)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("host: load plugin %s: %w", path, err)
	}
	for _, v := range cfg.versions {
		if v < 1 {
			return nil, fmt.Errorf("host: load plugin %s: WithVersions(%s): protocol versions start at 1", path, strings.ReplaceAll(strings.Trim(fmt.Sprint(cfg.versions), "[]"), " ", ", "))
		}
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("host: load plugin %s: %w", path, err)
	}
	if cfg.reattachable && cfg.autoMTLS {
		return nil, fmt.Errorf("host: load plugin %s: WithReattachable needs WithAutoMTLS(false): AutoMTLS's certificates die with the host that made them, so no later host could reattach", path)
	}
	// The process lives until endProc: it kills the plugin's process group,
	// unless go-plugin has already reaped the plugin (exec.CommandContext).
	procCtx, endProc := context.WithCancel(context.Background())
	cmd := exec.CommandContext(procCtx, path, cfg.args...)
	// vars are refplug's variables for the plugin, set after the host's
	// environment and again after WithCmd's adjustments (below).
	vars := []string{gp.LogLevelEnv + "=" + cfg.logger.GetLevel().String()}
	if cfg.reattachable {
		vars = append(vars, gp.ReattachEnv+"=1")
	}
	leaderGone := new(atomic.Bool)
	gp.OwnGroup(cmd, leaderGone)
	vars, cmd.Env = append(vars, cmd.Env...), nil // OwnGroup's variable is refplug's too
	handshake := cfg.handshake()
	p := cfg.plugin(name)
	var child *os.File // the plugin's end of the socket pair, closed here once it has started
	var tlsConfig *tls.Config
	autoMTLS := cfg.autoMTLS // go-plugin's, unless refplug's own applies
	if !cfg.muxBroker {
		sock, f, err := gp.SocketPair()
		if err != nil {
			cfg.logger.Debug("no private socket for the plugin; using a go-plugin broker stream", "plugin", name, "error", err)
		} else {
			child = f
			p.Socket = gp.NewSocketSlot(sock, nil)
			defer p.Socket.Close() // unless the connection took it
			cmd.ExtraFiles = []*os.File{child}
			vars = append(vars, fmt.Sprintf("%s=%d", gp.SocketEnv, 3)) // ExtraFiles[0] is descriptor 3
			if cfg.autoMTLS {
				env, err := ownMTLS(sock)
				if err != nil {
					endProc()
					child.Close()
					return nil, fmt.Errorf("host: load plugin %s: %w", path, err)
				}
				tlsConfig, autoMTLS, p.MTLS = env.config, false, env.mtls
				vars = append(vars, env.vars...)
			} else if !cfg.reattachable { // a host that reattaches needs go-plugin's Dispense
				p.Early = true
				vars = append(vars, gp.EarlyEnv+"=1")
			}
			if p.MayStartEarly() && gp.CanTellHostExiting { // offer to end the plugin by hanging up (gp.QuitEnv)
				if token, err := gp.NewQuitToken(); err == nil {
					p.QuitToken = token
					vars = append(vars, gp.QuitEnv+"="+token)
				}
			}
		}
	}
	if !cfg.noHostEnv {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, vars...)
	for _, adjust := range cfg.adjustCmd {
		adjust(cmd)
	}
	// os/exec keeps the last value of a name given twice: so a variable
	// WithCmd set wins over the host's of the same name, and refplug's win
	// over both. (go-plugin, unless told to skip the host's environment,
	// would append it after all of these, undoing both: the host's is in
	// cmd.Env already, so it is told to.)
	cmd.Env = append(cmd.Env, vars...)
	gp.KeepOwnGroup(cmd)
	versioned := map[int]goplugin.PluginSet{}
	for _, v := range cfg.versions {
		versioned[v] = goplugin.PluginSet{gp.PluginName: p}
	}
	if len(versioned) == 0 {
		versioned[int(handshake.ProtocolVersion)] = goplugin.PluginSet{gp.PluginName: p}
	}
	var secure *goplugin.SecureConfig
	if cfg.checksum != nil {
		secure = &goplugin.SecureConfig{Checksum: cfg.checksum, Hash: sha256.New()}
	}
	tail := &stderrTail{split: lineSplitter{max: tailLineSize}}
	failing, quitDone, loaded := new(atomic.Bool), new(atomic.Bool), new(atomic.Bool)
	var fence []byte
	if p.QuitToken != "" {
		fence = gp.Fence(p.QuitToken)
	}
	stdout, stderr := cfg.outputs(name, fence)
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  handshake,
		VersionedPlugins: versioned,
		Cmd:              cmd,
		SecureConfig:     secure,
		AutoMTLS:         autoMTLS,
		TLSConfig:        tlsConfig,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolNetRPC},
		Logger:           startLogger{Logger: cfg.logger, failing: failing, quitDone: quitDone, loaded: loaded},
		Stderr:           io.MultiWriter(tail, newPluginLog(cfg.logger.Named(filepath.Base(cmd.Path)))),
		SyncStdout:       stdout,
		SyncStderr:       stderr,
		StartTimeout:     cfg.startTimeout + time.Second, // LoadContext's own timeout, which covers the whole start, comes first
		SkipHostEnv:      true,                           // cmd.Env has it (above)
	})

	gd := &goGuard{name: name, log: cfg.logger, timeout: cfg.startTimeout, end: endProc}

	// The start timeout covers the whole start, the connection after
	// go-plugin's handshake included; ctx can end it sooner. Either way
	// the process group is killed, which ends whatever open waits for.
	startCtx, cancel := context.WithTimeout(ctx, cfg.startTimeout)
	defer cancel()
	type opened struct {
		c   *Client
		err error
	}
	done := make(chan opened, 1)
	go func() {
		c, err := open(client, gd, cfg.logger, &earlyStart{p, cfg.startTimeout, endProc}, func() {
			if child != nil {
				child.Close() // the plugin has its copy; the host must not keep it open
			}
		}, func(goplugin.ClientProtocol) {
			failing.Store(true)
			endProc()
			client.Kill()
		})
		done <- opened{c, err}
	}()
	var r opened
	select {
	case r = <-done:
	case <-startCtx.Done():
		endProc()
		if r = <-done; r.c != nil { // connected just as time ran out
			r.c.endProc = endProc
			r.c.Close()
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("host: load plugin %s: %w", path, err)
		}
		msg := fmt.Sprintf("host: start plugin %s: not started and connected within the start timeout (%v, WithStartTimeout); its process was killed", path, cfg.startTimeout)
		if !tail.empty() {
			msg += "; the last it wrote to stderr:\n" + tail.String()
		}
		return nil, errors.New(msg)
	}
	switch err := r.err; {
	case errors.Is(err, goplugin.ErrChecksumsDoNotMatch):
		return nil, fmt.Errorf("host: load plugin %s: its SHA-256 checksum is not the one given to WithChecksum: %w", path, err)
	case errors.Is(err, errStart):
		return nil, startFailure(path, cmd, tail, errors.Unwrap(err), failing.Load())
	case err != nil:
		return nil, fmt.Errorf("host: connect to plugin %s: %w (is it a refplug plugin?)", path, errors.Unwrap(err))
	}
	c := r.c
	c.endProc, c.cmd, c.reattachable, c.quitDone = endProc, cmd, cfg.reattachable, quitDone
	c.answerWithin, c.callTimeout = cfg.startTimeout, cfg.limits.CallTimeout
	c.outputs = []*outputSink{stdout, stderr}
	// The pid from the command go-plugin started, not from go-plugin's
	// Client.ID, which waits for go-plugin's lock, held while its
	// connection is made in the background.
	if pid := cmd.Process.Pid; pid > 0 {
		exited := make(chan struct{})
		if gp.CanAwaitExit {
			c.exited = exited
		}
		go func() { // end the plugin's descendants as soon as it exits
			if gp.AwaitExit(pid) == nil {
				leaderGone.Store(true)
				endProc()
				close(exited)
			}
		}()
	}
	loaded.Store(true)
	return c, nil
}

// mtlsSetup is refplug's mutual TLS for one plugin (gp.MTLS): go-plugin's
// TLS configuration, and the plugin's environment variables.
type mtlsSetup struct {
	mtls   *gp.MTLS
	config *tls.Config
	vars   []string
}

// ownMTLS sets up refplug's mutual TLS for a plugin about to be started
// with sock's other end: the plugin's credentials go down sock now, before
// the plugin exists, so they are the first thing it reads there.
func ownMTLS(sock net.Conn) (mtlsSetup, error) {
	m, err := gp.NewMTLS()
	if err != nil {
		return mtlsSetup{}, err
	}
	cfg, vars := m.HostConfig()
	creds, err := m.Credentials()
	if err == nil {
		_, err = sock.Write(creds)
	}
	if err != nil {
		return mtlsSetup{}, fmt.Errorf("writing the TLS credentials to the plugin's socket: %w", err)
	}
	return mtlsSetup{m, cfg, vars}, nil
}

// Transport says what carries the traffic between host and plugin:
// "socketpair", the private socket pair Load makes for each plugin, or
// "muxbroker", a go-plugin broker stream (WithMuxBroker, Attach, systems
// without unix sockets, or a plugin that could not take its socket, which
// the host's log then explains).
func (c *Client) Transport() string { return c.transport }

// Ping checks that the plugin is alive and serving, as go-plugin's
// ClientProtocol.Ping does: a round trip on the connection the calls
// travel on, answered by the plugin's refplug (a plugin running all the
// calls its MaxConcurrentCalls allows still answers). An error means the
// plugin is not healthy: refbroker.ErrDisconnected once it has gone (Exited then
// says whether its process ended). Without a context, it is bounded by
// WithCallTimeout if set, and otherwise by the start timeout (see
// Dispense).
func (c *Client) Ping() error {
	_, err := answered(c,
		func() (struct{}, error) { return struct{}{}, c.conn.Ping() },
		func(ctx context.Context) (struct{}, error) { return struct{}{}, c.conn.PingContext(ctx) })
	return err
}

// PingContext is Ping that returns ctx's error if ctx ends before the
// plugin answers.
func (c *Client) PingContext(ctx context.Context) error { return c.named(c.conn.PingContext(ctx)) }

// Describe lists the objects the plugin serves, with their methods.
// Without a context, it is bounded by WithCallTimeout if set, and
// otherwise by the start timeout (see Dispense).
func (c *Client) Describe() ([]refbroker.ObjectInfo, error) {
	return answered(c, c.conn.Describe, c.conn.DescribeContext)
}

// DescribeContext is Describe that returns ctx's error if ctx ends before
// the plugin answers.
func (c *Client) DescribeContext(ctx context.Context) ([]refbroker.ObjectInfo, error) {
	infos, err := c.conn.DescribeContext(ctx)
	return infos, c.named(err)
}

// named names the plugin in err, if not nil.
func (c *Client) named(err error) error {
	if err != nil {
		return fmt.Errorf("plugin %s: %w", c.name, err)
	}
	return nil
}

// answered makes a request the plugin's refplug answers itself
// (Dispense, Describe, Ping) for a caller who gave no context: through
// plain, refbroker's form without one, where WithCallTimeout bounds it
// (refbroker applies it) or nothing does (InProcess); otherwise through
// within, with a context that ends at the start timeout. The error names
// the plugin, and the bound if it ended the request.
//
// Such a request is answered by the plugin's reader, at once, whatever its
// methods are doing (a plugin running all the calls MaxConcurrentCalls
// allows refuses at once): one that waits longer than a start is for a
// plugin that is stopped, hung or not refplug's, and the caller, who gave
// no bound, would otherwise wait for as long as the connection lasts.
func answered[T any](c *Client, plain func() (T, error), within func(context.Context) (T, error)) (T, error) {
	if c.callTimeout > 0 || c.answerWithin <= 0 {
		v, err := plain()
		return v, c.named(err)
	}
	ctx, cancel := context.WithTimeoutCause(context.Background(), c.answerWithin, errUnanswered)
	defer cancel()
	v, err := within(ctx)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && context.Cause(ctx) == errUnanswered {
		return v, fmt.Errorf("plugin %s: %w: not answered within %v (the start timeout, WithStartTimeout; a plugin's refplug answers at once unless the plugin is stopped or hung; the …Context forms take a bound of the caller's)", c.name, err, c.answerWithin)
	}
	return v, c.named(err)
}

// errUnanswered is the cause of a request answered's bound ended.
var errUnanswered = errors.New("not answered within the start timeout")

// CallJSON calls a method of an object the plugin serves with JSON
// arguments, one per parameter (a context is supplied; a variadic
// parameter is one JSON array), and returns its results other than a final
// error as JSON. Parameters of interface or func type cannot be given; an
// object result shows as its interface, type and methods (see
// refbroker.Conn.CallJSON). Without a context, it is bounded by
// WithCallTimeout, if set.
func (c *Client) CallJSON(object, method string, args ...json.RawMessage) ([]json.RawMessage, error) {
	res, err := c.conn.CallJSON(object, method, args...)
	return res, c.named(err)
}

// CallJSONContext is CallJSON that returns ctx's error if ctx ends before
// the method returns; the method's own context, if it takes one, ends then
// too.
func (c *Client) CallJSONContext(ctx context.Context, object, method string, args ...json.RawMessage) ([]json.RawMessage, error) {
	res, err := c.conn.CallJSONContext(ctx, object, method, args...)
	return res, c.named(err)
}

// Version is the protocol version host and plugin agreed on (1 for a
// client made by InProcess).
func (c *Client) Version() int {
	if c.gp == nil {
		return 1
	}
	return c.gp.NegotiatedVersion()
}

// Dispense returns the object the plugin serves under name, as T. T must be
// an interface type with a proxy registered by refbroker.RegisterInterface,
// and the plugin's object must have all of T's methods with the same
// signatures; otherwise Dispense says what is missing or different.
//
// Without a context, Dispense is bounded by WithCallTimeout if set, and
// otherwise by the start timeout (WithStartTimeout, default 20 s), as
// Describe and Ping are: the plugin's refplug answers them itself, at
// once, whatever its methods are doing, so a plugin that has not answered
// by then is stopped, hung or hostile. The error then wraps
// context.DeadlineExceeded and names the bound; DispenseContext takes a
// bound of the caller's instead. (Clients of InProcess have no such
// bound.)
func Dispense[T any](c *Client, name string) (T, error) {
	return answered(c,
		func() (T, error) { return refbroker.Dispense[T](c.conn, name) },
		func(ctx context.Context) (T, error) { return refbroker.DispenseContext[T](ctx, c.conn, name) })
}

// DispenseContext is Dispense that gives up when ctx ends before the
// plugin answers (a plugin that is stopped, or will not answer), returning
// ctx's error. An answer that comes later is received and released.
func DispenseContext[T any](ctx context.Context, c *Client, name string) (T, error) {
	v, err := refbroker.DispenseContext[T](ctx, c.conn, name)
	return v, c.named(err)
}

// Stats counts the live references between host and plugin, as seen from
// the host.
func (c *Client) Stats() refbroker.Stats { return c.conn.Stats() }
