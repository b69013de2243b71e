package gp

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"time"
	"unsafe"

	goplugin "github.com/hashicorp/go-plugin"
)

// The guard: go-plugin's connection to a plugin, checked frame by frame
// on the host's side before go-plugin's yamux session reads it.
//
// go-plugin v1.8.0 runs a MuxBroker on every connection it makes to a
// plugin (rpc_client.go), over a yamux session with yamux's defaults, and
// offers no way to configure either. The broker accepts every stream the
// plugin opens, reads the stream's id before it accepts the next, and
// drops a second stream with an id already waiting without closing it;
// each open stream can hold a 256 KiB window of data, and yamux answers
// each ping the plugin asks for from a goroutine of its own, which waits
// up to 10 s to write. So a plugin that opens streams, or asks for pings,
// without end made the host hold all it sent (measured: 2,000 streams,
// 1.1 GiB of host memory and 2,000 goroutines within 2 s). The plugin
// holds the TLS credentials of that connection, so TLS does not keep it
// out.
//
// The host therefore points go-plugin at a guard (Guard): go-plugin dials
// the guard's unix socket, in a directory only this user may enter, which
// takes connections from this process only: where the kernel tells the
// pid of a socket's peer (Linux, macOS: CanGuard), by that; elsewhere by
// a TLS handshake on that socket too, with keys made for it, which only
// go-plugin's configuration holds (guardHopTLS). The guard dials the
// plugin, makes the TLS connection go-plugin would have made, and copies
// yamux's frames both ways, checking each frame the plugin sends:
//
//   - at most GuardStreams streams the plugin opened are open at once (a
//     refplug plugin opens at most two: its lifeline, and its connection's
//     stream where there is no socket);
//   - a data frame carries at most yamux's window (256 KiB);
//   - the plugin asks for at most guardPingBurst pings at once, then one a
//     second (yamux's keep-alive asks every 30 s);
//   - the frames are yamux's (version 0, one of its four types), and a
//     stream the plugin opens has a plugin's id and is not open already;
//   - a frame for a stream that is not open is dropped, as yamux would
//     drop it (without yamux's warning in the host's log for each);
//   - a net/rpc message (gob: go-plugin's control stream, and the
//     streams the host dials) is at most guardGobMessage long: the host's
//     gob reader holds what arrives of a message, up to 8 GiB, until it is
//     whole.
//
// A plugin that breaks one of these is cut off at once: both connections
// are closed and onBreach is told why (the host ends the plugin). What
// the host sends passes unchecked; the guard reads it only to know which
// streams are open.

// Guard stands between go-plugin's connection and the plugin (see above).
type Guard struct {
	target   net.Addr
	tls      *tls.Config
	onBreach func(error)
	addr     *net.UnixAddr // the socket go-plugin is to dial, made once the plugin is reached
	dir      string
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	dialed   chan struct{} // closed once the plugin is connected, or cannot be
	dialErr  error         // why it cannot be, set before dialed is closed
	hop      *tls.Config   // the TLS server side of go-plugin's connection to the guard, if any (guardHopTLS)

	mu       sync.Mutex
	conns    []net.Conn // the host's (go-plugin's) and the plugin's, once made
	closed   bool
	err      error                   // why the guard cut the connection off, if it did
	streams  map[uint32]*guardStream // the open streams
	opened   int                     // of them, those the plugin opened
	pings    float64                 // pings the plugin may still ask for now
	pingedAt time.Time
}

// NewGuard makes a guard for go-plugin's connection to the plugin at
// target, over TLS with tlsConfig unless it is nil, and starts
// connecting to the plugin. The plugin must answer within timeout (its
// TLS handshake included), and go-plugin must then dial Addr within
// timeout, or the guard gives up. Addr is listened on only once the
// plugin is reached (Wait): before, or if it never is, a dial of it fails
// at once (go-plugin's Kill dials, to ask the plugin to quit). onBreach
// (which must not block) is called once, from the guard's goroutine, if
// the plugin breaks the guard's rules; the connection is then closed
// already.
func NewGuard(target net.Addr, tlsConfig *tls.Config, timeout time.Duration, onBreach func(error)) (*Guard, error) {
	return newGuard(target, tlsConfig, nil, timeout, onBreach)
}

