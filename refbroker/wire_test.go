package refbroker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/refplug/refplug/internal/testutil"
	"github.com/refplug/refplug/refbroker"
)

// Wire conformance: a raw peer writes frames byte by byte as docs/wire.md
// describes them, to a real Conn, and checks the bytes of each answer. It
// builds frames with encoding/binary only, not with the package's encoder,
// so the document and the code cannot drift apart unnoticed.

// WireNamed and WireCalc are the contract the raw peer speaks to.
type WireNamed interface{ Name() (string, error) }

type wireNamedProxy struct{ *refbroker.Ref }

func (p wireNamedProxy) Name() (string, error) {
	var s string
	err := p.Invoke("Name", nil, &s)
	return s, err
}

// WireReader is a contract's own io.Reader.
type WireReader interface{ Read(p []byte) (int, error) }

type wireReaderProxy struct{ *refbroker.Ref }

func (p wireReaderProxy) Read(b []byte) (int, error) {
	var n int
	err := p.Invoke("Read", []any{b}, &n)
	return n, err
}

func init() {
	refbroker.RegisterInterface[WireNamed](func(r *refbroker.Ref) WireNamed { return wireNamedProxy{r} })
	refbroker.RegisterInterface[WireReader](func(r *refbroker.Ref) WireReader { return wireReaderProxy{r} })
}

type wireCalc struct{}

func (wireCalc) Add(a, b int) (int, error) { return a + b, nil }
func (wireCalc) Wait(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}
func (wireCalc) Make(label string) (WireNamed, error) { return wireNamed(label), nil }
func (wireCalc) Apply(f func(int) int, x int) (int, error) {
	return f(x), nil
}
func (wireCalc) Blob(n int) ([]byte, error)   { return make([]byte, n), nil }
func (wireCalc) Area(r wireRect) (int, error) { return r.W * r.H, nil }
func (wireCalc) Double(r *wireRect) error     { r.W, r.H = 2*r.W, 2*r.H; return nil }
func (wireCalc) Setup(apply func(*wireJob) error) (string, error) {
	j := wireJob{Name: "before"}
	if err := apply(&j); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s, hook %v", j.Name, j.Hook != nil), nil
}

func (wireCalc) Hook(j *wireJob) error { j.Name, j.Hook = "set", func() {}; return nil }
func (c wireCalc) Both(r *wireRect, j *wireJob) error {
	c.Double(r)
	return c.Hook(j)
}

// Read fills p with 'z' if it arrived zeroed, else with 'n'.
func (wireCalc) Read(p []byte) (int, error) {
	b := byte('z')
	if slices.ContainsFunc(p, func(c byte) bool { return c != 0 }) {
		b = 'n'
	}
	for i := range p {
		p[i] = b
	}
	return len(p), nil
}

// Pull reads once from r into a buffer of n bytes of 0xEE.
func (wireCalc) Pull(r WireReader, n int) (int, error) {
	return r.Read(bytes.Repeat([]byte{0xEE}, n))
}

func (wireCalc) EchoErr(err error) error { return err }
func (wireCalc) Own() error              { return errors.New("own") }

// wireJob is data holding a func.
type wireJob struct {
	Name string
	Hook func()
}

type wireRect struct{ W, H int }

type wireNamed string

func (n wireNamed) Name() (string, error) { return string(n), nil }

// frame builds one message body: each part is a byte, a uvarint (u), a
// zigzag varint (v), or a string (s).
type frame struct{ b []byte }

func (f *frame) byte1(b byte) *frame   { f.b = append(f.b, b); return f }
func (f *frame) u(x uint64) *frame     { f.b = binary.AppendUvarint(f.b, x); return f }
func (f *frame) v(x int64) *frame      { f.b = binary.AppendVarint(f.b, x); return f }
func (f *frame) s(str string) *frame   { f.u(uint64(len(str))); f.b = append(f.b, str...); return f }
func (f *frame) raw(str string) *frame { f.b = append(f.b, str...); return f }
func msg(typ byte) *frame              { return (&frame{}).byte1(typ) }
func (f *frame) bytes() []byte         { return f.b }
func (f *frame) equal(got []byte) bool { return bytes.Equal(f.b, got) }

// rawPeer is the raw side of a connection to a Conn serving wireCalc.
type rawPeer struct {
	t       *testing.T
	conn    *refbroker.Conn
	w       net.Conn
	r       *bufio.Reader
	layouts [][]byte // layouts messages received during the bootstrap
}

func newRawPeer(t *testing.T) *rawPeer { return newRawPeerWith(t, refbroker.Options{}) }

// newRawPeerWith is newRawPeer with the Conn's options (its logger and
// roots set here).
func newRawPeerWith(t *testing.T, opts refbroker.Options) *rawPeer {
	a, b := net.Pipe()
	opts.Logger, opts.Roots = testutil.Logger(t, "conn"), map[string]any{"calc": wireCalc{}}
	c := refbroker.NewConn(a, opts)
	t.Cleanup(func() { b.Close(); c.Close() })
	p := &rawPeer{t: t, conn: c, w: b, r: bufio.NewReader(b)}
	p.expectHello()
	return p
}

// helloFrame is a hello: a release message naming no references, then
// the features its sender reads (1: restored out-parameters holding
// references; 2: the buffer of a Read or ReadAt sent as its length; 4:
// ping messages).
func helloFrame() *frame { return msg(4).u(0).u(7) }

// expectHello reads the Conn's first frame, its hello.
func (p *rawPeer) expectHello() {
	p.t.Helper()
	p.expect("the hello, the first frame", helloFrame())
}

// hello sends the raw peer's hello: without it, it is a peer of a
// refplug from before the hello.
func (p *rawPeer) hello() { p.send(helloFrame()) }

// send writes one frame: uvarint length, then the body.
func (p *rawPeer) send(f *frame) {
	p.t.Helper()
	p.w.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.w.Write(append(binary.AppendUvarint(nil, uint64(len(f.b))), f.b...)); err != nil {
		p.t.Fatalf("writing a frame: %v", err)
	}
}

