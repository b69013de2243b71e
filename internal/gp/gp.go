// Package gp joins refbroker to go-plugin: one go-plugin plugin, named
// "refplug", whose only job is to open one brokered stream between host and
// plugin and run a refbroker.Conn over it. Every object, call and callback
// then travels on that stream.
package gp

import (
	"fmt"
	"net"
	"net/rpc"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/refplug/refplug/refbroker"
)

// PluginName is the name the refplug plugin has in go-plugin's plugin set.
const PluginName = "refplug"

// Handshake is the handshake every refplug host and plugin share. A binary
// started without it (for instance by hand) says it is a plugin and exits.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "REFPLUG_PLUGIN",
	MagicCookieValue: "4c8d3f0e-refplug-broker",
}

// LogLevelEnv carries the host's log level to the plugin process.
const LogLevelEnv = "REFPLUG_LOG_LEVEL"

// Plugin is the goplugin.Plugin both sides register. The plugin side sets
// Roots and Connected; the host side sets only Logger.
type Plugin struct {
	Roots          map[string]any
	Logger         hclog.Logger
	MaxMessageSize int
	// Connected receives the plugin side's connection once the host has
	// opened it. It must have room for one. If nil, any number of hosts
	// may connect (a remote plugin), each connection living until its host
	// hangs up.
	Connected chan<- *refbroker.Conn
}

var _ goplugin.Plugin = (*Plugin)(nil)

// Server runs in the plugin process.
func (p *Plugin) Server(b *goplugin.MuxBroker) (any, error) {
	return &server{p: p, broker: b}, nil
}

// Client runs in the host process: it reserves a broker stream, asks the
// plugin to dial it, and starts the host side's Conn on it.
func (p *Plugin) Client(b *goplugin.MuxBroker, c *rpc.Client) (any, error) {
	id := b.NextId()
	type accepted struct {
		conn net.Conn
		err  error
	}
	ch := make(chan accepted, 1)
	go func() {
		conn, err := b.Accept(id) // gives up after go-plugin's accept timeout
		ch <- accepted{conn, err}
	}()
	if err := c.Call("Plugin.Connect", id, new(struct{})); err != nil {
		return nil, fmt.Errorf("asking the plugin to connect: %w", err)
	}
	a := <-ch
	if a.err != nil {
		return nil, fmt.Errorf("accepting the plugin's stream: %w", a.err)
	}
	return refbroker.NewConn(a.conn, refbroker.Options{Logger: p.Logger, MaxMessageSize: p.MaxMessageSize}), nil
}

// server is the net/rpc object go-plugin serves in the plugin process.
type server struct {
	p      *Plugin
	broker *goplugin.MuxBroker
}

// Connect dials the stream the host reserved and serves the roots on it.
func (s *server) Connect(id uint32, _ *struct{}) error {
	conn, err := s.broker.Dial(id)
	if err != nil {
		return fmt.Errorf("refplug: dialing the host's stream %d: %w", id, err)
	}
	c := refbroker.NewConn(conn, refbroker.Options{Logger: s.p.Logger, Roots: s.p.Roots, MaxMessageSize: s.p.MaxMessageSize})
	if s.p.Connected == nil {
		return nil
	}
	select {
	case s.p.Connected <- c:
	default:
		c.Close()
		return fmt.Errorf("refplug: the plugin is already connected to a host")
	}
	return nil
}