// newGuard is NewGuard, with hop as the TLS server side of the guard's
// socket (nil: none; then it takes connections by their pid).
func newGuard(target net.Addr, tlsConfig, hop *tls.Config, timeout time.Duration, onBreach func(error)) (*Guard, error) {
	dir, err := os.MkdirTemp("", "refplug-") // 0700: only this user can reach the socket
	if err != nil {
		return nil, fmt.Errorf("making the guard's directory: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Guard{
		target: target, tls: tlsConfig, hop: hop, onBreach: onBreach, addr: &net.UnixAddr{Net: "unix", Name: filepath.Join(dir, "gp")}, dir: dir, ctx: ctx, cancel: cancel, dialed: make(chan struct{}),
		streams: map[uint32]*guardStream{}, pings: guardPingBurst, pingedAt: time.Now(),
	}
	g.wg.Add(1)
	go g.run(timeout)
	return g, nil
}

// Addr is the address go-plugin is to dial.
func (g *Guard) Addr() net.Addr { return g.addr }

// Err reports why the guard cut the plugin off, or nil.
func (g *Guard) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// Close ends the guard and both connections, and waits for its goroutines.
func (g *Guard) Close() error {
	g.cancel()
	g.closeConns()
	g.wg.Wait()
	return nil
}

// run dials the plugin, takes go-plugin's connection, and copies between
// them until either ends.
func (g *Guard) run(timeout time.Duration) {
	defer g.wg.Done()
	defer os.RemoveAll(g.dir)
	plugin, err := g.dial(timeout)
	var ln *net.UnixListener
	if err == nil {
		ln, err = net.ListenUnix("unix", g.addr)
		if err != nil {
			plugin.Close()
			err = fmt.Errorf("listening for go-plugin's connection: %w", err)
		}
	}
	g.dialErr = err
	close(g.dialed)
	if err != nil {
		return
	}
	host, err := g.accept(ln, timeout)
	ln.Close()
	if err != nil {
		plugin.Close()
		return
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		host.Close()
		plugin.Close()
		return
	}
	g.conns = []net.Conn{host, plugin}
	g.mu.Unlock()
	g.wg.Add(2)
	go g.pump(plugin, host, true)
	go g.pump(host, plugin, false)
}

// Wait waits until the guard has connected to the plugin (its TLS
// handshake made, if there is TLS), and returns the error if it could
// not: go-plugin is to dial the guard only then, so that its connection
// is made when, and only when, it would have been without the guard.
func (g *Guard) Wait() error {
	<-g.dialed
	return g.dialErr
}

// accept returns the first connection to ln from this process (its pid,
// guardPeer, or its TLS handshake with g.hop), or an error once the guard
// is closed or timeout has passed.
func (g *Guard) accept(ln *net.UnixListener, timeout time.Duration) (net.Conn, error) {
	deadline := time.Now().Add(timeout)
	ln.SetDeadline(deadline)
	stop := context.AfterFunc(g.ctx, func() { ln.SetDeadline(time.Now()) })
	defer stop()
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			return nil, err
		}
		if g.hop == nil {
			if guardPeer(c) {
				return c, nil
			}
			c.Close()
			continue
		}
		// Another process that connects first can hold the handshake up
		// for a few seconds at most; go-plugin waits in the backlog.
		ctx, cancel := context.WithTimeout(g.ctx, min(time.Until(deadline), guardHopHandshake))
		tc := tls.Server(c, g.hop)
		err = tc.HandshakeContext(ctx)
		cancel()
		if err == nil {
			return tc, nil
		}
		c.Close()
	}
}

// guardHopTLS: go-plugin's connection to the guard is under TLS (with
// keys made for it, of which go-plugin's configuration holds the host's
// half) where the guard cannot tell which process connects by its pid.
// A variable for the tests, which try it where pids are told.
var guardHopTLS = !CanGuard

// guardHopHandshake bounds the TLS handshake of one connection to the
// guard's socket (guardHopTLS).
const guardHopHandshake = 5 * time.Second

// dial connects to the plugin, making the TLS connection go-plugin would
// have made.
func (g *Guard) dial(timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(g.ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, g.target.Network(), g.target.String())
	if err != nil || g.tls == nil {
		return conn, err
	}
	tc := tls.Client(conn, g.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake with the plugin: %w", err)
	}
	return tc, nil
}

