//go:build linux || darwin

package gp

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/rpc"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/yamux"
	"github.com/refplug/refplug/internal/testutil"
)

// guarded is a guard between a host's yamux client session and whatever
// the plugin side (plugin) does on the connection it accepts.
type guarded struct {
	guard    *Guard
	host     *yamux.Session
	hostLog  *testutil.Buffer
	breaches chan error
}

// guardTo starts a plugin listener whose first connection goes to plugin
// (on its goroutine), a guard to it, and a host session through the guard.
func guardTo(t *testing.T, serverTLS, clientTLS *tls.Config, plugin func(net.Conn)) *guarded {
	t.Helper()
	addr := pluginListener(t, func(c net.Conn) {
		if serverTLS != nil {
			c = tls.Server(c, serverTLS)
		}
		plugin(c)
	})
	g := &guarded{hostLog: new(testutil.Buffer), breaches: make(chan error, 2)}
	var err error
	g.guard, err = NewGuard(addr, clientTLS, 10*time.Second, func(err error) { g.breaches <- err })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.guard.Close() })
	if err := g.guard.Wait(); err != nil {
		t.Fatalf("the guard did not reach the plugin: %v", err)
	}
	conn, err := net.Dial("unix", g.guard.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = g.hostLog
	g.host, err = yamux.Client(conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.host.Close() })
	return g
}

// pluginListener listens where a plugin would, and runs serve on the
// first connection (then closes it); the test waits for it at its end.
func pluginListener(t *testing.T, serve func(net.Conn)) net.Addr {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "plugin"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { l.Close() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c)
	}()
	return l.Addr()
}

// yamuxServer runs a yamux server session on c (the plugin's side) and
// hands it to serve.
func yamuxServer(t *testing.T, serve func(*yamux.Session)) func(net.Conn) {
	return func(c net.Conn) {
		cfg := yamux.DefaultConfig()
		cfg.LogOutput = io.Discard
		s, err := yamux.Server(c, cfg)
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		serve(s)
	}
}

// TestGuardPassesYamux: through the guard, with TLS or without, streams
// both sides open carry their data both ways, a plugin that opens and
// closes many more streams than GuardStreams, one after another, and
// pings now and then, is not cut off, and Close ends it all.
func TestGuardPassesYamux(t *testing.T) {
	m, err := NewMTLS()
	if err != nil {
		t.Fatal(err)
	}
	hostTLS, _ := m.HostConfig()
	for name, tlsOn := range map[string]bool{"TLS": true, "without TLS": false} {
		t.Run(name, func(t *testing.T) {
			var serverTLS, clientTLS *tls.Config
			if tlsOn {
				serverTLS, clientTLS = m.PluginConfig(), hostTLS
			}
			pluginDone := make(chan error, 1)
			g := guardTo(t, serverTLS, clientTLS, yamuxServer(t, func(s *yamux.Session) {
				pluginDone <- func() error {
					in, err := s.AcceptStream() // the host's: echo it
					if err != nil {
						return err
					}
					go func() { io.Copy(in, in); in.Close() }()
					for i := range 3 * GuardStreams {
						out, err := s.OpenStream()
						if err != nil {
							return err
						}
						if _, err := out.Write([]byte{byte(i)}); err != nil {
							return err
						}
						if _, err := io.ReadFull(out, make([]byte, 1)); err != nil { // the host has closed it
							if err != io.EOF {
								return err
							}
						}
						out.Close()
						if i%GuardStreams == 0 {
							if _, err := s.Ping(); err != nil {
								return err
							}
						}
					}
					return nil
				}()
			}))
			s, err := g.host.OpenStream()
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Repeat("through the guard ", 50000) // several windows
			go s.Write([]byte(want))
			got := make([]byte, len(want))
			if _, err := io.ReadFull(s, got); err != nil || string(got) != want {
				t.Fatalf("the echo through the guard: %d bytes, %v", len(got), err)
			}
			for i := range 3 * GuardStreams {
				in, err := g.host.AcceptStream()
				if err != nil {
					t.Fatalf("stream %d the plugin opened: %v", i, err)
				}
				b := make([]byte, 1)
				if _, err := io.ReadFull(in, b); err != nil || b[0] != byte(i) {
					t.Fatalf("stream %d the plugin opened carried %v, %v", i, b, err)
				}
				in.Close()
			}
			if err := testutil.Receive(t, pluginDone, 10*time.Second, "the plugin's side did not finish"); err != nil {
				t.Fatalf("the plugin's side: %v", err)
			}
			select {
			case err := <-g.breaches:
				t.Fatalf("the plugin was cut off: %v", err)
			default:
			}
			closed := make(chan error, 1)
			go func() { closed <- g.guard.Close() }()
			testutil.Receive(t, closed, 5*time.Second, "the guard's Close did not return")
			testutil.Eventually(t, "the host's session to end with the guard", g.host.IsClosed)
		})
	}
}