// next reads one frame body.
func (p *rawPeer) next() []byte {
	p.t.Helper()
	p.w.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := binary.ReadUvarint(p.r)
	if err != nil {
		p.t.Fatalf("reading a frame length: %v", err)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(p.r, body); err != nil {
		p.t.Fatalf("reading a frame body: %v", err)
	}
	return body
}

// expect reads one frame and checks it is want.
func (p *rawPeer) expect(what string, want *frame) {
	p.t.Helper()
	if got := p.next(); !want.equal(got) {
		p.t.Fatalf("%s: got % x, want % x", what, got, want.bytes())
	}
}

// bootstrap dispenses "calc" with the given methods and returns its export ID.
func (p *rawPeer) bootstrap(seq uint64, methods ...[2]string) uint64 {
	p.t.Helper()
	f := msg(5).u(seq).s("calc").s("wire.Calc").u(uint64(len(methods)))
	for _, m := range methods {
		f.s(m[0]).s(m[1])
	}
	p.send(f)
	got := p.next()
	for len(got) > 0 && got[0] == 9 { // the server's struct layouts come first
		p.layouts = append(p.layouts, got)
		got = p.next()
	}
	// return, seq, status OK, reference tag 1 (the sender's export), ID, type ID 0
	head := msg(2).u(seq).byte1(0).byte1(1).bytes()
	if !bytes.HasPrefix(got, head) {
		p.t.Fatalf("bootstrap return: got % x, want it to start % x", got, head)
	}
	id, n := binary.Uvarint(got[len(head):])
	if n <= 0 || !bytes.Equal(got[len(head)+n:], []byte{0}) {
		p.t.Fatalf("bootstrap return: got % x, want an export ID and type ID 0", got)
	}
	return id
}

var (
	addSig   = [2]string{"Add", "func(int, int) (int, error)"}
	waitSig  = [2]string{"Wait", "func(context.Context) error"}
	makeSig  = [2]string{"Make", "func(string) (refbroker_test.WireNamed, error)"}
	applySig = [2]string{"Apply", "func(func(int) int, int) (int, error)"}
)

func TestWireCallAndReturn(t *testing.T) {
	p := newRawPeer(t)
	id := p.bootstrap(1, addSig)
	// call: seq 2, target, method, ctx flag 0 (no context), args as varints
	p.send(msg(1).u(2).u(id).s("Add").byte1(0).v(2).v(-5))
	// return: seq 2, status 0, results: varint -3, error tag 0 (nil)
	p.expect("Add's return", msg(2).u(2).byte1(0).v(-3).byte1(0))

	// A method the bootstrap did not ask for is rejected (status 2) with
	// an error: tag 2, text, no children.
	p.send(msg(1).u(3).u(id).s("Make").byte1(0).s("x"))
	got := p.next()
	if !bytes.HasPrefix(got, msg(2).u(3).byte1(2).byte1(2).bytes()) || !bytes.Contains(got, []byte(`has no method "Make"`)) {
		t.Errorf("call of an ungranted method: got %q; want a rejection naming it", got)
	}
	// An unknown target is rejected too.
	p.send(msg(1).u(4).u(999).s("Add").byte1(0).v(1).v(1))
	if got := p.next(); !bytes.HasPrefix(got, msg(2).u(4).byte1(2).bytes()) || !bytes.Contains(got, []byte("unknown reference #999")) {
		t.Errorf("call on an unknown reference: got %q", got)
	}
}

func TestWireBootstrapMismatch(t *testing.T) {
	p := newRawPeer(t)
	p.send(msg(5).u(1).s("calc").s("wire.Calc").u(1).s("Add").s("func(string) error"))
	got := p.next()
	// return, seq 1, status 1 (failed), error tag 2 (text, children)
	if !bytes.HasPrefix(got, msg(2).u(1).byte1(1).byte1(2).bytes()) || !bytes.Contains(got, []byte("Add is func(int, int) (int, error) in the object, func(string) error in wire.Calc")) {
		t.Errorf("bootstrap with a wrong signature: got %q", got)
	}
	p.send(msg(5).u(2).s("nope").s("wire.Calc").u(0))
	if got := p.next(); !bytes.HasPrefix(got, msg(2).u(2).byte1(1).bytes()) || !bytes.Contains(got, []byte(`no object named "nope"`)) {
		t.Errorf("bootstrap of an unknown name: got %q", got)
	}

	// A method asked for many times is one problem, not one per asking
	// (each would repeat the interface's name).
	dup := msg(5).u(3).s("calc").s("wire.Calc").u(10_000)
	for range 10_000 {
		dup.s("Add").s("func(string) error")
	}
	p.send(dup)
	if got := p.next(); !bytes.HasPrefix(got, msg(2).u(3).byte1(1).bytes()) || bytes.Count(got, []byte("Add is")) != 1 {
		t.Errorf("bootstrap asking for Add 10,000 times: got %d bytes naming Add %d times; want it once", len(got), bytes.Count(got, []byte("Add is")))
	}

	// An interface name over 64 KiB is not a Go interface's: the peer
	// broke the protocol.
	p.send(msg(5).u(4).s("calc").s(strings.Repeat("x", 65<<10)).u(0))
	testutil.Receive(t, p.conn.Done(), 10*time.Second, "the Conn still runs after a Dispense naming an interface of 65 KiB")
	if err := p.conn.Err(); err == nil || !strings.Contains(err.Error(), "interface of 66560 bytes") {
		t.Errorf("the Conn ended with %v; want the interface name's length named", err)
	}
}

func TestWireCancelAndDeadline(t *testing.T) {
	p := newRawPeer(t)
	id := p.bootstrap(1, waitSig)
	// ctx flag 1: a context without deadline, cancelled by a cancel message.
	p.send(msg(1).u(2).u(id).s("Wait").byte1(1))
	testutil.Eventually(t, "Wait to be served", func() bool { return p.conn.Stats().CallsServed >= 1 })
	// cancel: seq, reason 1 (cancelled), the cause: an error, here nil.
	p.send(msg(3).u(2).byte1(1).byte1(0))
	// The error is a registered sentinel: tag 1 and its key, "%T:text".
	p.expect("Wait after cancel", msg(2).u(2).byte1(0).byte1(1).s("*errors.errorString:context canceled"))

	// ctx flag 2: a deadline, a varint of the nanoseconds remaining.
	p.send(msg(1).u(3).u(id).s("Wait").byte1(2).v(int64(20 * time.Millisecond)))
	p.expect("Wait past its deadline", msg(2).u(3).byte1(0).byte1(1).s("context.deadlineExceededError:context deadline exceeded"))

	// A cancel with reason 2 (deadline exceeded) ends the callee's context
	// with DeadlineExceeded, even long before its own deadline.
	p.send(msg(1).u(4).u(id).s("Wait").byte1(2).v(int64(time.Hour)))
	testutil.Eventually(t, "Wait to be served", func() bool { return p.conn.Stats().CallsServed >= 3 })
	p.send(msg(3).u(4).byte1(2).byte1(0))
	p.expect("Wait after the caller's deadline", msg(2).u(4).byte1(0).byte1(1).s("context.deadlineExceededError:context deadline exceeded"))
}

func TestWireTypeInfoAndRelease(t *testing.T) {
	p := newRawPeer(t)
	id := p.bootstrap(1, makeSig)
	p.send(msg(1).u(2).u(id).s("Make").byte1(0).s("n1"))
	// Before the first reference of WireNamed: type info with type ID 1,
	// the type's name and its methods, sorted.
	p.expect("type info", msg(6).u(1).s("refbroker_test.WireNamed").u(1).s("Name").s("func() (string, error)"))
	got := p.next()
	head := msg(2).u(2).byte1(0).byte1(1).bytes() // a reference to the sender's export
	if !bytes.HasPrefix(got, head) {
		t.Fatalf("Make's return: got % x, want it to start % x", got, head)
	}
	nid, n := binary.Uvarint(got[len(head):])
	if n <= 0 || !bytes.Equal(got[len(head)+n:], []byte{1, 0}) { // type ID 1, error nil
		t.Fatalf("Make's return: got % x; want an export ID, type ID 1, nil error", got)
	}
	// Calling the new object.
	p.send(msg(1).u(3).u(nid).s("Name").byte1(0))
	p.expect("Name's return", msg(2).u(3).byte1(0).s("n1").byte1(0))
	if s := p.conn.Stats(); s.Exports != 2 {
		t.Fatalf("exports before the release = %d, want 2 (the root and n1)", s.Exports)
	}
	// release: n items of (export ID, count).
	p.send(msg(4).u(1).u(nid).u(1))
	testutil.Eventually(t, "the release to drop n1", func() bool { return p.conn.Stats().Exports == 1 })
	p.send(msg(1).u(4).u(nid).s("Name").byte1(0))
	if got := p.next(); !bytes.HasPrefix(got, msg(2).u(4).byte1(2).bytes()) {
		t.Errorf("call on a released export: got % x, want a rejection", got)
	}
}

func TestWireCallback(t *testing.T) {
	p := newRawPeer(t)
	id := p.bootstrap(1, applySig)
	// Apply with a func of ours: no context, then reference tag 1, our
	// export ID 7, type ID 0 (unchecked), then the int.
	p.send(msg(1).u(2).u(id).s("Apply").byte1(0).byte1(1).u(7).u(0).v(20))
	// The Conn calls our func: a call of export 7 with the empty method name.
	got := p.next()
	d := bytes.NewReader(got)
	if typ, _ := d.ReadByte(); typ != 1 {
		t.Fatalf("callback: got % x, want a call", got)
	}
	seq, _ := binary.ReadUvarint(d)
	rest := msg(0).u(7).s("").byte1(0).v(20).bytes()[1:]
	if tail := got[len(got)-d.Len():]; !bytes.Equal(tail, rest) {
		t.Fatalf("callback: got % x, want seq then % x", got, rest)
	}
	p.send(msg(2).u(seq).byte1(0).v(21)) // our func returns 21
	p.expect("Apply's return", msg(2).u(2).byte1(0).v(21).byte1(0))

	// Once the Conn's func proxy is collected, it releases our export 7,
	// naming the one send it received.
	p.expectRelease("the func it was sent", msg(4).u(1).u(7).u(1))
}

// expectRelease collects garbage until the Conn's next frame comes, and
// checks it is the release want, of what.
func (p *rawPeer) expectRelease(what string, want *frame) {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		p.w.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, err := binary.ReadUvarint(p.r)
		if err != nil {
			continue
		}
		body := make([]byte, n)
		p.w.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(p.r, body); err != nil {
			p.t.Fatal(err)
		}
		if !want.equal(body) {
			p.t.Fatalf("releasing %s: got % x, want % x", what, body, want.bytes())
		}
		return
	}
	p.t.Fatalf("the Conn never released %s", what)
}

