package host

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"github.com/refplug/refplug/internal/gp"
)

// WithTLS sets the TLS configuration Attach connects with: the CA that
// signed the plugin's certificate (RootCAs) and, for mutual TLS, this
// host's certificate. The plugin's certificate is verified for the host
// part of Attach's address unless cfg.ServerName says otherwise. Default:
// none (plain TCP; Load ignores it).
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }

// Attach connects to a plugin served with plugin.ServeRemote at addr
// (host:port), through go-plugin's reattach mechanism. The plugin process
// is not this host's: Close disconnects from it and leaves it running, and
// Exited reports whether this host has disconnected. Options as for Load
// (WithTLS, WithLogger, WithHandshake, WithStartTimeout, the limits); the
// options about the process (WithArgs, WithCmd, WithoutHostEnv,
// WithChecksum, WithAutoMTLS) and WithVersions do not apply, and Attach
// fails naming any that are given: a remote plugin serves one protocol
// version, the handshake's, and its calls travel on a go-plugin broker
// stream. Attach first checks that go-plugin's server answers at addr (a
// yamux ping, after the TLS handshake if any), so a wrong address fails
// within 5 s saying what answered there, or that nothing did; and the
// whole connection is bounded by the start timeout (WithStartTimeout,
// default DefaultStartTimeout), so a server that answers the ping but not
// go-plugin's calls (a plugin that has hung) cannot hold Attach either.
func Attach(addr string, opts ...Option) (*Client, error) {
	return AttachContext(context.Background(), addr, opts...)
}

// AttachContext is Attach, ended early when ctx ends: it returns ctx's
// error at once, and what it had connected is closed. ctx bounds only the
// connection; it has no effect once AttachContext has returned.
func AttachContext(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	cfg := newConfig(opts, config{startTimeout: DefaultStartTimeout})
	if len(cfg.processOnly) > 0 {
		return nil, fmt.Errorf("host: attach to %s: %s %s only to a plugin this host starts with Load, not to one it attaches to (drop %s)", addr, strings.Join(cfg.processOnly, ", "), agree(len(cfg.processOnly), "applies", "apply"), agree(len(cfg.processOnly), "it", "them"))
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("host: attach to %s: %w", addr, err)
	}
	tcpAddr, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("host: attach to %s: %w", addr, err)
	}
	if cfg.tls != nil && cfg.tls.ServerName == "" && !cfg.tls.InsecureSkipVerify {
		cfg.tls = cfg.tls.Clone()
		cfg.tls.ServerName, _, _ = net.SplitHostPort(addr) // verify the plugin's certificate for addr
	}
	bound, cancel := context.WithTimeout(ctx, cfg.startTimeout)
	defer cancel()
	if err := probe(bound, "tcp", addr, cfg.tls); err != nil {
		if ctx.Err() != nil || bound.Err() != nil {
			return nil, fmt.Errorf("host: attach to %s: %w", addr, cfg.cutShort(ctx, "no answer", ""))
		}
		return nil, fmt.Errorf("host: attach to %s: %w (is a refplug plugin served there with plugin.ServeRemote, and does TLS match: WithTLS?)", addr, err)
	}
	handshake := cfg.handshake()
	r := &remoteRunner{addr: addr, done: make(chan struct{})}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: handshake,
		Plugins:         goplugin.PluginSet{gp.PluginName: cfg.plugin(addr)},
		Reattach: &goplugin.ReattachConfig{
			Protocol:        goplugin.ProtocolNetRPC,
			ProtocolVersion: int(handshake.ProtocolVersion),
			Addr:            tcpAddr,
			ReattachFunc:    func() (runner.AttachedRunner, error) { return r, nil },
			Test:            true, // not ours to kill
		},
		TLSConfig: cfg.tls,
		Logger:    cfg.logger,
	})
	gd := &goGuard{name: addr, log: cfg.logger, timeout: cfg.startTimeout}
	c, err := connectWithin(bound, client, gd, func() (*Client, error) {
		return open(client, gd, cfg.logger, nil, func() {}, func(rpc goplugin.ClientProtocol) {
			if rpc != nil {
				closeWithin(rpc, quitWait)
			}
			r.stop()
		})
	}, func(c *Client) {
		closeWithin(c.rpc, quitWait) // its session is closed already
		c.conn.Close()
		r.stop()
	})
	if err != nil {
		r.stop() // go-plugin waits on the runner until then
		if errors.Is(err, errNoAnswer) {
			return nil, fmt.Errorf("host: attach to %s: %w", addr, cfg.cutShort(ctx, "not connected", ": the server there answered yamux's ping but not go-plugin's calls (has the plugin hung?)"))
		}
		if errors.Is(err, errConnect) {
			return nil, fmt.Errorf("host: attach to %s: %w (is it a refplug plugin, and does TLS match?)", addr, errors.Unwrap(err))
		}
		return nil, fmt.Errorf("host: attach to %s: %w", addr, errors.Unwrap(err))
	}
	c.detach = func() error {
		err := closeWithin(c.rpc, quitWait)
		r.stop()
		return err
	}
	c.answerWithin, c.callTimeout = cfg.startTimeout, cfg.limits.CallTimeout
	return c, nil
}

// errNoAnswer is connectWithin's error when its context ends first.
var errNoAnswer = errors.New("no answer")