// frame is a yamux frame header.
func frame(typ byte, flags uint16, id, length uint32) []byte {
	h := make([]byte, yamuxHeaderSize)
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:], flags)
	binary.BigEndian.PutUint32(h[4:], id)
	binary.BigEndian.PutUint32(h[8:], length)
	return h
}

// TestGuardCutsOff: each frame a plugin may not send cuts it off: the
// guard says why (once), and the host's session ends.
func TestGuardCutsOff(t *testing.T) {
	many := func(n int, f func(i int) []byte) []byte {
		var b []byte
		for i := range n {
			b = append(b, f(i)...)
		}
		return b
	}
	for _, tc := range []struct {
		name, why string
		frames    []byte
	}{
		{"streams left open", "more than 16 streams opened and left open",
			many(GuardStreams+1, func(i int) []byte { return frame(yamuxWindowUpdate, yamuxSYN, uint32(2+2*i), 0) })},
		{"pings", "more than 8 pings asked for at once",
			many(guardPingBurst+1, func(i int) []byte { return frame(yamuxPing, yamuxSYN, 0, uint32(i)) })},
		{"past the window", "a data frame of 262145 bytes on stream 2, past yamux's window of 262144",
			append(frame(yamuxWindowUpdate, yamuxSYN, 2, 0), frame(yamuxData, 0, 2, yamuxWindow+1)...)},
		{"a host's id", "stream 3 opened with an id that is not the plugin's to use", frame(yamuxData, yamuxSYN, 3, 0)},
		{"opened twice", "stream 2 opened again while open",
			append(frame(yamuxWindowUpdate, yamuxSYN, 2, 0), frame(yamuxWindowUpdate, yamuxSYN, 2, 0)...)},
		{"another version", "a frame of yamux version 1 (yamux's is 0)", append([]byte{1}, frame(yamuxPing, yamuxSYN, 0, 1)[1:]...)},
		{"unknown type", "a frame of unknown type 9", append([]byte{0, 9}, frame(0, 0, 0, 0)[2:]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := guardTo(t, nil, nil, func(c net.Conn) {
				go io.Copy(io.Discard, c)
				c.Write(tc.frames)
				io.Copy(io.Discard, c) // until the guard closes it
			})
			err := testutil.Receive(t, g.breaches, 10*time.Second, "the plugin was not cut off")
			if err == nil || err.Error() != tc.why {
				t.Errorf("the guard's reason = %v; want %q", err, tc.why)
			}
			if got := g.guard.Err(); got != err {
				t.Errorf("Err = %v; want %v", got, err)
			}
			testutil.Eventually(t, "the host's session to end when the plugin is cut off", g.host.IsClosed)
			select {
			case err := <-g.breaches:
				t.Errorf("the guard said twice that it cut the plugin off: %v", err)
			default:
			}
		})
	}
}

// TestGuardDropsFramesOfNoStream: frames for streams that are not open
// go no further (yamux would have logged a warning for each), and the
// connection goes on.
func TestGuardDropsFramesOfNoStream(t *testing.T) {
	g := guardTo(t, nil, nil, func(c net.Conn) {
		go io.Copy(io.Discard, c)
		var b []byte
		for i := range 100 {
			b = append(b, frame(yamuxData, 0, uint32(5+2*i), 3)...)
			b = append(b, "old"...)
			b = append(b, frame(yamuxWindowUpdate, 0, uint32(4+2*i), 1)...)
		}
		b = append(b, frame(yamuxWindowUpdate, yamuxSYN, 2, 0)...)
		b = append(b, frame(yamuxData, 0, 2, 5)...)
		b = append(b, "fresh"...)
		c.Write(b)
		io.Copy(io.Discard, c)
	})
	s, err := g.host.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(s, got); err != nil || string(got) != "fresh" {
		t.Fatalf("the stream after the stray frames carried %q, %v", got, err)
	}
	if log := g.hostLog.String(); log != "" {
		t.Errorf("the host's yamux logged:\n%s", log)
	}
}