func TestWireRejectsBadFrames(t *testing.T) {
	for _, c := range []struct {
		name string
		body []byte
		want string
	}{
		{"unknown message type", []byte{99}, "unknown message type 99"},
		{"truncated call", msg(1).u(1).bytes(), "bad varint at byte 2"},
		{"length beyond the frame", msg(5).u(1).u(math.MaxUint32).bytes(), "exceeds the message"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newRawPeer(t)
			p.send(&frame{b: c.body})
			testutil.Receive(t, p.conn.Done(), 5*time.Second, "the Conn kept a connection that sent a bad frame")
			if err := p.conn.Err(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Err() = %v; want it to say %q", err, c.want)
			}
		})
	}
}

// TestWireProtocolViolations: a peer that reuses the number of a call
// still running, or announces more type descriptions than are kept, ends
// the connection with the reason logged and in Err; the blocked call's
// context is cancelled with it.
func TestWireProtocolViolations(t *testing.T) {
	t.Run("reused call number", func(t *testing.T) {
		p := newRawPeer(t)
		id := p.bootstrap(1, waitSig)
		p.send(msg(1).u(2).u(id).s("Wait").byte1(1))
		testutil.Eventually(t, "Wait to be served", func() bool { return p.conn.Stats().CallsServed >= 1 })
		p.send(msg(1).u(2).u(id).s("Wait").byte1(1))
		testutil.Receive(t, p.conn.Done(), 5*time.Second, "the connection survived a reused call number")
		if err := p.conn.Err(); err == nil || !strings.Contains(err.Error(), "call number 2 reused while that call is still running") {
			t.Errorf("Err() = %v", err)
		}
	})
	// Names go into errors (quoted: up to four bytes a byte) and into the
	// names of granted methods: a peer must not be able to make them huge.
	long := strings.Repeat("\x00", 64<<10+1)
	for what, f := range map[string]func(id uint64) *frame{
		"a call names a method":         func(id uint64) *frame { return msg(1).u(2).u(id).s(long).byte1(0) },
		"a CallJSON names a method":     func(uint64) *frame { return msg(8).u(2).s("calc").s(long).u(0) },
		"a Dispense names an object":    func(uint64) *frame { return msg(5).u(2).s(long).s("wire.Calc").u(0) },
		"a Dispense names a method":     func(uint64) *frame { return msg(5).u(2).s("calc").s("wire.Calc").u(1).s(long).s("func()") },
		"a Dispense names an interface": func(uint64) *frame { return msg(5).u(2).s("calc").s(long).u(0) },
	} {
		t.Run(what, func(t *testing.T) {
			p := newRawPeer(t)
			id := p.bootstrap(1, addSig)
			p.send(f(id))
			testutil.Receive(t, p.conn.Done(), 5*time.Second, "the connection took a name of 64 KiB + 1")
			if err := p.conn.Err(); err == nil || !strings.Contains(err.Error(), what+" of 65537 bytes; at most 65536") {
				t.Errorf("Err() = %v", err)
			}
		})
	}
	t.Run("type descriptions beyond the limit", func(t *testing.T) {
		p := newRawPeer(t)
		big := strings.Repeat("x", 1<<20)
		go func() { // the Conn may stop reading before the last one
			for i := range 8 {
				f := msg(6).u(uint64(i + 1)).s("T").u(1).s("M").s(big)
				p.w.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := p.w.Write(append(binary.AppendUvarint(nil, uint64(len(f.b))), f.b...)); err != nil {
					return
				}
			}
		}()
		testutil.Receive(t, p.conn.Done(), 5*time.Second, "the connection kept 8 MiB of type descriptions")
		if err := p.conn.Err(); err == nil || !strings.Contains(err.Error(), "type descriptions of more than 4194304 bytes") {
			t.Errorf("Err() = %v", err)
		}
	})
}