// cutShort says why Attach or Reattach stopped waiting, once their bound
// (ctx, within the start timeout) has ended: ctx's error if ctx ended,
// else that the step named by what did not finish within the start
// timeout, then hint.
func (c *config) cutShort(ctx context.Context, what, hint string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("%s within the start timeout (%v, WithStartTimeout)%s", what, c.startTimeout, hint)
}

// connectWithin runs connect (go-plugin's connection to a plugin that is
// not this host's to start, and the Dispense on it: open) until ctx ends.
// go-plugin's calls have no timeout of their own, so a server that
// answers yamux's pings but not the calls would hold connect for as long
// as its socket stays open. If ctx ends first, connectWithin returns
// errNoAnswer at once and leaves a goroutine to close the session under
// go-plugin's connection, once go-plugin has made it (its Client is
// bounded by yamux's write timeout), which ends the calls waiting on it;
// a client connect returns all the same is then abandoned.
func connectWithin(ctx context.Context, client *goplugin.Client, gd *goGuard, connect func() (*Client, error), abandon func(*Client)) (*Client, error) {
	type result struct {
		c   *Client
		err error
	}
	made := make(chan goplugin.ClientProtocol, 1) // go-plugin's connection, once made
	done := make(chan result, 1)
	go func() {
		err := gd.start(client)
		var rpc goplugin.ClientProtocol
		if err == nil {
			rpc, err = gd.connect(client) // open's own call then returns this one
		}
		if err != nil {
			gd.close()
			close(made)
			done <- result{nil, &openError{stage: errStart, err: err}}
			return
		}
		made <- rpc
		c, err := connect()
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		return r.c, r.err
	case <-ctx.Done():
	}
	go func() {
		gd.close() // ends go-plugin's connection, or the guard's wait to make it
		if rpc, ok := <-made; ok {
			gp.CloseSession(rpc)
		}
		if r := <-done; r.c != nil {
			abandon(r.c)
		}
	}()
	return nil, errNoAnswer
}

// closeWithin closes go-plugin's connection to a plugin that is not this
// host's to end (go-plugin's quit, which a remote plugin takes as this
// host's goodbye). A plugin that does not answer the quit within d (one
// that has hung) is disconnected from all the same: the session under
// the connection is closed.
func closeWithin(rpc goplugin.ClientProtocol, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- rpc.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		gp.CloseSession(rpc)
		return fmt.Errorf("the plugin did not answer go-plugin's quit within %v (has it hung?); disconnected", d)
	}
}

// quitWait bounds how long Close waits for a remote plugin to answer
// go-plugin's quit (a variable for the tests).
var quitWait = 3 * time.Second

// probe checks that what listens at addr is go-plugin's server before
// go-plugin connects to it, so that Attach's (or Reattach's) error says
// what is wrong, and says it within probeWait. It sends a yamux ping,
// which go-plugin's server answers once it has accepted the host;
// go-plugin itself makes no such round trip, and would wait for yamux's
// keepalive to fail (about 40 s) at a port that accepts and says nothing.
//
// With TLS (cfg not nil) it shakes hands first, so that a TLS failure (a
// certificate the plugin refuses, or one this host does not trust) is
// Attach's error rather than a line yamux writes to the process's stderr,
// which go-plugin does not let a host redirect. A refusal of this host's
// certificate reaches the client only after the handshake (TLS 1.3): the
// ping's answer, or the refusal, settles it.
//
// ctx ends it early, with ctx's error.
func probe(ctx context.Context, network, addr string, cfg *tls.Config) error {
	d := &net.Dialer{Timeout: probeWait}
	var conn net.Conn
	var err error
	if cfg != nil {
		conn, err = (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, network, addr)
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("TLS handshake: %w", err)
		}
	} else {
		conn, err = d.DialContext(ctx, network, addr)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	conn.SetDeadline(time.Now().Add(probeWait))
	// yamux header: version 0, type 2 (ping), flags 1 (SYN), stream 0,
	// the ping's opaque value 1. The answer: flags 2 (ACK), the same value.
	ping := []byte{0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}
	var pong [12]byte
	if _, err = conn.Write(ping); err == nil {
		_, err = io.ReadFull(conn, pong[:])
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil && cfg != nil:
		return fmt.Errorf("TLS: the plugin refused this host: %w", err)
	case isTimeout(err):
		return fmt.Errorf("no answer to go-plugin's yamux ping within %v", probeWait)
	case err != nil:
		return fmt.Errorf("it did not answer go-plugin's yamux ping: %w", err)
	case pong != [12]byte{0, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1}:
		return fmt.Errorf("it answered go-plugin's yamux ping with % x", pong)
	}
	return nil
}

// probeWait bounds each step of probe: the dial, and the ping's answer
// (a variable for the tests).
var probeWait = 5 * time.Second

// isTimeout reports whether err is a deadline's.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// remoteRunner stands for a plugin process on another machine: nothing to
// wait for or kill but our own connection.
type remoteRunner struct {
	addr string
	once sync.Once
	done chan struct{}
}

func (r *remoteRunner) stop() { r.once.Do(func() { close(r.done) }) }

func (r *remoteRunner) Wait(ctx context.Context) error {
	select {
	case <-r.done:
	case <-ctx.Done():
	}
	return nil
}

func (r *remoteRunner) Kill(context.Context) error { r.stop(); return nil }
func (r *remoteRunner) ID() string                 { return "remote:" + r.addr }

func (r *remoteRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (r *remoteRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// agree picks the singular or the plural for n things.
func agree(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