// TestGuardTLSRefused: a plugin whose TLS the host's configuration does
// not accept is not reached: Wait says why.
func TestGuardTLSRefused(t *testing.T) {
	m1, err := NewMTLS()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := NewMTLS()
	if err != nil {
		t.Fatal(err)
	}
	hostTLS, _ := m1.HostConfig()
	addr := pluginListener(t, func(c net.Conn) { tls.Server(c, m2.PluginConfig()).Handshake() })
	g, err := NewGuard(addr, hostTLS, 10*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	err = g.Wait()
	if err == nil || !strings.Contains(err.Error(), "TLS handshake with the plugin") {
		t.Fatalf("Wait = %v; want the TLS handshake's failure", err)
	}
}

// controlServer is go-plugin's control object, as its server serves it.
type controlServer struct{}

func (controlServer) Ping(null bool, response *struct{}) error { return nil }

// TestGuardClient: GuardClient fits a guard into a started go-plugin
// Client (v1.8.0's layout): go-plugin's connection then goes through the
// guard, which cuts off a plugin that floods it; both ways of taking only
// go-plugin's connection on the guard's socket.
func TestGuardClient(t *testing.T) {
	for name, hop := range map[string]bool{"the host's pid": false, "TLS on the guard's socket": true} {
		t.Run(name, func(t *testing.T) {
			defer func(was bool) { guardHopTLS = was }(guardHopTLS)
			guardHopTLS = hop
			testGuardClient(t, hop)
		})
	}
}

// testGuardClient is TestGuardClient with go-plugin's connection to the
// guard told from another process's by TLS (hop) or by its pid. With TLS,
// a process that connects first and does not hold go-plugin's keys is
// hung up on, and go-plugin's connection still gets through.
func testGuardClient(t *testing.T, hop bool) {
	flood := make(chan struct{})
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "plugin"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	serve := yamuxServer(t, func(s *yamux.Session) {
		control, err := s.AcceptStream()
		if err != nil {
			return // go-plugin's reattach dials once to see that the plugin is there
		}
		srv := rpc.NewServer()
		if err := srv.RegisterName("Control", controlServer{}); err != nil {
			t.Error(err)
		}
		go srv.ServeConn(control)
		<-flood
		for range GuardStreams + 1 {
			if _, err := s.OpenStream(); err != nil {
				return
			}
		}
		<-s.CloseChan()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: Handshake,
		Plugins:         goplugin.PluginSet{},
		Reattach:        &goplugin.ReattachConfig{Protocol: goplugin.ProtocolNetRPC, ProtocolVersion: 1, Addr: l.Addr(), Pid: os.Getpid(), Test: true},
	})
	defer client.Kill()
	if _, err := client.Start(); err != nil {
		t.Fatal(err)
	}
	breaches := make(chan error, 1)
	g, addr, err := GuardClient(client, 10*time.Second, func(err error) { breaches <- err })
	if err != nil {
		t.Fatalf("GuardClient: %v (has go-plugin's Client changed its layout?)", err)
	}
	defer g.Close()
	if addr.String() != l.Addr().String() {
		t.Errorf("GuardClient returned %v as the plugin's address; want %v", addr, l.Addr())
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if hop {
		c, err := net.Dial("unix", g.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(frame(yamuxWindowUpdate, yamuxSYN, 1, 0)) // plain yamux, not TLS
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 64)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a connection without go-plugin's keys was answered (%d bytes, %v)", n, err)
		}
		c.Close()
	}
	rpcClient, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := rpcClient.Ping(); err != nil {
		t.Fatalf("go-plugin's ping through the guard: %v", err)
	}
	close(flood)
	err = testutil.Receive(t, breaches, 10*time.Second, "the flooding plugin was not cut off")
	if !strings.Contains(err.Error(), "more than 16 streams") {
		t.Errorf("the guard's reason = %v", err)
	}
	testutil.Eventually(t, "go-plugin's connection to end", func() bool { return rpcClient.Ping() != nil })
}

// TestGuardClientNotStarted: a go-plugin Client that has not started has
// no address to guard.
func TestGuardClientNotStarted(t *testing.T) {
	client := goplugin.NewClient(&goplugin.ClientConfig{HandshakeConfig: Handshake, Plugins: goplugin.PluginSet{},
		Reattach: &goplugin.ReattachConfig{Protocol: goplugin.ProtocolNetRPC, Addr: &net.UnixAddr{Net: "unix", Name: "/nonexistent"}, Pid: os.Getpid(), Test: true}})
	_, _, err := GuardClient(client, time.Second, nil)
	if err == nil || !strings.Contains(err.Error(), "not started") {
		t.Errorf("GuardClient of a client not started = %v", err)
	}
}

// TestGuardListensOnceThePluginIsReached: until the guard has reached the
// plugin, its socket does not exist, so go-plugin (whose Kill dials to
// ask the plugin to quit) fails at once instead of waiting on a
// connection nobody serves; Close ends the wait for a plugin that never
// answers.
func TestGuardListensOnceThePluginIsReached(t *testing.T) {
	m, err := NewMTLS()
	if err != nil {
		t.Fatal(err)
	}
	hostTLS, _ := m.HostConfig()
	dialed := make(chan struct{})
	addr := pluginListener(t, func(c net.Conn) { // never answers the TLS handshake
		close(dialed)
		<-t.Context().Done()
	})
	g, err := NewGuard(addr, hostTLS, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Receive(t, dialed, 10*time.Second, "the guard did not dial the plugin")
	if c, err := net.Dial("unix", g.Addr().String()); err == nil {
		c.Close()
		t.Fatal("the guard's socket took a connection before the plugin was reached")
	}
	waited := make(chan error, 1)
	go func() { waited <- g.Wait() }()
	g.Close()
	if err := testutil.Receive(t, waited, 5*time.Second, "Wait did not return once the guard was closed"); err == nil {
		t.Error("Wait = nil for a plugin never reached")
	}
}

// TestGuardBoundsNetRPCMessages: a net/rpc message the plugin sends on a
// stream of go-plugin's that carries them (the control stream, and every
// stream the host dials after stdout's and stderr's, past MuxBroker's
// ack) is at most guardGobMessage long, however its length is split
// across frames: gob would hold up to 8 GiB of it. stdout and stderr
// carry bytes, not messages.
func TestGuardBoundsNetRPCMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   uint32
		data [][]byte // the frames' data, in turn
		why  string
	}{
		{"control stream", 1, [][]byte{{0xFD, 0x10, 0x00, 0x01}}, "a net/rpc message of 1048577 bytes on stream 1, past the guard's 1048576"},
		{"after small messages", 1, [][]byte{{3, 'a', 'b', 'c', 0, 0xFC, 0x7F}, {0xFF, 0xFF, 0xFF}}, "a net/rpc message of 2147483647 bytes on stream 1, past the guard's 1048576"},
		{"a dialed stream, past the ack, split", 7, [][]byte{{7, 0, 0, 0, 0xFD}, {0x10}, {0x00, 0x01}}, "a net/rpc message of 1048577 bytes on stream 7, past the guard's 1048576"},
		{"a length that is not gob's", 1, [][]byte{{0x80}}, "a net/rpc message on stream 1 whose length is not gob's"},
		{"stdout carries bytes", 3, [][]byte{{0xFD, 0x10, 0x00, 0x01}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opened := make(chan struct{})
			var err error
			g := guardTo(t, nil, nil, func(c net.Conn) {
				go func() { // the host's frames, until its SYN for stream tc.id
					h := make([]byte, yamuxHeaderSize)
					for {
						if _, err := io.ReadFull(c, h); err != nil {
							return
						}
						if h[1] == yamuxData {
							io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(h[8:])))
						}
						if binary.BigEndian.Uint32(h[4:]) == tc.id && binary.BigEndian.Uint16(h[2:])&yamuxSYN != 0 {
							close(opened)
							io.Copy(io.Discard, c)
							return
						}
					}
				}()
				<-opened
				for _, d := range tc.data {
					c.Write(append(frame(yamuxData, 0, tc.id, uint32(len(d))), d...))
				}
				io.Copy(io.Discard, c)
			})
			var s *yamux.Stream
			for id := uint32(1); id <= tc.id; id += 2 {
				if s, err = g.host.OpenStream(); err != nil {
					t.Fatal(err)
				}
			}
			if tc.why == "" {
				got := make([]byte, len(tc.data[0]))
				if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, tc.data[0]) {
					t.Fatalf("stdout's stream carried %x, %v; want %x", got, err, tc.data[0])
				}
				select {
				case err := <-g.breaches:
					t.Fatalf("the plugin was cut off for bytes on stdout's stream: %v", err)
				default:
				}
				return
			}
			err = testutil.Receive(t, g.breaches, 10*time.Second, "the plugin was not cut off")
			if err.Error() != tc.why {
				t.Errorf("the guard's reason = %q; want %q", err, tc.why)
			}
		})
	}
}