// TestWirePeerThatDoesNotRead: a peer that sends 1000 calls asking for
// 1 MiB each and never reads an answer costs the Conn the write queue's
// bound, not 1000 MiB.
func TestWirePeerThatDoesNotRead(t *testing.T) {
	p := newRawPeer(t)
	id := p.bootstrap(1, [2]string{"Blob", "func(int) ([]uint8, error)"})
	before := testutil.HeapAfterGC()
	const calls = 1000
	for i := range calls {
		p.send(msg(1).u(uint64(i + 2)).u(id).s("Blob").byte1(0).v(1 << 20))
	}
	testutil.Eventually(t, "every call to be taken up", func() bool { return p.conn.Stats().CallsServed == calls })
	grew := int64(testutil.HeapAfterGC()) - int64(before)
	t.Logf("heap growth: %d MiB", grew>>20)
	if grew > 64<<20 {
		t.Errorf("the Conn's heap grew by %d MiB for a peer that does not read; want about the write queue's bound (16 MiB)", grew>>20)
	}
}

// TestWireLayouts: a peer that lays out a struct otherwise describes it in
// a layouts message (9), and its values are read by field name.
func TestWireLayouts(t *testing.T) {
	p := newRawPeer(t)
	id := p.bootstrap(1, [2]string{"Area", "func(refbroker_test.wireRect) (int, error)"})
	// The Conn described its own wireRect before answering.
	want := msg(9).u(1).s("refbroker_test.wireRect").u(2).s("W").s("int").byte1(2).s("H").s("int").byte1(2)
	if len(p.layouts) != 1 || !want.equal(p.layouts[0]) {
		t.Errorf("layouts before the bootstrap's answer: % x; want % x", p.layouts, want.bytes())
	}
	// layouts: 1 struct, its name, 3 fields of (name, Go type, wire type):
	// H int (kind 2), Note string (7, unknown to the Conn), W int.
	p.send(msg(9).u(1).s("refbroker_test.wireRect").u(3).
		s("H").s("int").byte1(2).
		s("Note").s("string").byte1(7).
		s("W").s("int").byte1(2))
	// A struct value: its field count, then the fields in the sender's order.
	p.send(msg(1).u(2).u(id).s("Area").byte1(0).u(3).v(3).s("skipped").v(5))
	p.expect("Area's return", msg(2).u(2).byte1(0).v(15).byte1(0))

	// A field whose kind differs fails the call, naming it.
	q := newRawPeer(t)
	qid := q.bootstrap(1, [2]string{"Area", "func(refbroker_test.wireRect) (int, error)"})
	q.send(msg(9).u(1).s("refbroker_test.wireRect").u(2).
		s("W").s("string").byte1(7).
		s("H").s("int").byte1(2))
	q.send(msg(1).u(2).u(qid).s("Area").byte1(0).u(2).s("5").v(3))
	if got := q.next(); !bytes.Contains(got, []byte("wireRect.W is int here, string there")) {
		t.Errorf("Area with an incompatible layout: got %q", got)
	}
}

// TestWireOutParams: a return restores an out-parameter after its
// results: n, then (parameter index, value).
func TestWireOutParams(t *testing.T) {
	p := newRawPeer(t)
	id := p.bootstrap(1, [2]string{"Double", "func(*refbroker_test.wireRect) error"})
	// A pointer: tag 1, then the struct (field count, W, H).
	p.send(msg(1).u(2).u(id).s("Double").byte1(0).byte1(1).u(2).v(3).v(4))
	// The error result (nil), then one out-parameter: index 0, the struct.
	p.expect("Double's return", msg(2).u(2).byte1(0).byte1(0).u(1).u(0).u(2).v(6).v(8))
}

