// Package gp joins refbroker to go-plugin: one go-plugin plugin, named
// "refplug", whose only job is to connect host and plugin by one byte
// stream and run a refbroker.Conn over it. Every object, call and callback
// then travels on that stream.
//
// The stream is, in order of preference, a private socket pair the host
// made when it started the plugin process (SocketPair, InheritedSocket),
// or one go-plugin broker stream (a yamux stream inside go-plugin's own
// connection) when there is no socket: a remote plugin, a system without
// unix sockets, a host that asked for it, or a socket lost on the way.
// With refplug's mutual TLS the connection on the socket starts without
// go-plugin's Dispense (StartEarly, early.go). On the host's side,
// go-plugin's own connection passes through a guard that bounds what the
// plugin can send on it (Guard, guard.go).
package gp

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"sync"
	"time"

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

// ReattachEnv tells a plugin that hosts may reattach to it
// (host.WithReattachable): it then outlives a host that goes away, until
// a host closes it.
const ReattachEnv = "REFPLUG_REATTACHABLE"

// SocketEnv names the plugin process's descriptor of the socket pair the
// host made for it.
const SocketEnv = "REFPLUG_SOCKET_FD"

// SocketBuffer is the send and receive buffer each end of a socket pair
// asks for (where there are socket pairs: socket_unix.go). With the
// kernel's default (about 208 KiB on Linux) a message of a megabyte, the
// size of a streamed chunk (a proxied io.Reader's or io.Writer's), fills
// the socket four times over, and each time the writer sleeps until the
// reader has drained it: the two alternate instead of overlapping. With
// a megabyte (which Linux doubles) a chunk fits whole; a 1 MiB streamed
// echo measured 520-610 µs against 720-820. The kernel caps the request
// at net.core.wmem_max and rmem_max, and memory is taken only as data
// waits in the socket, so a peer that stops reading holds at most this
// much more of ours in the kernel, per direction.
const SocketBuffer = 1 << 20

// EarlyEnv, set to "1", asks a plugin whose host uses no TLS to serve on
// its socket at once (SocketSlot.StartEarlyPlain).
const EarlyEnv = "REFPLUG_EARLY"

// The transports a connection can run on (Connection.Transport).
const (
	TransportSocket    = "socketpair"
	TransportMuxBroker = "muxbroker"
)

// tokenSize is the length of the token by which the plugin checks that its
// inherited socket leads to the host it is talking to over go-plugin.
const tokenSize = 16

// socketTimeout bounds the plugin's wait for the host's token.
const socketTimeout = 10 * time.Second

// Connection is what the host side's Dispense of PluginName returns.
type Connection struct {
	Conn      *refbroker.Conn
	Transport string // TransportSocket or TransportMuxBroker
	// Early: the connection was started early (StartEarly) and has no
	// lifeline; the host must close it only once go-plugin's quit has
	// been answered, unless HangUp.
	Early bool
	// HangUp: the plugin of an early start exits, its output sent on,
	// when the host closes the connection (QuitEnv): the host quits it so.
	HangUp bool
}

// Plugin is the goplugin.Plugin both sides register. The plugin side sets
// Roots, Connected and Socket; the host side sets Logger and, when it made
// a socket pair, Socket.
type Plugin struct {
	Roots  map[string]any
	Logger hclog.Logger
	// Limits holds the connection's limits (MaxMessageSize and the
	// others); its Logger and Roots are ignored.
	Limits refbroker.Options
	// Connected receives the plugin side's connection once the host has
	// opened it. It must have room for one. If nil, any number of hosts
	// may connect (a remote plugin), each connection living until its host
	// hangs up.
	Connected chan<- *refbroker.Conn

	// Socket holds this side's end of the private socket pair, if any: on
	// the host, the end it kept; in the plugin, the one it inherited.
	// Several plugins (one per protocol version) may share one slot.
	Socket *SocketSlot

	// MTLS, on the host, is refplug's mutual TLS for this plugin, if it
	// is in use (see MTLS).
	MTLS *MTLS

	// Early, on the host, says it asked the plugin, which uses no TLS, to
	// serve on its socket at once (EarlyEnv; with MTLS, MTLS says so).
	Early bool

	// QuitToken, on the host, is the token of the offer to quit the
	// plugin by hanging up (QuitEnv), if made.
	QuitToken string
}

// SocketSlot hands out one socket end, once.
type SocketSlot struct {
	mu   sync.Mutex
	conn net.Conn
	err  error // why there is no socket
	// credentials: the plugin read its TLS credentials from the socket
	// (ReadCredentials), so the socket leads to the host that wrote them,
	// the only one able to connect.
	credentials bool
	// early: the plugin serves its host on the socket (StartEarly), and
	// refuses to serve anyone else through go-plugin.
	early bool
	// hangUp: the plugin exits when its host hangs up (AcceptHangUp), and
	// its early start says so.
	hangUp bool
}

