package gp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/refplug/refplug/refbroker"
)

// The early start: with refplug's mutual TLS, the plugin serves on its
// socket without waiting for go-plugin's Dispense.
//
// The plugin reads its TLS credentials from the socket before go-plugin's
// handshake, which proves the socket leads to the host that wrote them
// (see MTLS); it needs nothing more from go-plugin's connection to serve
// there. So, when the host asks for it (MTLSEnv=earlyMTLS), the plugin
// writes earlyReady down the socket as soon as it has its credentials,
// before go-plugin prints its handshake line, and waits for the host to
// name the protocol version go-plugin negotiated. The host, once
// go-plugin's handshake is over, finds earlyReady already there, names the
// version (earlyStart and the version, four bytes, big-endian) and starts
// its side of the connection at once: no Dispense round trip, no broker
// stream, and go-plugin's TLS handshake, which they waited for, completes
// in the background (together about a millisecond of Load). A plugin of
// an older refplug, which knows only MTLSEnv=1, writes nothing; the host
// then dispenses as before.
//
// Without TLS (host.WithAutoMTLS(false)) the host asks for the same start
// with EarlyEnv=1, unless hosts may reattach (which needs go-plugin's
// Dispense): the plugin writes earlyReady on the socket it was started
// with (StartEarlyPlain) and the start goes on as above, except that it
// is the host that holds its first calls, until it has made go-plugin's
// connection and one round trip on it (the plugin cannot tell when
// go-plugin serves without TLS's handshake). Either way, once the plugin
// has written earlyReady its go-plugin side refuses Dispense's
// connections (errServesEarly), so a process that finds go-plugin's
// socket, which without TLS it could talk to, reaches no object.
//
// Such a connection has no lifeline (see Plugin.Client): the plugin learns
// that its host hung up from the socket itself. At Close the host hangs
// up, and the plugin exits once its output is sent on, if it said it
// would (earlyReadyHangUp; see hangup.go); otherwise (an older refplug)
// the host asks the plugin to quit through go-plugin first and closes the
// socket only once go-plugin's answer is in (host.Client.Close), which
// keeps that answer from being lost as the plugin exits (go-plugin issue
// 331).

// earlyMTLS is MTLSEnv's value when the host starts early.
const earlyMTLS = "2"

// EarlyRequested reports whether MTLSEnv's value v asks the plugin to
// start early.
func EarlyRequested(v string) bool { return v == earlyMTLS }

// The marks of the early start.
const (
	earlyReady byte = 0xE5 // plugin to host: serving here once told the version
	earlyStart byte = 0x5E // host to plugin: then the version
)

// StartEarly, in the plugin, takes the socket, writes earlyReady down it
// and then, on a goroutine, waits for the host to name the protocol
// version and serves that version's plugin's roots (plugins, by version),
// holding the host's calls until ready is closed: go-plugin's Serve,
// which goes on after the handshake line, must first have pointed
// os.Stdout and os.Stderr at its pipes, or the plugin's methods would race
// with it (and write where the host no longer reads). The mutual TLS's
// GoPluginServing says so, when go-plugin's connection arrives: a first
// call made at once waits for it (Dispense does not).
// started gets the connection, or the error that ended the start (the host
// went away, or named a version this plugin does not serve). StartEarly
// returns an error if it cannot take the socket (no credentials were read
// from it) or write to it (then the socket is closed, and the host finds
// no mark).
func (s *SocketSlot) StartEarly(plugins map[int]*Plugin, ready <-chan struct{}, started func(*refbroker.Conn, error)) error {
	sock := s.takeVerified()
	if sock == nil {
		return fmt.Errorf("no socket with credentials read from it")
	}
	return s.startEarly(sock, plugins, ready, started)
}

// StartEarlyPlain is StartEarly for a host that uses no TLS and asked for
// the early start (EarlyEnv): there are no credentials to read, and the
// socket is the descriptor the process was started with, whose other end
// only the process that started it holds. Nothing in the plugin says when
// go-plugin's Serve has set up stdout and stderr, so the calls are not
// held here: the host holds its calls (StartEarly's callAfter) until it
// has made go-plugin's connection and one round trip on it, which
// go-plugin's server answers only once that setup is done.
func (s *SocketSlot) StartEarlyPlain(plugins map[int]*Plugin, started func(*refbroker.Conn, error)) error {
	sock, err := s.Take()
	if sock == nil {
		return err
	}
	return s.startEarly(sock, plugins, nil, started)
}