// TestWireOutParamsHoldingReferences: a pointer to data holding a
// reference is restored too (added 2026-11-28), and a return that ends
// with its results, as a peer built before writes it, restores nothing.
func TestWireOutParamsHoldingReferences(t *testing.T) {
	p := newRawPeer(t)
	id := p.bootstrap(1, [2]string{"Setup", "func(func(*refbroker_test.wireJob) error) (string, error)"})
	seq := uint64(1)
	for _, tc := range []struct {
		name  string
		reply func(seq uint64) *frame
		want  string
	}{
		// The error result (nil), then one out-parameter: index 0, the
		// struct (field count, Name, Hook: reference tag 1, our export
		// 7, type ID 0).
		{"restored", func(seq uint64) *frame {
			return msg(2).u(seq).byte1(0).byte1(0).u(1).u(0).u(2).s("after").byte1(1).u(7).u(0)
		}, "after, hook true"},
		{"from an older peer", func(seq uint64) *frame { return msg(2).u(seq).byte1(0).byte1(0) }, "before, hook false"},
	} {
		// Setup with a func of ours, which the Conn calls with its job.
		// Each call has a number of its own: one's serving entry may
		// outlast its return by a moment.
		seq++
		p.send(msg(1).u(seq).u(id).s("Setup").byte1(0).byte1(1).u(8).u(0))
		got := p.nextNotRelease()
		d := bytes.NewReader(got)
		if typ, _ := d.ReadByte(); typ != 1 {
			t.Fatalf("%s: callback: got % x, want a call", tc.name, got)
		}
		callback, _ := binary.ReadUvarint(d)
		p.send(tc.reply(callback))
		if got, want := p.nextNotRelease(), msg(2).u(seq).byte1(0).s(tc.want).byte1(0); !want.equal(got) {
			t.Fatalf("Setup's return %s: got % x, want % x", tc.name, got, want.bytes())
		}
	}
}

// TestWireHelloGatesRestores: the Conn restores a pointee holding a
// reference only to a peer whose hello says it reads them. To a peer that
// sent none (a refplug from before the hello) it restores only the
// pointees of plain data, and nothing at all for a method whose
// out-parameters all hold references: what such a peer expects.
func TestWireHelloGatesRestores(t *testing.T) {
	hookSig := [2]string{"Hook", "func(*refbroker_test.wireJob) error"}
	bothSig := [2]string{"Both", "func(*refbroker_test.wireRect, *refbroker_test.wireJob) error"}
	// Arguments: a wireJob{Name: "x"} (pointer tag 1, two fields, the
	// name, a nil func), a wireRect{3, 4}.
	job := func(f *frame) *frame { return f.byte1(1).u(2).s("x").byte1(0) }
	rect := func(f *frame) *frame { return f.byte1(1).u(2).v(3).v(4) }
	// Restored: the job, set, its hook a func of the Conn's (tag 1, then
	// its export ID and type ID, not checked here); the rect, doubled.
	setJob := func(f *frame) *frame { return f.u(2).s("set").byte1(1) }
	doubled := func(f *frame) *frame { return f.u(2).v(6).v(8) }

	t.Run("a peer without a hello", func(t *testing.T) {
		p := newRawPeer(t)
		id := p.bootstrap(1, hookSig, bothSig)
		p.send(job(msg(1).u(2).u(id).s("Hook").byte1(0)))
		p.expect("Hook's return, restoring nothing", msg(2).u(2).byte1(0).byte1(0))
		p.send(job(rect(msg(1).u(3).u(id).s("Both").byte1(0))))
		p.expect("Both's return, restoring the rect only", doubled(msg(2).u(3).byte1(0).byte1(0).u(1).u(0)))
	})
	t.Run("a peer with a hello", func(t *testing.T) {
		p := newRawPeer(t)
		p.hello()
		id := p.bootstrap(1, hookSig, bothSig)
		p.send(job(msg(1).u(2).u(id).s("Hook").byte1(0)))
		if got, head := p.nextReturn(), setJob(msg(2).u(2).byte1(0).byte1(0).u(1).u(0)).bytes(); !bytes.HasPrefix(got, head) {
			t.Fatalf("Hook's return: got % x, want it to start % x", got, head)
		}
		p.send(job(rect(msg(1).u(3).u(id).s("Both").byte1(0))))
		if got, head := p.nextReturn(), setJob(doubled(msg(2).u(3).byte1(0).byte1(0).u(2).u(0)).u(1)).bytes(); !bytes.HasPrefix(got, head) {
			t.Fatalf("Both's return: got % x, want it to start % x", got, head)
		}
	})
}