// NewSocketSlot holds conn, or err saying why there is none.
func NewSocketSlot(conn net.Conn, err error) *SocketSlot {
	return &SocketSlot{conn: conn, err: err}
}

// errNoSocket is why there is no socket when the host passed none.
var errNoSocket = fmt.Errorf("the host passed no socket (%s not set)", SocketEnv)

// Take returns the socket the first time, and an error saying why there
// is none otherwise.
func (s *SocketSlot) Take() (net.Conn, error) {
	if s == nil {
		return nil, errNoSocket
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.conn, s.err
	s.conn, s.err = nil, fmt.Errorf("the socket was already taken")
	if c == nil && err == nil {
		err = errNoSocket
	}
	return c, err
}

// Close closes the socket if nobody took it.
func (s *SocketSlot) Close() {
	if c, _ := s.Take(); c != nil {
		c.Close()
	}
}

var _ goplugin.Plugin = (*Plugin)(nil)

// Server runs in the plugin process, when the host dispenses PluginName.
// If the plugin read its TLS credentials from its socket, only the host
// that wrote them can be asking, so it serves on the socket at once and
// dials the lifeline (see Client); otherwise the host says what to do
// next, by ConnectSocket or Connect.
func (p *Plugin) Server(b *goplugin.MuxBroker) (any, error) {
	s := &server{p: p, broker: b}
	if sock := p.Socket.takeVerified(); sock != nil {
		conn, err := s.serveConn(sock, nil)
		if err != nil {
			return nil, err
		}
		go func() { // Dial waits for the host's Accept, after this Dispense
			lifeline, err := b.Dial(lifelineID)
			if err != nil {
				conn.CloseWithError(fmt.Errorf("refplug: dialing the host's lifeline: %w", err))
				return
			}
			tie(conn, lifeline)
		}()
	}
	return s, nil
}

// lifelineID is the broker stream id of the lifeline the plugin dials when
// it serves on its socket at once; the broker's own ids count up from 1
// and never reach it.
const lifelineID = 1<<32 - 1

// takeVerified takes the socket if the plugin read its credentials from
// it, and returns nil otherwise.
func (s *SocketSlot) takeVerified() net.Conn {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	verified := s.credentials
	s.mu.Unlock()
	if !verified {
		return nil
	}
	c, _ := s.Take()
	return c
}

// options are the Conn's options: the limits, the logger and the roots,
// and which side this is ("host" or "plugin").
func (p *Plugin) options(side, peer string) refbroker.Options {
	o := p.Limits
	o.Logger, o.Roots = p.Logger, p.Roots
	o.Side, o.PeerSide = side, peer
	return o
}

// Client runs in the host process. When refplug's mutual TLS proved that
// the plugin read its credentials from the socket pair (see MTLS), the
// plugin already serves on the socket and has dialed the lifeline (see
// Server): Client accepts the lifeline and starts the host side's Conn.
// Otherwise, with a socket pair, it sends a fresh token down the socket and
// asks the plugin, over go-plugin's connection, to take the socket
// carrying that token; if the plugin cannot, or there is no socket, it asks
// the plugin to dial a broker stream instead.
//
// A connection on the socket is tied to a broker stream, the lifeline,
// that carries nothing: when go-plugin's connection ends (the host closed
// the plugin, or either side died), the lifeline ends and takes the
// connection with it, just as it takes a connection on a broker stream.
// That is what tells a plugin its host has hung up after asking it to
// quit, so that it can exit without losing go-plugin's answer (go-plugin
// issue 331).
func (p *Plugin) Client(b *goplugin.MuxBroker, c *rpc.Client) (any, error) {
	opts := p.options("host", "plugin")
	if p.MTLS != nil && p.MTLS.Pinned() {
		// The plugin proved it read its credentials from the socket: it
		// serves there already, and dialed the lifeline (see Server).
		if sock, _ := p.Socket.Take(); sock != nil {
			lifeline, err := b.Accept(lifelineID)
			if err != nil {
				sock.Close()
				return nil, fmt.Errorf("accepting the plugin's lifeline: %w", err)
			}
			conn := refbroker.NewConn(sock, opts)
			endWith(conn, lifeline)
			return &Connection{Conn: conn, Transport: TransportSocket}, nil
		}
	}
	if sock, _ := p.Socket.Take(); sock != nil {
		token := make([]byte, tokenSize)
		rand.Read(token)
		_, err := sock.Write(token)
		if err != nil {
			err = fmt.Errorf("the plugin process does not hold its end of the socket (did something between host and plugin, such as a wrapper script, close descriptor 3?): %w", err)
		}
		var lifeline net.Conn
		if err == nil {
			lifeline, err = brokerStream(b, func(id uint32) error {
				return c.Call("Plugin.ConnectSocket", SocketArgs{Token: token, Lifeline: id}, new(struct{}))
			})
		}
		if err == nil {
			conn := refbroker.NewConn(sock, opts)
			endWith(conn, lifeline)
			return &Connection{Conn: conn, Transport: TransportSocket}, nil
		}
		sock.Close()
		if p.Logger != nil {
			p.Logger.Warn("the plugin could not take its private socket; using a go-plugin broker stream instead (slower)", "error", err)
		}
	}
	stream, err := brokerStream(b, func(id uint32) error { return c.Call("Plugin.Connect", id, new(struct{})) })
	if err != nil {
		return nil, err
	}
	return &Connection{Conn: refbroker.NewConn(stream, opts), Transport: TransportMuxBroker}, nil
}

// brokerStream reserves a broker stream, has the plugin dial it (connect
// sends the stream's id), and returns the host's end.
func brokerStream(b *goplugin.MuxBroker, connect func(id uint32) error) (net.Conn, error) {
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
	if err := connect(id); err != nil {
		go func() { // the accept gives up by itself; close what it may still get
			if a := <-ch; a.conn != nil {
				a.conn.Close()
			}
		}()
		return nil, fmt.Errorf("asking the plugin to connect: %w", err)
	}
	a := <-ch
	if a.err != nil {
		return nil, fmt.Errorf("accepting the plugin's stream: %w", a.err)
	}
	return a.conn, nil
}

// endWith ends conn when the lifeline ends. Nothing is ever written to the
// lifeline. The host leaves closing its end to go-plugin, whose session
// closes it once the plugin has answered the request to quit; closing it
// earlier (at Client.Close's Shutdown) would tell the plugin its host had
// hung up before the quit was answered.
func endWith(conn *refbroker.Conn, lifeline net.Conn) {
	go func() {
		io.Copy(io.Discard, lifeline) // returns when the lifeline ends
		conn.CloseWithError(errLifelineEnded)
	}()
}

// errLifelineEnded is why a connection ends when its lifeline does: if
// this side had closed it, that reason was recorded first.
var errLifelineEnded = errors.New("the other side went away (its go-plugin connection ended)")

// tie ends conn when the lifeline ends, and the lifeline when conn ends:
// the plugin's side, which has no reason to keep the stream once its
// connection is gone.
func tie(conn *refbroker.Conn, lifeline net.Conn) {
	endWith(conn, lifeline)
	go func() {
		<-conn.Done()
		lifeline.Close()
	}()
}

// SocketArgs are the arguments of the plugin's ConnectSocket.
type SocketArgs struct {
	Token    []byte // what the host wrote down its end of the socket
	Lifeline uint32 // the broker stream to dial and tie the connection to
}

// server is the net/rpc object go-plugin serves in the plugin process.
type server struct {
	p      *Plugin
	broker *goplugin.MuxBroker
}

// ConnectSocket serves the roots on the inherited socket, once it has read
// the host's token from it, tied to the lifeline stream.
func (s *server) ConnectSocket(args SocketArgs, _ *struct{}) error {
	if s.p.Socket.servesEarly() {
		return errServesEarly
	}
	sock, err := s.p.Socket.Take()
	if err != nil {
		return fmt.Errorf("refplug: no private socket: %w", err)
	}
	got := make([]byte, tokenSize)
	sock.SetReadDeadline(time.Now().Add(socketTimeout))
	_, err = io.ReadFull(sock, got)
	sock.SetReadDeadline(time.Time{})
	switch {
	case err != nil:
		sock.Close()
		return fmt.Errorf("refplug: reading the host's token from the private socket: %w", err)
	case !bytes.Equal(got, args.Token):
		sock.Close()
		return fmt.Errorf("refplug: the private socket does not lead to this host (wrong token)")
	}
	lifeline, err := s.broker.Dial(args.Lifeline)
	if err != nil {
		sock.Close()
		return fmt.Errorf("refplug: dialing the host's stream %d: %w", args.Lifeline, err)
	}
	return s.serve(sock, lifeline)
}

// Connect dials the stream the host reserved and serves the roots on it.
func (s *server) Connect(id uint32, _ *struct{}) error {
	if s.p.Socket.servesEarly() {
		return errServesEarly
	}
	conn, err := s.broker.Dial(id)
	if err != nil {
		return fmt.Errorf("refplug: dialing the host's stream %d: %w", id, err)
	}
	return s.serve(conn, nil)
}

// serve runs the plugin side's Conn on stream, tied to lifeline if there
// is one.
func (s *server) serve(stream io.ReadWriteCloser, lifeline net.Conn) error {
	c, err := s.serveConn(stream, nil)
	if err == nil && lifeline != nil {
		tie(c, lifeline)
	}
	return err
}

// serveConn runs the plugin side's Conn on stream, holding the host's
// calls until after is closed (nil: none held).
func (s *server) serveConn(stream io.ReadWriteCloser, after <-chan struct{}) (*refbroker.Conn, error) {
	o := s.p.options("plugin", "host")
	o.ServeAfter = after
	c := refbroker.NewConn(stream, o)
	if s.p.Connected == nil {
		return c, nil
	}
	select {
	case s.p.Connected <- c:
	default:
		c.Close()
		return nil, fmt.Errorf("refplug: the plugin is already connected to a host")
	}
	return c, nil
}
