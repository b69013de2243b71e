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
// (WithTLS, WithLogger, WithHandshake, the limits); the options about the
// process (WithArgs, WithCmd, WithoutHostEnv, WithStartTimeout,
// WithChecksum, WithAutoMTLS) and WithVersions do not apply, and Attach
// fails naming any that are given: a remote plugin serves one protocol
// version, the handshake's, and its calls travel on a go-plugin broker
// stream.
func Attach(addr string, opts ...Option) (*Client, error) {
	cfg := newConfig(opts, config{})
	if len(cfg.processOnly) > 0 {
		return nil, fmt.Errorf("host: attach to %s: %s apply only to a plugin this host starts with Load, not to one it attaches to (drop them)", addr, strings.Join(cfg.processOnly, ", "))
	}
	tcpAddr, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("host: attach to %s: %w", addr, err)
	}
	if cfg.tls != nil && cfg.tls.ServerName == "" && !cfg.tls.InsecureSkipVerify {
		cfg.tls = cfg.tls.Clone()
		cfg.tls.ServerName, _, _ = net.SplitHostPort(addr) // verify the plugin's certificate for addr
	}
	if cfg.tls != nil {
		if err := probeTLS(addr, cfg.tls); err != nil {
			return nil, fmt.Errorf("host: attach to %s: %w", addr, err)
		}
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
	c, err := open(client, addr, cfg.logger, nil, func() {}, func(rpc goplugin.ClientProtocol) {
		if rpc != nil {
			rpc.Close()
		}
		r.stop()
	})
	if err != nil {
		if errors.Is(err, errConnect) {
			return nil, fmt.Errorf("host: attach to %s: %w (is it a refplug plugin, and does TLS match?)", addr, errors.Unwrap(err))
		}
		return nil, fmt.Errorf("host: attach to %s: %w", addr, errors.Unwrap(err))
	}
	c.detach = func() error {
		err := c.rpc.Close()
		r.stop()
		return err
	}
	return c, nil
}

// probeTLS shakes hands with the plugin at addr before go-plugin does, so
// that a TLS failure (a certificate the plugin refuses, or one this host
// does not trust) is Attach's error rather than a line yamux writes to the
// process's stderr, which go-plugin does not let a host redirect. A
// refusal of this host's certificate reaches the client only after the
// handshake (TLS 1.3), so the probe sends a yamux ping, which go-plugin's
// server answers once it has accepted the host: the answer, or the
// refusal, settles it.
func probeTLS(addr string, cfg *tls.Config) error {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	// yamux header: version 0, type 2 (ping), flags 1 (SYN), stream 0,
	// the ping's opaque value 1.
	ping := []byte{0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}
	if _, err := conn.Write(ping); err != nil {
		return fmt.Errorf("TLS: the plugin refused this host: %w", err)
	}
	var pong [12]byte
	if _, err := io.ReadFull(conn, pong[:]); err != nil {
		return fmt.Errorf("TLS: the plugin refused this host: %w", err)
	}
	return nil
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