// TestWireBufferByLength: io.Reader's Read (and io.ReaderAt's ReadAt)
// takes its buffer as scratch, so between sides that announced feature 2
// the caller sends its length alone, flagged in the context byte (0x40),
// and the callee reads into a zeroed buffer of that length; its filled
// part comes back as before. To a peer without the feature the buffer's
// bytes go, as before. A flagged call of another method, or a length
// over the message limit, fails the call.
func TestWireBufferByLength(t *testing.T) {
	readSig := [2]string{"Read", "func([]uint8) (int, error)"}
	pullSig := [2]string{"Pull", "func(refbroker_test.WireReader, int) (int, error)"}

	t.Run("the Conn as the callee", func(t *testing.T) {
		p := newRawPeerWith(t, refbroker.Options{MaxServedBytes: 1 << 20})
		p.hello()
		id := p.bootstrap(1, readSig, addSig, waitSig)
		// Read with a buffer of 5, sent as its length: no context, flagged.
		p.send(msg(1).u(2).u(id).s("Read").byte1(0x40).u(5))
		// Its results (5, nil), then the filled buffer: 5 bytes, zeroed on
		// the way in.
		p.expect("Read's return", msg(2).u(2).byte1(0).v(5).byte1(0).u(5).raw("zzzzz"))
		// Unflagged, the bytes come along (a byte slice: its length plus
		// one, then its bytes), and the callee sees them.
		p.send(msg(1).u(3).u(id).s("Read").byte1(0).u(4).raw("abc"))
		p.expect("an unflagged Read's return", msg(2).u(3).byte1(0).v(3).byte1(0).u(3).raw("nnn"))
		for _, tc := range []struct {
			what string
			f    *frame
		}{
			{"a flagged Add", msg(1).u(4).u(id).s("Add").byte1(0x40).v(1).v(2)},
			{"a buffer over the message limit", msg(1).u(5).u(id).s("Read").byte1(0x40).u(1 << 40)},
		} {
			p.send(tc.f)
			got := p.nextReturn()
			if len(got) < 3 || got[2] != 1 || !bytes.Contains(got, []byte("malformed")) {
				t.Errorf("%s: got % x, want the call failed (status 1) as malformed", tc.what, got)
			}
		}
		// The buffer counts against MaxServedBytes (1 MiB here), which
		// bounds the calls running at once (one alone always runs, within
		// the message limit): beside a Wait, a 2 MiB buffer is refused.
		p.send(msg(1).u(6).u(id).s("Wait").byte1(1))
		testutil.Eventually(t, "Wait to be served", func() bool { return p.conn.Stats().Serving == 1 })
		p.send(msg(1).u(7).u(id).s("Read").byte1(0x40).u(2 << 20))
		if got := p.nextReturn(); len(got) < 3 || got[2] != 1 || !bytes.Contains(got, []byte("MaxServedBytes")) {
			t.Errorf("a 2 MiB buffer beside another call, under a 1 MiB MaxServedBytes: got %q, want the call refused naming MaxServedBytes", got[:min(len(got), 200)])
		}
		p.send(msg(3).u(6).byte1(1).byte1(0))
		p.expect("Wait after cancel", msg(2).u(6).byte1(0).byte1(1).s("*errors.errorString:context canceled"))
		// A call leaves the table a moment after its return.
		testutil.Eventually(t, "Wait to be done", func() bool { return p.conn.Stats().Serving == 0 })
		p.send(msg(1).u(8).u(id).s("Read").byte1(0x40).u(2 << 20))
		if got := p.nextReturn(); len(got) != 2<<20+12 || got[2] != 0 {
			t.Errorf("a 2 MiB buffer alone: got a return of %d bytes, status %d; want 2 MiB filled (and 12 bytes of header)", len(got), got[2])
		}
		if err := p.conn.Err(); err != nil {
			t.Errorf("the connection ended: %v", err)
		}
	})
	for _, hello := range []bool{true, false} {
		name := "the Conn as the caller, to a peer with the feature"
		if !hello {
			name = "the Conn as the caller, to a peer without it"
		}
		t.Run(name, func(t *testing.T) {
			p := newRawPeer(t)
			if hello {
				p.hello()
			}
			id := p.bootstrap(1, pullSig)
			// Pull with a reader of ours (export 7) and n = 4.
			p.send(msg(1).u(2).u(id).s("Pull").byte1(0).byte1(1).u(7).u(0).v(4))
			got := p.nextOfType(1) // the Conn's call of our Read
			d := bytes.NewReader(got[1:])
			seq, _ := binary.ReadUvarint(d)
			want := msg(0).u(7).s("Read").byte1(0).bytes()[1:]
			if hello {
				want = append(msg(0).u(7).s("Read").byte1(0x40).bytes()[1:], 4)
			} else {
				want = append(want, msg(0).u(5).raw("\xee\xee\xee\xee").bytes()[1:]...)
			}
			if tail := got[len(got)-d.Len():]; !bytes.Equal(tail, want) {
				t.Fatalf("the Conn's call of Read: got % x, want seq then % x", got, want)
			}
			p.send(msg(2).u(seq).byte1(0).v(2).byte1(0).u(2).raw("ab")) // we read 2 bytes
			p.expect("Pull's return", msg(2).u(2).byte1(0).v(2).byte1(0))
		})
	}
}

// nextOfType reads frames until one of message type typ, past the
// releases and the descriptions of types that come before it.
func (p *rawPeer) nextOfType(typ byte) []byte {
	p.t.Helper()
	for {
		if got := p.next(); len(got) > 0 && got[0] == typ {
			return got
		}
	}
}

// TestWirePing: a ping (type 10, seq) is answered by a return with no
// results, at once, even while the Conn runs all the calls its
// MaxConcurrentCalls allows. The Conn pings with it a peer that
// announced feature 4, and sends a Describe (type 7) to one that did not.
func TestWirePing(t *testing.T) {
	p := newRawPeerWith(t, refbroker.Options{MaxConcurrentCalls: 1})
	id := p.bootstrap(1, waitSig)
	// The Dispense leaves the table a moment after its answer.
	testutil.Eventually(t, "the Dispense to be done", func() bool { return p.conn.Stats().Serving == 0 })
	p.send(msg(1).u(2).u(id).s("Wait").byte1(1))
	testutil.Eventually(t, "Wait to be served", func() bool { return p.conn.Stats().Serving == 1 })
	p.send(msg(10).u(3))
	p.expect("the ping's answer, beside a call at the limit", msg(2).u(3).byte1(0))
	p.send(msg(3).u(2).byte1(1).byte1(0))
	p.expect("Wait after cancel", msg(2).u(2).byte1(0).byte1(1).s("*errors.errorString:context canceled"))

	for _, hello := range []bool{true, false} {
		q := newRawPeer(t)
		want := byte(7) // a Describe
		if hello {
			q.hello()
			want = 10
			// The hello is read before the ping is made: wait for a
			// round trip of the Conn's own after it.
			q.bootstrap(1)
		}
		answers := []*frame{msg(2).byte1(0)} // filled in with the seq below
		if !hello {
			answers = []*frame{
				msg(2).byte1(0).u(1),                         // no roots: an empty []ObjectInfo
				msg(2).byte1(2).byte1(2).s("busy").u(0).u(0), // refused (at its limit): answered too
			}
		}
		for _, a := range answers {
			errc := make(chan error, 1)
			go func() { errc <- q.conn.Ping() }()
			got := q.nextOfType(want)
			seq, n := binary.Uvarint(got[1:])
			if n <= 0 || len(got) != 1+n {
				t.Fatalf("hello %v: the Conn's ping: got % x, want type %d and a seq alone", hello, got, want)
			}
			q.send(msg(2).u(seq).raw(string(a.bytes()[1:])))
			if err := testutil.Receive(t, errc, 10*time.Second, "Ping to return"); err != nil {
				t.Errorf("hello %v: Ping = %v", hello, err)
			}
		}
	}
}