// FuzzGuard: whatever a plugin sends, and whatever the host opened
// before, the guard neither panics nor passes on a frame it should have
// stopped: every frame it forwards from the plugin is whole, of yamux's
// version and types, within the window, and on a stream that is open.
func FuzzGuard(f *testing.F) {
	f.Add(uint8(3), append(frame(yamuxWindowUpdate, yamuxSYN, 2, 0), frame(yamuxData, 0, 1, 4)...))
	f.Add(uint8(1), append(frame(yamuxData, 0, 1, 5), 0xFD, 0x10, 0, 1, 0))
	f.Add(uint8(4), append(frame(yamuxData, 0, 7, 6), 7, 0, 0, 0, 0xFC, 0x7F))
	f.Add(uint8(0), frame(yamuxPing, yamuxSYN, 0, 9))
	f.Fuzz(func(t *testing.T, hostStreams uint8, fromPlugin []byte) {
		g := &Guard{streams: map[uint32]*guardStream{}, pings: guardPingBurst, pingedAt: time.Now()}
		for i := range uint32(hostStreams % 8) {
			g.note(1+2*i, yamuxSYN, false)
		}
		open := map[uint32]bool{}
		for id := range g.streams {
			open[id] = true
		}
		var out bytes.Buffer
		g.wg.Add(1)
		g.pump(bytes.NewReader(fromPlugin), &out, true)
		for b := out.Bytes(); len(b) > 0; {
			if len(b) < yamuxHeaderSize {
				t.Fatalf("a frame's header cut short: %x", b)
			}
			h := b[:yamuxHeaderSize]
			typ, flags, id, n := h[1], binary.BigEndian.Uint16(h[2:]), binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(h[8:])
			if h[0] != 0 || typ > yamuxGoAway {
				t.Fatalf("forwarded a frame that is not yamux's: %x", h)
			}
			b = b[yamuxHeaderSize:]
			if typ == yamuxData {
				if n > yamuxWindow || int(n) > len(b) {
					t.Fatalf("forwarded a data frame of %d bytes, %d following", n, len(b))
				}
				b = b[n:]
			}
			if typ <= yamuxWindowUpdate {
				if flags&yamuxSYN != 0 {
					open[id] = true
				}
				if !open[id] {
					t.Fatalf("forwarded a frame for stream %d, not open", id)
				}
			}
		}
	})
}

