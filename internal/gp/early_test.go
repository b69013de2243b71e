//go:build unix

package gp

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"
	"github.com/refplug/refplug/refbroker"
)

type greeter struct{}

func (greeter) Hello() string { return "hello" }

// readyProbe's method reports whether ready was closed when it ran.
type readyProbe struct{ ready <-chan struct{} }

func (p readyProbe) Ran() bool {
	select {
	case <-p.ready:
		return true
	default:
		return false
	}
}

// earlyPair sets up what host and plugin hold before the early start:
// the host's plugin with refplug's mutual TLS asking for it, its end of
// the socket with the credentials written down it, and the plugin's slot
// with the credentials read.
func earlyPair(t *testing.T) (hostSide *Plugin, hostEnd net.Conn, slot *SocketSlot) {
	t.Helper()
	m, err := NewMTLS()
	if err != nil {
		t.Fatal(err)
	}
	if _, env := m.HostConfig(); !strings.HasPrefix(env[0], MTLSEnv+"="+earlyMTLS) {
		t.Fatalf("the host does not ask for the early start: %q", env[0])
	}
	hostEnd, slot = pluginSocket(t)
	creds, err := m.Credentials()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hostEnd.Write(creds); err != nil {
		t.Fatal(err)
	}
	if _, err := slot.ReadCredentials(); err != nil {
		t.Fatal(err)
	}
	return &Plugin{MTLS: m, Socket: NewSocketSlot(hostEnd, nil)}, hostEnd, slot
}

// startResult is what the plugin's StartEarly reports.
type startResult struct {
	conn *refbroker.Conn
	err  error
}

// startPlugin starts the plugin's side early; the returned func says
// go-plugin serves (closes StartEarly's ready).
func startPlugin(t *testing.T, slot *SocketSlot, plugins map[int]*Plugin) (<-chan startResult, func()) {
	t.Helper()
	return startPluginReady(t, slot, plugins, make(chan struct{}))
}

func startPluginReady(t *testing.T, slot *SocketSlot, plugins map[int]*Plugin, ready chan struct{}) (<-chan startResult, func()) {
	t.Helper()
	ch := make(chan startResult, 1)
	if err := slot.StartEarly(plugins, ready, func(c *refbroker.Conn, err error) { ch <- startResult{c, err} }); err != nil {
		t.Fatal(err)
	}
	return ch, func() { close(ready) }
}

