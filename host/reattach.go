package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/refplug/refplug/internal/gp"
)

// ReattachInfo describes a running plugin well enough for a later host
// process to reattach to it (Reattach), as go-plugin's ReattachConfig
// does: where its go-plugin server listens, its process, and the protocol
// it speaks. It marshals to JSON, to be handed from one process to the
// next (a file, an environment variable).
type ReattachInfo struct {
	Name            string // the plugin's name, for logs and errors
	Network         string // "unix" or "tcp"
	Address         string // go-plugin's socket
	Pid             int    // the plugin's process
	Protocol        string // go-plugin's protocol, "netrpc"
	ProtocolVersion int    // the negotiated protocol version
}

// ReattachInfo describes this plugin for Reattach. It fails unless the
// plugin was loaded WithReattachable (and so WithAutoMTLS(false)).
func (c *Client) ReattachInfo() (ReattachInfo, error) {
	if c.inProcess != nil {
		return ReattachInfo{}, fmt.Errorf("host: %s: served in this process (InProcess): there is no plugin process to reattach to", c.name)
	}
	if !c.reattachable {
		return ReattachInfo{}, fmt.Errorf("host: plugin %s was not loaded WithReattachable: it ends with this host, and no other host could reattach to it", c.name)
	}
	rc := c.gp.ReattachConfig()
	if rc == nil || rc.Addr == nil {
		return ReattachInfo{}, fmt.Errorf("host: plugin %s: go-plugin has no reattach configuration for it (has it exited?)", c.name)
	}
	addr := rc.Addr
	if a := c.guard.pluginAddr(); a != nil {
		addr = a // go-plugin's is the guard's
	}
	return ReattachInfo{
		Name: c.name, Network: addr.Network(), Address: addr.String(), Pid: rc.Pid,
		Protocol: string(rc.Protocol), ProtocolVersion: rc.ProtocolVersion,
	}, nil
}

// Reattach connects to a running plugin that another host process loaded
// WithReattachable, from the ReattachInfo that host had. Its calls travel
// on a go-plugin broker stream (the private socket pair was the first
// host's). Options as for Attach: the logger, the handshake (the one the
// plugin was loaded with), the limits; the options about starting a
// process do not apply and are refused.
//
// The plugin runs until a host closes it: Close on this client ends the
// plugin, as Close on the client that loaded it does (then every other
// host's calls fail with refbroker.ErrDisconnected). A host that just goes
// away leaves it running, for the next one.
//
// Reattach first checks that go-plugin's server answers at the address (a
// yamux ping), so information that no longer leads to a running plugin
// fails within 5 s, saying so; and the whole connection is bounded by the
// start timeout (WithStartTimeout, default DefaultStartTimeout), so a
// plugin that answers the ping but not go-plugin's calls (one that has
// hung) cannot hold Reattach either. A Reattach that fails leaves the
// plugin running.
func Reattach(info ReattachInfo, opts ...Option) (*Client, error) {
	return ReattachContext(context.Background(), info, opts...)
}

// ReattachContext is Reattach, ended early when ctx ends: it returns
// ctx's error at once, and what it had connected is closed (the plugin
// left running). ctx bounds only the connection; it has no effect once
// ReattachContext has returned.
func ReattachContext(ctx context.Context, info ReattachInfo, opts ...Option) (*Client, error) {
	cfg := newConfig(opts, config{startTimeout: DefaultStartTimeout})
	if len(cfg.processOnly) > 0 {
		return nil, fmt.Errorf("host: reattach to %s: %s %s only to a plugin this host starts with Load", info.Name, strings.Join(cfg.processOnly, ", "), agree(len(cfg.processOnly), "applies", "apply"))
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("host: reattach to %s: %w", info.Name, err)
	}
	var addr net.Addr
	switch info.Network {
	case "unix":
		addr = &net.UnixAddr{Net: "unix", Name: info.Address}
	case "tcp":
		a, err := net.ResolveTCPAddr("tcp", info.Address)
		if err != nil {
			return nil, fmt.Errorf("host: reattach to %s: %w", info.Name, err)
		}
		addr = a
	default:
		return nil, fmt.Errorf("host: reattach to %s: network %q is neither unix nor tcp", info.Name, info.Network)
	}
	if info.Pid <= 0 {
		return nil, fmt.Errorf("host: reattach to %s: no process ID", info.Name)
	}
	name := info.Name
	if name == "" {
		name = info.Address
	}
	bound, cancel := context.WithTimeout(ctx, cfg.startTimeout)
	defer cancel()
	if err := probe(bound, info.Network, info.Address, nil); err != nil {
		if ctx.Err() != nil || bound.Err() != nil {
			return nil, fmt.Errorf("host: reattach to %s: %w", name, cfg.cutShort(ctx, "no answer", ""))
		}
		return nil, fmt.Errorf("host: reattach to %s: %w (was it loaded WithReattachable, and is it still running?)", name, err)
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: cfg.handshake(),
		Plugins:         goplugin.PluginSet{gp.PluginName: cfg.plugin(name)},
		Reattach: &goplugin.ReattachConfig{
			Protocol:        goplugin.Protocol(info.Protocol),
			ProtocolVersion: info.ProtocolVersion,
			Addr:            addr,
			Pid:             info.Pid,
		},
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolNetRPC},
		Logger:           cfg.logger,
	})
	// A failed reattach leaves the plugin alone: it is not this host's to
	// end (closing go-plugin's client would ask it to quit).
	gd := &goGuard{name: name, log: cfg.logger, timeout: cfg.startTimeout}
	c, err := connectWithin(bound, client, gd, func() (*Client, error) {
		return open(client, gd, cfg.logger, nil, func() {}, func(goplugin.ClientProtocol) {})
	}, func(c *Client) {
		gp.CloseSession(c.rpc) // closed already: the stream's reader ends with it
		c.conn.Close()
	})
	if err != nil {
		if errors.Is(err, errNoAnswer) {
			return nil, fmt.Errorf("host: reattach to %s: %w", name, cfg.cutShort(ctx, "not connected", ": the plugin answered yamux's ping but not go-plugin's calls (has it hung?); it was left running"))
		}
		if errors.Is(err, errConnect) {
			return nil, fmt.Errorf("host: reattach to %s: %w (was it loaded WithReattachable?)", name, errors.Unwrap(err))
		}
		return nil, fmt.Errorf("host: reattach to %s: %w", name, errors.Unwrap(err))
	}
	c.answerWithin, c.callTimeout = cfg.startTimeout, cfg.limits.CallTimeout
	return c, nil
}