func (s *SocketSlot) startEarly(sock net.Conn, plugins map[int]*Plugin, ready <-chan struct{}, started func(*refbroker.Conn, error)) error {
	s.mu.Lock()
	mark := earlyReady
	if s.hangUp {
		mark = earlyReadyHangUp
	}
	s.mu.Unlock()
	if _, err := sock.Write([]byte{mark}); err != nil {
		sock.Close()
		return fmt.Errorf("writing to the socket: %w", err)
	}
	// The host starts on the socket now: go-plugin's Dispense, which
	// another process might reach without TLS, is refused from here on.
	s.mu.Lock()
	s.early = true
	s.mu.Unlock()
	go func() {
		conn, err := serveWhenTold(sock, plugins, ready)
		if err != nil {
			sock.Close()
		}
		started(conn, err)
	}()
	return nil
}

// servesEarly reports whether the plugin serves its host on the socket
// at once (StartEarly); s may be nil.
func (s *SocketSlot) servesEarly() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.early
}

// errServesEarly refuses a connection through go-plugin's Dispense to a
// plugin that serves its host on its socket: only another process can
// be asking.
var errServesEarly = errors.New("refplug: the plugin serves its host on its private socket; no other connection is accepted")

// serveWhenTold reads the host's earlyStart and version from sock and
// serves that version's roots on it, the calls held until ready is closed.
func serveWhenTold(sock net.Conn, plugins map[int]*Plugin, ready <-chan struct{}) (*refbroker.Conn, error) {
	var head [5]byte
	sock.SetReadDeadline(time.Now().Add(socketTimeout))
	_, err := io.ReadFull(sock, head[:])
	sock.SetReadDeadline(time.Time{})
	switch {
	case err == io.EOF || errors.Is(err, syscall.ECONNRESET):
		return nil, fmt.Errorf("refplug: the host hung up before it started the connection")
	case err != nil:
		return nil, fmt.Errorf("refplug: reading the host's start from the socket: %w", err)
	case head[0] != earlyStart:
		return nil, fmt.Errorf("refplug: the host's start on the socket begins with %#x, not %#x", head[0], earlyStart)
	}
	v := int(binary.BigEndian.Uint32(head[1:]))
	p, ok := plugins[v]
	if !ok {
		return nil, fmt.Errorf("refplug: the host asked for protocol version %d, which this plugin does not serve", v)
	}
	return (&server{p: p}).serveConn(sock, ready)
}

// MayStartEarly reports, on the host, whether the plugin was asked to
// start early (see StartEarly and StartEarlyPlain); p may be nil.
func (p *Plugin) MayStartEarly() bool {
	return p != nil && (p.Early || p.MTLS != nil && p.MTLS.early)
}

// StartEarly, on the host, starts the connection on the socket if the
// plugin said it serves there at once: it wrote earlyReady before
// go-plugin's handshake line, so once the handshake is over the mark is
// there to read without waiting. It names version, the protocol version
// go-plugin negotiated, and returns the Connection, which has no lifeline.
// The host's calls wait for callAfter (nil: none do; see
// StartEarlyPlain). It returns nil and no error if the plugin wrote no
// mark (it did not get its socket, or it is of an older refplug that
// waits for go-plugin's Dispense: the caller then dispenses); an error if
// the socket holds something else or cannot be written.
func (p *Plugin) StartEarly(version int, callAfter <-chan struct{}) (*Connection, error) {
	if !p.MayStartEarly() {
		return nil, nil
	}
	s := p.Socket
	s.mu.Lock()
	sock := s.conn
	s.mu.Unlock()
	if sock == nil {
		return nil, nil
	}
	mark, err := readNow(sock)
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading the plugin's socket: %w", err)
	case mark < 0:
		return nil, nil // no mark: dispense
	case byte(mark) == earlyReadyHangUp && p.QuitToken == "":
		return nil, fmt.Errorf("the plugin's socket begins with %#x, the mark of a plugin that quits when its host hangs up, which this host did not offer", mark)
	case byte(mark) != earlyReady && byte(mark) != earlyReadyHangUp:
		return nil, fmt.Errorf("the plugin's socket begins with %#x, not the mark of a plugin serving there (%#x or %#x)", mark, earlyReady, earlyReadyHangUp)
	}
	sock, _ = s.Take()
	head := []byte{earlyStart, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(head[1:], uint32(version))
	if _, err := sock.Write(head); err != nil {
		sock.Close()
		return nil, fmt.Errorf("writing to the plugin's socket: %w", err)
	}
	opts := p.options("host", "plugin")
	opts.CallAfter = callAfter
	return &Connection{Conn: refbroker.NewConn(sock, opts), Transport: TransportSocket, Early: true, HangUp: byte(mark) == earlyReadyHangUp}, nil
}