// closeConns closes both connections, and any made later.
func (g *Guard) closeConns() {
	g.mu.Lock()
	g.closed = true
	conns := g.conns
	g.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// pump copies frames from src to dst until either ends, checking those
// from the plugin (fromPlugin).
//
// The connection carries little beside a socket pair (the plugin's
// stdout and stderr streams, the quit), and a host may load many plugins:
// a pump holds no buffer while it waits for a frame. It reads a frame's
// header into its own 12 bytes, then takes a reader and a frame buffer
// from pools, and gives them back as soon as the reader holds nothing
// more (frames that come back to back are read many at a time).
func (g *Guard) pump(src io.Reader, dst io.Writer, fromPlugin bool) {
	defer g.wg.Done()
	defer g.closeConns()
	var hdr [yamuxHeaderSize]byte
	var r *bufio.Reader // nil while nothing is buffered
	defer func() { putGuardReader(r) }()
	for {
		if r != nil && r.Buffered() == 0 {
			putGuardReader(r)
			r = nil
		}
		if r == nil {
			if _, err := io.ReadFull(src, hdr[:]); err != nil {
				return
			}
			r = guardReaders.Get().(*bufio.Reader)
			r.Reset(src)
		} else if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		if !g.forward(r, dst, hdr[:], fromPlugin) {
			return
		}
	}
}

// forward checks the frame whose header is h, reads its data from r and
// writes the frame to dst, or drops it if the guard's rules say so. It
// reports whether the pump goes on.
func (g *Guard) forward(r *bufio.Reader, dst io.Writer, h []byte, fromPlugin bool) bool {
	forward, err := g.admit(h, fromPlugin)
	if err != nil {
		g.breach(err)
		return false
	}
	n := 0 // the data that follows
	if h[1] == yamuxData {
		n = int(binary.BigEndian.Uint32(h[8:12]))
	}
	if !forward {
		_, err := r.Discard(n)
		return err == nil
	}
	id := binary.BigEndian.Uint32(h[4:8])
	scan := fromPlugin && n > 0
	// The header and the data, in pieces of a frame buffer.
	bp := getGuardFrame(yamuxHeaderSize + n)
	defer guardFrames[guardFrameClass(len(*bp))].Put(bp)
	buf := *bp
	off := copy(buf, h)
	for {
		k := min(n, len(buf)-off)
		if _, err := io.ReadFull(r, buf[off:off+k]); err != nil {
			return false
		}
		if scan {
			if err := g.scan(id, buf[off:off+k]); err != nil {
				g.breach(err)
				return false
			}
		}
		off += k
		n -= k
		if n == 0 {
			break
		}
		if _, err := dst.Write(buf[:off]); err != nil {
			return false
		}
		off = 0
	}
	_, err = dst.Write(buf[:off])
	return err == nil
}

// The pumps' pools: readers of guardSmallFrame bytes, and frame buffers
// of guardSmallFrame bytes (most frames: headers, window updates, log
// lines) and of guardBigFrame (a longer frame passes in pieces of it).
const (
	guardSmallFrame = 4 << 10
	guardBigFrame   = 64 << 10
)

var (
	guardReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, guardSmallFrame) }}
	guardFrames  = [2]sync.Pool{
		{New: func() any { b := make([]byte, guardSmallFrame); return &b }},
		{New: func() any { b := make([]byte, guardBigFrame); return &b }},
	}
)

// getGuardFrame returns a frame buffer for a frame of need bytes: a small
// one if it fits, else a big one.
func getGuardFrame(need int) *[]byte {
	return guardFrames[guardFrameClass(need)].Get().(*[]byte)
}

// guardFrameClass is the index in guardFrames of the buffers for frames
// of n bytes.
func guardFrameClass(n int) int {
	if n > guardSmallFrame {
		return 1
	}
	return 0
}

// putGuardReader gives r, if any, back to its pool, forgetting its
// source.
func putGuardReader(r *bufio.Reader) {
	if r != nil {
		r.Reset(nil)
		guardReaders.Put(r)
	}
}

// breach cuts the plugin off for err, and says so once.
func (g *Guard) breach(err error) {
	g.mu.Lock()
	first := g.err == nil
	if first {
		g.err = err
	}
	g.mu.Unlock()
	g.closeConns()
	if first && g.onBreach != nil {
		g.onBreach(err)
	}
}

// GuardClient points go-plugin's client, once started (its Start has
// returned), at a new guard for the plugin it started or reattached to:
// go-plugin then dials the guard (under TLS of its own where guardHopTLS),
// and the guard dials the plugin with the TLS configuration go-plugin was
// to use. It returns the guard and the
// plugin's own address. go-plugin keeps both in unexported fields
// (Client.address, Client.config); a go-plugin that lays them out
// otherwise gets no guard, and GuardClient says so
// (TestGuardClient fails on such a version, so it is noticed).
func GuardClient(client *goplugin.Client, timeout time.Duration, onBreach func(error)) (*Guard, net.Addr, error) {
	v := reflect.ValueOf(client).Elem()
	addrField := field(v, "address", reflect.Interface)
	configField := field(v, "config", reflect.Pointer)
	if !addrField.IsValid() || !configField.IsValid() || configField.IsNil() {
		return nil, nil, errors.New("go-plugin's Client lays out its address or configuration otherwise than v1.8.0")
	}
	addrField = reflect.NewAt(addrField.Type(), unsafe.Pointer(addrField.UnsafeAddr())).Elem()
	addr, _ := addrField.Interface().(net.Addr)
	config, _ := reflect.NewAt(configField.Type(), unsafe.Pointer(configField.UnsafeAddr())).Elem().Interface().(*goplugin.ClientConfig)
	if addr == nil || config == nil {
		return nil, nil, errors.New("go-plugin's Client has no address or configuration (not started?)")
	}
	if n := addr.Network(); n != "unix" && n != "tcp" {
		return nil, nil, fmt.Errorf("the plugin's address is on network %q, not unix or tcp", n)
	}
	var hop *tls.Config
	var hostSide *tls.Config // go-plugin's, to the guard
	if guardHopTLS {
		m, err := NewMTLS()
		if err != nil {
			return nil, nil, err
		}
		hop = m.PluginConfig()
		hostSide, _ = m.HostConfig()
	}
	g, err := newGuard(addr, config.TLSConfig, hop, timeout, onBreach)
	if err != nil {
		return nil, nil, err
	}
	config.TLSConfig = hostSide // the plugin's TLS is the guard's to make
	addrField.Set(reflect.ValueOf(g.Addr()))
	return g, addr, nil
}