// TestWireErrorsComeHome: an error crosses with its sender's number
// among its keys ("#sent:N"); sent back, it carries that number as the
// receiver's own ("#back:N"). An error from a peer that numbers none (an
// older refplug) goes back with no key.
func TestWireErrorsComeHome(t *testing.T) {
	p := newRawPeer(t)
	id := p.bootstrap(1, [2]string{"EchoErr", "func(error) error"}, [2]string{"Own", "func() error"})
	// Our error numbered 5: tag 2, text, no children, one key.
	p.send(msg(1).u(2).u(id).s("EchoErr").byte1(0).byte1(2).s("x").u(0).u(1).s("#sent:5"))
	p.expect("our numbered error, back", msg(2).u(2).byte1(0).byte1(2).s("x").u(0).u(1).s("#back:5"))
	p.send(msg(1).u(3).u(id).s("EchoErr").byte1(0).byte1(2).s("y").u(0).u(0))
	p.expect("an error numbered by no one, back", msg(2).u(3).byte1(0).byte1(2).s("y").u(0).u(0))
	p.send(msg(1).u(4).u(id).s("Own").byte1(0))
	p.expect("the Conn's own error", msg(2).u(4).byte1(0).byte1(2).s("own").u(0).u(1).s("#sent:1"))
}

// nextNotRelease reads frames until one is not a release (the Conn
// releases the references it got once it collects their proxies).
func (p *rawPeer) nextNotRelease() []byte {
	p.t.Helper()
	for {
		if got := p.next(); len(got) == 0 || got[0] != 4 {
			return got
		}
	}
}

// nextReturn reads frames until a return, past the releases and the
// descriptions of types that come before it.
func (p *rawPeer) nextReturn() []byte {
	p.t.Helper()
	return p.nextOfType(2)
}

// flood writes buf, frames the Conn is to refuse, and waits for the Conn
// to end; the write fails once it has hung up.
func (p *rawPeer) flood(buf []byte, what string) {
	p.t.Helper()
	p.w.SetWriteDeadline(time.Now().Add(60 * time.Second))
	p.w.Write(buf)
	testutil.Receive(p.t, p.conn.Done(), 60*time.Second, "the Conn still runs after "+what)
}

// TestWireRequestFlood: a peer that sends Describe requests (7) as fast as
// it can and never reads the answers gets as many served at once as
// MaxConcurrentCalls allows, like calls; once the answers fill the write
// queue the rest are refused and the connection ends, instead of a
// goroutine waiting here for each request. On one thread the reader
// refuses the first request over the limit before any answer is written:
// it must not be the one left writing to a peer that does not read.
func TestWireRequestFlood(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	p := newRawPeer(t)
	before := runtime.NumGoroutine()
	const requests = 200_000 // ~40 MiB of answers: past the 16 MiB write queue
	var buf []byte
	for i := range requests {
		f := msg(7).u(uint64(i + 1))
		buf = binary.AppendUvarint(buf, uint64(len(f.b)))
		buf = append(buf, f.b...)
	}
	p.flood(buf, "a flood of requests whose answers are never read")
	if err := p.conn.Err(); err == nil || !strings.Contains(err.Error(), "does not read") {
		t.Errorf("the Conn ended with %v; want it to say the peer does not read", err)
	}
	if grew := runtime.NumGoroutine() - before; grew > 2*refbroker.DefaultMaxConcurrentCalls {
		t.Errorf("%d goroutines more after the flood; want at most about MaxConcurrentCalls (%d)", grew, refbroker.DefaultMaxConcurrentCalls)
	}
}

// loggedConn is a Conn serving nothing, its warnings kept in logs, and
// the raw end of its stream.
func loggedConn(t *testing.T) (raw net.Conn, c *refbroker.Conn, logs *testutil.Buffer) {
	a, b := net.Pipe()
	logs = &testutil.Buffer{}
	c = refbroker.NewConn(a, refbroker.Options{Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Warn})})
	t.Cleanup(func() { b.Close(); c.Close() })
	return b, c, logs
}

// writeFrames writes each body as a frame, in one write.
func writeFrames(t *testing.T, w net.Conn, bodies ...*frame) {
	t.Helper()
	var buf []byte
	for _, f := range bodies {
		buf = binary.AppendUvarint(buf, uint64(len(f.b)))
		buf = append(buf, f.b...)
	}
	w.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := w.Write(buf); err != nil {
		t.Fatal(err)
	}
}

// TestWireReleaseOfUnknownReferences: a release naming references the
// peer never held is logged once, with their number and the first few,
// not a line as long as the message (a release can name millions).
func TestWireReleaseOfUnknownReferences(t *testing.T) {
	raw, _, logs := loggedConn(t)
	const n = 100_000
	f := msg(4).u(n)
	for i := range n {
		f.u(uint64(1000 + i)).u(1)
	}
	writeFrames(t, raw, f)
	testutil.Eventually(t, "the warning", func() bool { return strings.Contains(logs.String(), "did not hold") })
	line := logs.String()
	if !strings.Contains(line, "count=100000") || !strings.Contains(line, "1009") || strings.Contains(line, "1010") || len(line) > 1000 {
		t.Errorf("the warning for %d unknown references (%d bytes): %.300s; want their count and the first ten", n, len(line), line)
	}
}