// signalWriter counts what is written to it and says, once, when want
// bytes have been.
type signalWriter struct {
	mu   sync.Mutex
	n    int
	want int
	done chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n += len(p); w.n >= w.want && w.done != nil {
		close(w.done)
		w.done = nil
	}
	return len(p), nil
}

// TestIdlePumpsHoldNoBuffers: a host may load many plugins whose
// go-plugin connections carry almost nothing once they have started, so a
// guard's pump that waits for the next frame holds no buffer (each held
// 8 KiB before: 16 KiB of host heap per plugin in refbench's
// many-plugins row).
func TestIdlePumpsHoldNoBuffers(t *testing.T) {
	const pumps = 200
	type pumped struct {
		g      *Guard
		in, to net.Conn
		out    *signalWriter
	}
	var ps []pumped
	defer func() {
		for _, p := range ps {
			p.in.Close()
			p.to.Close()
			p.g.wg.Wait()
		}
	}()
	// A stream the host opens, and a frame of data on it.
	frames := append(frame(yamuxWindowUpdate, yamuxSYN, 1, 0), append(frame(yamuxData, 0, 1, 100), make([]byte, 100)...)...)
	for range pumps {
		in, to := net.Pipe()
		ps = append(ps, pumped{
			g:   &Guard{streams: map[uint32]*guardStream{}, pings: guardPingBurst, pingedAt: time.Now()},
			in:  in,
			to:  to,
			out: &signalWriter{want: len(frames), done: make(chan struct{})},
		})
	}
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	for _, p := range ps {
		p.g.wg.Add(1)
		go p.g.pump(p.in, p.out, false)
		done := p.out.done
		if _, err := p.to.Write(frames); err != nil {
			t.Fatal(err)
		}
		testutil.Receive(t, done, 5*time.Second, "the pump did not forward the frames")
	}
	const most = 2 << 10 // the goroutine's own record and its header's 12 bytes, well under this
	var per uint64
	testutil.Eventually(t, "idle pumps to hold no buffers", func() bool {
		per = (max(heap(), before) - before) / pumps
		return per < most
	})
	t.Logf("host heap per idle pump: %d bytes", per)
}