func awaitStart(t *testing.T, ch <-chan startResult) startResult {
	t.Helper()
	select {
	case r := <-ch:
		if r.conn != nil {
			t.Cleanup(func() { r.conn.Close() })
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the plugin's start did not end")
		return startResult{}
	}
}

// TestStartEarly: the plugin serves the version the host names on the
// socket, without anything from go-plugin's connection.
func TestStartEarly(t *testing.T) {
	hostSide, _, slot := earlyPair(t)
	connected := make(chan *refbroker.Conn, 1)
	plugins := map[int]*Plugin{
		1: {Roots: map[string]any{"v1": greeter{}}},
		2: {Roots: map[string]any{"v2": greeter{}}, Connected: connected},
	}
	started, goPluginServes := startPlugin(t, slot, plugins)
	c, err := hostSide.StartEarly(2, nil)
	if err != nil || c == nil {
		t.Fatalf("host's StartEarly = %v, %v; want a connection", c, err)
	}
	defer c.Conn.Close()
	if !c.Early || c.Transport != TransportSocket {
		t.Errorf("connection = %+v; want an early one on the socket", c)
	}
	goPluginServes()
	r := awaitStart(t, started)
	if r.err != nil || r.conn == nil {
		t.Fatalf("plugin's start = %v, %v", r.conn, r.err)
	}
	if got := <-connected; got != r.conn {
		t.Error("the plugin's connection was not handed to Connected")
	}
	infos, err := c.Conn.Describe()
	if err != nil || len(infos) != 1 || infos[0].Name != "v2" {
		t.Errorf("Describe = %+v, %v; want version 2's object only", infos, err)
	}
	if sock, _ := hostSide.Socket.Take(); sock != nil {
		t.Error("the host's socket is still in its slot after the start")
	}
}

// TestStartEarlyVersionNotServed: a version the plugin does not serve
// ends the start on both sides, with the version named.
func TestStartEarlyVersionNotServed(t *testing.T) {
	hostSide, _, slot := earlyPair(t)
	started, goPluginServes := startPlugin(t, slot, map[int]*Plugin{1: {Roots: map[string]any{"g": greeter{}}}})
	defer goPluginServes()
	c, err := hostSide.StartEarly(7, nil)
	if err != nil || c == nil {
		t.Fatalf("host's StartEarly = %v, %v", c, err)
	}
	r := awaitStart(t, started)
	if r.err == nil || !strings.Contains(r.err.Error(), "protocol version 7") {
		t.Errorf("plugin's start = %v; want an error naming version 7", r.err)
	}
	select {
	case <-c.Conn.Done():
	case <-time.After(10 * time.Second):
		t.Error("the host's connection did not end when the plugin refused the version")
	}
}

// TestStartEarlyNoMark: a plugin that read its credentials but waits for
// go-plugin's Dispense (an older refplug) wrote no mark: the host's
// StartEarly says so without waiting, and leaves the socket for the
// Dispense.
func TestStartEarlyNoMark(t *testing.T) {
	hostSide, _, _ := earlyPair(t)
	c, err := hostSide.StartEarly(1, nil)
	if c != nil || err != nil {
		t.Fatalf("StartEarly = %v, %v; want nothing", c, err)
	}
	if sock, _ := hostSide.Socket.Take(); sock == nil {
		t.Error("the socket was taken from the slot")
	}
	if (&Plugin{Socket: hostSide.Socket}).MayStartEarly() || (*Plugin)(nil).MayStartEarly() {
		t.Error("a host that did not ask for the early start may start early")
	}
}

// TestStartEarlyRefusesOtherBytes: a socket that begins with something
// other than the mark is refused, not served.
func TestStartEarlyRefusesOtherBytes(t *testing.T) {
	hostSide, _, slot := earlyPair(t)
	plugEnd, _ := slot.Take()
	plugEnd.Write([]byte{0x00})
	c, err := hostSide.StartEarly(1, nil)
	if c != nil || err == nil || !strings.Contains(err.Error(), "not the mark") {
		t.Errorf("StartEarly = %v, %v; want it refused", c, err)
	}
}

// TestStartEarlyHostGone: a host that hangs up before naming the version
// ends the plugin's start with that reason.
func TestStartEarlyHostGone(t *testing.T) {
	_, hostEnd, slot := earlyPair(t)
	started, goPluginServes := startPlugin(t, slot, map[int]*Plugin{1: {Roots: map[string]any{"g": greeter{}}}})
	defer goPluginServes()
	hostEnd.Close()
	if r := awaitStart(t, started); r.err == nil || !strings.Contains(r.err.Error(), "hung up") {
		t.Errorf("plugin's start = %v; want the host's hang-up", r.err)
	}
}

// TestStartEarlyHoldsCalls: until go-plugin serves (ready), the plugin's
// methods do not run — they would race with go-plugin's Serve setting up
// stdout and stderr — while Describe is answered; then the held call runs.
func TestStartEarlyHoldsCalls(t *testing.T) {
	hostSide, _, slot := earlyPair(t)
	ready := make(chan struct{})
	started, goPluginServes := startPluginReady(t, slot, map[int]*Plugin{1: {Roots: map[string]any{"probe": readyProbe{ready}}}}, ready)
	c, err := hostSide.StartEarly(1, nil)
	if err != nil || c == nil {
		t.Fatalf("host's StartEarly = %v, %v", c, err)
	}
	defer c.Conn.Close()
	awaitStart(t, started)
	type result struct {
		out []json.RawMessage
		err error
	}
	called := make(chan result, 1)
	go func() {
		out, err := c.Conn.CallJSON("probe", "Ran")
		called <- result{out, err}
	}()
	testutil.Eventually(t, "the call to be on its way", func() bool { return c.Conn.Stats().Pending == 1 })
	if infos, err := c.Conn.Describe(); err != nil || len(infos) != 1 {
		t.Fatalf("Describe while the call is held = %v, %v", infos, err)
	}
	goPluginServes()
	r := testutil.Receive(t, called, 10*time.Second, "the held call did not run once go-plugin served")
	if r.err != nil || len(r.out) != 1 || string(r.out[0]) != "true" {
		t.Errorf("the held call = %s, %v; want it run after go-plugin serves (true)", r.out, r.err)
	}
}

// TestStartEarlyPlain: without TLS the plugin serves on the socket it was
// started with, its calls not held, and from the moment it has written its
// mark its go-plugin side refuses the Dispense path's connections (which,
// without TLS, any process finding go-plugin's socket could ask for) —
// before the host has even named the version.
func TestStartEarlyPlain(t *testing.T) {
	hostEnd, slot := pluginSocket(t)
	connected := make(chan *refbroker.Conn, 1)
	plugins := map[int]*Plugin{1: {Roots: map[string]any{"g": greeter{}}, Connected: connected, Socket: slot}}
	ch := make(chan startResult, 1)
	if err := slot.StartEarlyPlain(plugins, func(c *refbroker.Conn, err error) { ch <- startResult{c, err} }); err != nil {
		t.Fatal(err)
	}
	s := &server{p: plugins[1]}
	if err := s.Connect(7, nil); err != errServesEarly {
		t.Errorf("Connect after the mark = %v; want %v", err, errServesEarly)
	}
	if err := s.ConnectSocket(SocketArgs{Token: make([]byte, tokenSize)}, nil); err != errServesEarly {
		t.Errorf("ConnectSocket after the mark = %v; want %v", err, errServesEarly)
	}
	hostSide := &Plugin{Early: true, Socket: NewSocketSlot(hostEnd, nil)}
	c, err := hostSide.StartEarly(1, nil)
	if err != nil || c == nil {
		t.Fatalf("host's StartEarly = %v, %v; want a connection", c, err)
	}
	defer c.Conn.Close()
	r := awaitStart(t, ch) // nothing holds the calls: no ready to close
	if r.err != nil || <-connected != r.conn {
		t.Fatalf("plugin's start = %v, %v; want its connection handed to Connected", r.conn, r.err)
	}
	if res, err := c.Conn.CallJSON("g", "Hello"); err != nil || len(res) != 1 || string(res[0]) != `"hello"` {
		t.Errorf("Hello = %s, %v; want \"hello\"", res, err)
	}
}

// TestStartEarlyPlainNoSocket: a plugin that did not get its socket says
// why and does not claim the early start.
func TestStartEarlyPlainNoSocket(t *testing.T) {
	slot := NewSocketSlot(nil, errNoSocket)
	if err := slot.StartEarlyPlain(nil, func(*refbroker.Conn, error) { t.Error("started") }); err == nil {
		t.Error("StartEarlyPlain without a socket succeeded")
	}
	if slot.servesEarly() {
		t.Error("the slot claims the early start without a socket")
	}
}