// TestWireTypeDescriptionsOverTheLimit: a layouts message (9) larger than
// the 4 MiB a peer's type descriptions may take ends the connection before
// it is parsed; parsed, its 3-byte fields would have cost tens of times
// its size. So does one within the bytes whose fields are more than the
// 262,144 parts descriptions may have: this side would keep them all.
func TestWireTypeDescriptionsOverTheLimit(t *testing.T) {
	q := newRawPeer(t)
	g := msg(9).u(1).s("refbroker_test.many").u(300_000)
	for range 300_000 {
		g.s("").s("").byte1(2)
	}
	q.flood(append(binary.AppendUvarint(nil, uint64(len(g.b))), g.b...), "300,000 fields described")
	if err := q.conn.Err(); err == nil || !strings.Contains(err.Error(), "more than 262144 parts") {
		t.Errorf("the Conn ended with %v; want the parts' limit named", err)
	}

	p := newRawPeer(t)
	const fields = 2 << 20 // 6 MiB of fields of (name, Go type, kind)
	f := msg(9).u(1).s("refbroker_test.huge").u(fields)
	for range fields {
		f.s("").s("").byte1(2)
	}
	allocs := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(allocs)
	before := allocs[0].Value.Uint64()
	p.flood(append(binary.AppendUvarint(nil, uint64(len(f.b))), f.b...), "6 MiB of type descriptions")
	metrics.Read(allocs)
	if err := p.conn.Err(); err == nil || !strings.Contains(err.Error(), "type descriptions of more than 4194304 bytes") {
		t.Errorf("the Conn ended with %v; want the type descriptions' limit named", err)
	}
	if grew := allocs[0].Value.Uint64() - before; grew > 32<<20 {
		t.Errorf("reading 6 MiB of type descriptions allocated %d MiB; want about the message itself", grew>>20)
	}
}

// TestWireReturnsForUnknownCalls: returns for calls never made are
// ignored, and a peer sending thousands of them gets a handful of warnings
// (at the 1st, 2nd, 4th… such return), not one each.
func TestWireReturnsForUnknownCalls(t *testing.T) {
	raw, c, logs := loggedConn(t)
	const n = 10_000
	var returns []*frame
	for i := range n {
		returns = append(returns, msg(2).u(uint64(1000+i)).byte1(0))
	}
	writeFrames(t, raw, returns...)
	testutil.Eventually(t, "the 8192nd return's warning", func() bool { return strings.Contains(logs.String(), "count=8192") })
	if lines := strings.Count(logs.String(), "return for an unknown call"); lines != 14 {
		t.Errorf("%d warnings for %d returns for unknown calls; want 14 (at 1, 2, 4, … 8192)", lines, n)
	}
	if err := c.Err(); err != nil {
		t.Errorf("the Conn ended: %v", err)
	}
}

// TestWirePeerTextIsPrintable: names and signatures a peer gives in type
// descriptions, layouts and requests reach this side's errors, logs and
// an inspector's terminal as they are: one that holds control characters,
// bidirectional formatting characters (which make text read in another
// order than it was written) or bytes that are not UTF-8 is malformed, and
// ends the connection, naming what held it, quoted. Describe refuses such
// an answer.
func TestWirePeerTextIsPrintable(t *testing.T) {
	for _, tc := range []struct {
		name, what string // what: as the error names it, if not name
		f          *frame
	}{
		{"a type's name", "", msg(6).u(1).s("T\x1b[2J").u(0)},
		{"a method's name", "", msg(6).u(1).s("T").u(1).s("M\a").s("func()")},
		{"a method's signature", "", msg(6).u(1).s("T").u(1).s("M").s("func(\xff)")},
		{"a struct's name", "", msg(9).u(1).s("p.S\x00").u(0)},
		{"a field's name", "", msg(9).u(1).s("p.S").u(1).s("F\r").s("int").byte1(2)},
		{"a field's type", "", msg(9).u(1).s("p.S").u(1).s("F").s("in\u0085t").byte1(2)},
		{"a Dispense names an object", "", msg(5).u(2).s("calc\x1b]0;x\a").s("wire.Calc").u(0)},
		{"a Dispense names an interface", "", msg(5).u(2).s("calc").s("wire.Calc\n").u(0)},
		{"a call names a method", "", msg(1).u(2).u(1).s("Add\x1b[31m").byte1(0)},
		{"a method's reordered signature", "a method's signature", msg(6).u(1).s("T").u(1).s("M").s("func(x int) (\u202eerror ,bool\u202c)")},
		{"a type's name, isolated", "a type's name", msg(6).u(1).s("T\u2067Admin\u2069").u(0)},
		{"a struct's name, two lines", "a struct's name", msg(9).u(1).s("p.S\u2028p.T").u(0)},
	} {
		if tc.what == "" {
			tc.what = tc.name
		}
		t.Run(tc.name, func(t *testing.T) {
			p := newRawPeer(t)
			p.bootstrap(1, addSig)
			p.send(tc.f)
			testutil.Receive(t, p.conn.Done(), 5*time.Second, "the connection took "+tc.name+" holding control characters")
			err := p.conn.Err()
			if err == nil || !strings.Contains(err.Error(), tc.what+": \"") || !strings.Contains(err.Error(), "\" holds control or bidirectional formatting characters, or bytes that are not UTF-8") {
				t.Errorf("Err() = %v", err)
			}
			if err != nil && strings.ContainsAny(err.Error(), "\x00\x1b\a\r\n\u0085\u202e\u2067\u2028") {
				t.Errorf("the error holds the control characters: %q", err)
			}
		})
	}
	t.Run("Describe", func(t *testing.T) {
		p := newRawPeer(t)
		errc := make(chan error, 1)
		go func() { _, err := p.conn.Describe(); errc <- err }()
		got := p.nextOfType(7)
		seq, _ := binary.Uvarint(got[1:])
		// One object: its name, its type, no methods.
		p.send(msg(2).u(seq).byte1(0).u(2).u(3).s("calc").s("main.calc\x1b[2J").u(1))
		err := testutil.Receive(t, errc, 10*time.Second, "Describe to return")
		if err == nil || !strings.Contains(err.Error(), `described its object calc with "main.calc\x1b[2J"`) {
			t.Errorf("Describe = %v", err)
		}
	})
	// Unicode names are names.
	p := newRawPeer(t)
	p.bootstrap(1, addSig)
	p.send(msg(6).u(1).s("paket.Größe").u(1).s("Länge").s("func() (int, error)"))
	p.send(msg(10).u(3))
	p.expect("the ping's answer after a type named in Unicode", msg(2).u(3).byte1(0))
}
