package refbroker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"
)

// Hostile and careless input, in-process: what a peer or a bad value can
// make this side allocate, compute, or crash with.

// wide is 256 bytes in memory and as little as 2 bytes on the wire.
type wide struct{ A [32]int64 }

// TestDecodeAllocatesWithTheBytes: a count claiming as many elements as
// the message has bytes, of an element type far larger in memory than on
// the wire, must not buy an allocation of count × size up front.
func TestDecodeAllocatesWithTheBytes(t *testing.T) {
	c, err := codecFor(reflect.TypeFor[[]wide]())
	if err != nil {
		t.Fatal(err)
	}
	const n = 4 << 20 // a 4 MiB message claiming 4M elements (1 GiB in memory)
	msg := make([]byte, n+8)
	e := &encoder{}
	e.uvarint(n + 1)
	copy(msg, e.buf)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d := &decoder{buf: msg}
	c.dec(d, reflect.New(c.t).Elem())
	runtime.ReadMemStats(&after)
	if d.err == nil {
		t.Fatal("decoding garbage elements succeeded")
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Errorf("decoding a 4 MiB message allocated %d MiB; want it bounded by what the bytes hold", got>>20)
	}
}

// TestEncodingStopsAtTheLimit: a value that shares one subtree many times
// over (2^40 leaves) is refused as soon as its encoding passes the size
// limit, not after building it whole.
func TestEncodingStopsAtTheLimit(t *testing.T) {
	var v any = strings.Repeat("x", 100)
	for range 40 {
		v = []any{v, v}
	}
	c, _ := codecFor(anyType)
	e := &encoder{limit: frameRoom + 1<<20}
	err := c.encode(e, reflect.ValueOf(&v).Elem())
	var se *sizeError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "exceeds the limit of 1048576 bytes") {
		t.Fatalf("encoding 2^40 leaves = %v; want the size limit named", err)
	}
	if len(e.buf) > 2<<20 {
		t.Errorf("the encoder built %d bytes before stopping; want about the limit", len(e.buf))
	}
}

// boom panics when it is encoded; badErr panics when its text is asked.
type boom struct{}

func (boom) MarshalBinary() ([]byte, error) { panic("marshal exploded") }
func (*boom) UnmarshalBinary([]byte) error  { return nil }

type badErr struct{}

func (badErr) Error() string { panic("Error exploded") }

type dropper interface {
	Drop(b boom) error
	Report(err error) error
}

type dropperProxy struct{ *Ref }

func (p dropperProxy) Drop(b boom) error      { return p.Invoke("Drop", []any{b}) }
func (p dropperProxy) Report(err error) error { return p.Invoke("Report", []any{err}) }

type dropperImpl struct{}

func (dropperImpl) Drop(boom) error    { return nil }
func (dropperImpl) Report(error) error { return nil }

func init() {
	RegisterInterface[dropper](func(r *Ref) dropper { return dropperProxy{r} })
}

// TestPanickingArgumentFailsTheCall: an argument whose MarshalBinary or
// Error method panics fails its call with an error naming the method and
// parameter; nothing panics in the caller and nothing stays pending.
func TestPanickingArgumentFailsTheCall(t *testing.T) {
	client, _ := testPair(t, map[string]any{"d": dropperImpl{}})
	d, err := Dispense[dropper](client, "d")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		call func() error
		want string
	}{
		{"MarshalBinary", func() error { return d.Drop(boom{}) }, "refbroker: refbroker.dropper.Drop: parameter 1: encoding refbroker.boom panicked: marshal exploded"},
		{"Error", func() error { return d.Report(badErr{}) }, "refbroker: refbroker.dropper.Report: parameter 1: encoding error panicked: Error exploded"},
	} {
		err := c.call()
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: %v; want %q", c.name, err, c.want)
		}
	}
	if s := client.Stats(); s.Pending != 0 || s.Exports != 0 {
		t.Errorf("after failed calls: %+v; want nothing pending or exported", s)
	}
	if err := d.Report(errors.New("fine")); err != nil {
		t.Errorf("Report after the failures: %v", err)
	}
}

// TestComposedNames: a pointer to, slice of or map of registered types
// travels in an any under a composed name; the names a peer may send are
// bounded and checked.
func TestComposedNames(t *testing.T) {
	type pt struct{ X int }
	RegisterType(pt{})
	for _, v := range []any{&pt{}, []*pt{}, map[string][]pt{}, map[pt]int{}} {
		name, ok := registeredName(reflect.TypeOf(v))
		if !ok {
			t.Errorf("%T is not covered by pt's registration", v)
			continue
		}
		if back, ok := registeredType(name); !ok || back != reflect.TypeOf(v) {
			t.Errorf("%q names %v, %v; want %T", name, back, ok, v)
		}
	}
	for _, name := range []string{
		strings.Repeat("*", 100) + "int",                 // too deep
		"map[" + typeName(reflect.TypeFor[pt]()) + "int", // unclosed
		"map[[]int]int", // a key that is not comparable
		"[4]int",        // arrays are not composed
		"[]no.Such",
	} {
		if typ, ok := registeredType(name); ok {
			t.Errorf("registeredType(%q) = %v; want it refused", name, typ)
		}
	}
}

// chunkReader returns its chunks one Read at a time, a nil chunk as a
// read that timed out (as a reader interrupted by its deadline does).
type chunkReader struct{ chunks [][]byte }

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, os.ErrDeadlineExceeded
	}
	c := r.chunks[0]
	if c == nil {
		r.chunks = r.chunks[1:]
		return 0, os.ErrDeadlineExceeded
	}
	n := copy(p, c)
	if n == len(c) {
		r.chunks = r.chunks[1:]
	} else {
		r.chunks[0] = c[n:]
	}
	return n, nil
}

// TestFrameAllocatesWithTheBytes: a length prefix announcing a large frame
// makes the reader allocate as the frame's bytes arrive, not its announced
// length up front; a real frame that long still arrives whole, across
// reads interrupted by timeouts.
func TestFrameAllocatesWithTheBytes(t *testing.T) {
	const size = 60 << 20
	e := &encoder{}
	e.uvarint(size)
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i * 7)
	}
	r := &chunkReader{chunks: [][]byte{e.buf, body[:10]}}
	f := &frameReader{br: bufio.NewReaderSize(r, readBuffer)}

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := f.next(64 << 20)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("reading a frame whose bytes stopped coming = %v; want the read's timeout", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > frameStep+1<<20 {
		t.Errorf("a length prefix announcing %d MiB and 10 bytes made the reader allocate %d MiB; want at most %d MiB", size>>20, got>>20, frameStep>>20)
	}

	// The rest arrives in pieces, with timeouts between them: the frame
	// comes out whole, and it is no bigger than four times what arrived.
	rest := body[10:]
	for len(rest) > 0 {
		n := min(len(rest), 3<<20+12345)
		r.chunks = append(r.chunks, rest[:n], nil)
		rest = rest[n:]
	}
	var frame []byte
	for frame == nil {
		frame, _, err = f.next(64 << 20)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal(err)
		}
		if frame == nil && f.have > 0 && len(f.body) > 4*f.have+frameStep {
			t.Fatalf("with %d bytes in, the frame's buffer is %d bytes", f.have, len(f.body))
		}
	}
	if !bytes.Equal(frame, body) {
		t.Fatal("the frame read in pieces differs from the one sent")
	}
}

// Two builds of one struct (local types named "refbroker.item"): the
// sender's has no fields, the receiver's a kilobyte of them.
func senderItems(n int) reflect.Value {
	type item struct{}
	return reflect.ValueOf(make([]item, n))
}

func receiverItems() reflect.Value {
	type item struct{ Pad [128]int64 }
	return reflect.New(reflect.TypeOf([]item{})).Elem()
}

// TestDecodeBoundsReceiverOnlyFields: a peer whose version of a struct
// has none of this side's fields sends each element of a slice of it in
// one byte, which this side decodes into a kilobyte (its fields keep their
// zero values). Decoding stops at the message's memory budget for such
// fields (layoutFactor bytes a byte), naming it and the type, instead of
// allocating a kilobyte for each byte received.
func TestDecodeBoundsReceiverOnlyFields(t *testing.T) {
	client, server := testPair(t, nil)
	send, recv := senderItems(256<<10), receiverItems()
	learnLayouts(t, client, server, send.Type().Elem(), recv.Type().Elem())
	msg := encodeBy(t, server, send)
	rc, _ := codecFor(recv.Type())
	before := allocated()
	d := &decoder{buf: msg, refs: client}
	rc.dec(d, recv)
	got := allocated() - before
	if d.err == nil || !strings.Contains(d.err.Error(), "more memory than its budget") || !strings.Contains(d.err.Error(), "refbroker.item") {
		t.Fatalf("decoding %d one-byte elements of a kilobyte each = %v; want the memory budget named, and the type", send.Len(), d.err)
	}
	if limit := uint64(3 * (decodeBase + (decodeFactor+layoutFactor)*len(msg))); got > limit {
		t.Errorf("decoding a %d KiB message allocated %d MiB; want at most about its budget", len(msg)>>10, got>>20)
	}
}

// Two builds of a record: the sender's of an older contract, with two
// fields; the receiver's, which gained twenty strings since.
func olderRecords(n int) reflect.Value {
	type record struct {
		ID   int
		Name string
	}
	rs := make([]record, n)
	for i := range rs {
		rs[i] = record{ID: i, Name: strconv.Itoa(i % 10)}
	}
	return reflect.ValueOf(rs)
}

func newerRecords() reflect.Value {
	type record struct {
		ID                                      int
		Name                                    string
		A1, A2, A3, A4, A5, A6, A7, A8, A9, A10 string
		B1, B2, B3, B4, B5, B6, B7, B8, B9, B10 string
	}
	return reflect.New(reflect.TypeOf([]record{})).Elem()
}

// TestDecodeTakesReceiverOnlyFields: a newer contract's record with twenty
// more fields than the peer's version decodes from about 4.4 bytes an
// element into 344 (78 a byte, past the budget's 64): 100,000 of them
// arrive whole, each with its ID and name. Before the fields the sender
// lacks were counted apart, 5,000 were refused as malformed.
func TestDecodeTakesReceiverOnlyFields(t *testing.T) {
	client, server := testPair(t, nil)
	const n = 100_000
	send, recv := olderRecords(n), newerRecords()
	learnLayouts(t, client, server, send.Type().Elem(), recv.Type().Elem())
	msg := encodeBy(t, server, send)
	rc, _ := codecFor(recv.Type())
	d := &decoder{buf: msg, refs: client}
	rc.dec(d, recv)
	if d.err != nil {
		t.Fatalf("decoding %d records (%d bytes) = %v", n, len(msg), d.err)
	}
	if recv.Len() != n {
		t.Fatalf("decoded %d records; want %d", recv.Len(), n)
	}
	for _, i := range []int{0, 1, n / 2, n - 1} {
		r := recv.Index(i)
		if r.FieldByName("ID").Int() != int64(i) || r.FieldByName("Name").String() != strconv.Itoa(i%10) || r.FieldByName("B10").String() != "" {
			t.Errorf("record %d = %v", i, r.Interface())
		}
	}
}

// TestDecodeBudgetTakesLegitimateValues: values whose decoded memory is
// well inside the budget's 64 bytes a byte decode, however large. A slice
// too long to allocate at once grows as its elements arrive, and each
// growth counts what it adds; counting every allocation whole (about
// 2.75 times the final slice) refused 200,000 nil rows of a [][]int, 24
// bytes decoded for each byte sent.
func TestDecodeBudgetTakesLegitimateValues(t *testing.T) {
	for _, v := range []any{
		make([][]int, 200_000),
		make([]string, 300_000),
		make([]map[string]int, 200_000),
		make([]*int, 400_000),
	} {
		if got := roundTrip(t, v); reflect.ValueOf(got).Len() != reflect.ValueOf(v).Len() {
			t.Errorf("%T: %d elements decoded, want %d", v, reflect.ValueOf(got).Len(), reflect.ValueOf(v).Len())
		}
	}
}

// manyMaker hands out n distinct objects at a call.
type manyMaker interface {
	Many(n int) ([]named, error)
}

type manyProxy struct{ *Ref }

func (p manyProxy) Many(n int) ([]named, error) {
	var out []named
	err := p.Invoke("Many", []any{n}, &out)
	return out, err
}

func init() { RegisterInterface[manyMaker](func(r *Ref) manyMaker { return manyProxy{r} }) }

type manyServer struct{}

func (manyServer) Many(n int) ([]named, error) {
	out := make([]named, n)
	for i := range out {
		out[i] = &thing{label: fmt.Sprint(i)}
	}
	return out, nil
}

// TestMaxImports: a side holds at most MaxImports of the peer's objects;
// a result that would make more fails its call, naming the limit, and the
// connection goes on. Once the proxies are dropped and collected, the room
// is back.
func TestMaxImports(t *testing.T) {
	client, _ := newPair(t, Options{Roots: map[string]any{"m": manyServer{}}}, Options{MaxImports: 100})
	m, err := Dispense[manyMaker](client, "m")
	if err != nil {
		t.Fatal(err)
	}
	holdPastLimit(t, m, "already holds 100 of the other side's objects, its limit (Options.MaxImports)", 100, func() int { return client.Stats().Imports })
	testutil.Eventually(t, "the dropped proxies to be released", func() bool { return client.Stats().Imports <= 1 })
	if got, err := m.Many(90); err != nil || len(got) != 90 {
		t.Errorf("Many(90) after the release = %d, %v", len(got), err)
	}
}

// holdPastLimit has m hand out 60 objects and then 60 more, past a limit
// of 100 references: the second call must fail naming the limit (want),
// with at most atMost references counted (count) while the first 60 are
// held; they are dropped when it returns.
func holdPastLimit(t *testing.T, m manyMaker, want string, atMost int, count func() int) {
	t.Helper()
	got, err := m.Many(60)
	if err != nil || len(got) != 60 {
		t.Fatalf("Many(60) = %d, %v", len(got), err)
	}
	if _, err := m.Many(60); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Many(60) with 61 references = %v; want the limit named (%q)", err, want)
	}
	if n := count(); n > atMost {
		t.Errorf("%d references counted after the refused answer; want at most %d", n, atMost)
	}
	runtime.KeepAlive(got)
}

// TestMaxExports: the peer holds at most MaxExports of a side's objects: a
// call whose answer would export more fails, naming the limit, and
// nothing it would have exported stays; so does a Dispense. Once the peer
// releases its proxies, the room is back.
func TestMaxExports(t *testing.T) {
	client, server := newPair(t, Options{Roots: map[string]any{"m": manyServer{}}, MaxExports: 100}, Options{})
	m, err := Dispense[manyMaker](client, "m") // the root: one export
	if err != nil {
		t.Fatal(err)
	}
	// Nothing the refused answer exported stays: 61, the root and 60.
	holdPastLimit(t, m, "already holds 100 of this side's objects, the limit (Options.MaxExports)", 61, func() int { return server.Stats().Exports })
	testutil.Eventually(t, "the dropped proxies to be released", func() bool {
		runtime.GC()
		return server.Stats().Exports == 1
	})
	held, err := m.Many(99)
	if err != nil || len(held) != 99 {
		t.Fatalf("Many(99) after the release = %d, %v", len(held), err)
	}
	if _, err := Dispense[manyMaker](client, "m"); err == nil || !strings.Contains(err.Error(), "Options.MaxExports") {
		t.Errorf("Dispense with 100 of 100 exported = %v; want the limit named", err)
	}
	runtime.KeepAlive(held)
}

// holder's Hold keeps its argument until its context ends, and returns
// its error; Size returns at once.
type holder struct{ holding atomic.Int32 }

func (h *holder) Hold(ctx context.Context, b []byte) error {
	h.holding.Add(1)
	defer h.holding.Add(-1)
	<-ctx.Done()
	return ctx.Err() // the caller's reason, whether its return or its own context ends its wait
}

func (h *holder) Size(b []byte) (int, error) { return len(b), nil }

func (h *holder) Count(bs [][]byte) (int, error) { return len(bs), nil }

type Holder interface {
	Hold(ctx context.Context, b []byte) error
	Size(b []byte) (int, error)
	Count(bs [][]byte) (int, error)
}

type holderProxy struct{ *Ref }

func (p holderProxy) Hold(ctx context.Context, b []byte) error {
	return p.Invoke("Hold", []any{ctx, b})
}

func (p holderProxy) Size(b []byte) (int, error) {
	var n int
	err := p.Invoke("Size", []any{b}, &n)
	return n, err
}

func (p holderProxy) Count(bs [][]byte) (int, error) {
	var n int
	err := p.Invoke("Count", []any{bs}, &n)
	return n, err
}

func init() {
	RegisterInterface[Holder](func(r *Ref) Holder { return holderProxy{r} })
}

// TestMaxServedBytes: the messages of the peer's calls running at once
// are bounded: a call that would pass the limit is refused at once,
// naming it, and counted; once a running call returns, its bytes are
// free again; and a call alone always runs, however large.
func TestMaxServedBytes(t *testing.T) {
	h := &holder{}
	client, server := newPair(t, Options{Roots: map[string]any{"holder": h}, MaxServedBytes: 1 << 20}, Options{})
	hl, err := Dispense[Holder](client, "holder")
	if err != nil {
		t.Fatal(err)
	}
	// The Dispense's request may still be leaving the serving table.
	testutil.Eventually(t, "nothing to run on the server", func() bool { return server.Stats().Serving == 0 })
	if n, err := hl.Size(make([]byte, 3<<20)); err != nil || n != 3<<20 {
		t.Fatalf("a 3 MiB call alone = %d, %v; want it run (the limit is 1 MiB)", n, err)
	}

	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	held := make(chan error, 2)
	go func() { held <- hl.Hold(ctx1, make([]byte, 400<<10)) }()
	go func() { held <- hl.Hold(ctx2, make([]byte, 400<<10)) }()
	testutil.Eventually(t, "both Holds to run", func() bool { return h.holding.Load() == 2 })
	if st := server.Stats(); st.Serving != 2 || st.ServedBytes < 800<<10 || st.ServedBytes > 1<<20 {
		t.Errorf("Stats with two 400 KiB Holds running: Serving %d, ServedBytes %d", st.Serving, st.ServedBytes)
	}

	_, err = hl.Size(make([]byte, 400<<10))
	if err == nil || !strings.Contains(err.Error(), "would pass the limit of 1048576 (Options.MaxServedBytes)") || !strings.Contains(err.Error(), "call of Size refused") {
		t.Fatalf("a third 400 KiB call with 800 KiB held = %v; want it refused, naming the limit", err)
	}
	if got := server.Stats().CallsRefused; got != 1 {
		t.Errorf("Stats.CallsRefused = %d; want 1", got)
	}
	if n, err := hl.Size(make([]byte, 100<<10)); err != nil || n != 100<<10 {
		t.Errorf("a 100 KiB call that fits = %d, %v", n, err)
	}
	// 40,000 empty slices: about 40 KB on the wire, 960 KB once decoded.
	// What the arguments take counts, not only their message.
	if _, err := hl.Count(make([][]byte, 40000)); err == nil || !strings.Contains(err.Error(), "(Options.MaxServedBytes)") {
		t.Errorf("a call whose arguments take 960 KB, with 800 KiB held = %v; want it refused, naming the limit", err)
	}
	if got := server.Stats().CallsRefused; got != 2 {
		t.Errorf("Stats.CallsRefused = %d; want 2", got)
	}

	cancel1()
	if err := testutil.Receive(t, held, 10*time.Second, "Hold did not return after its context was cancelled"); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled Hold = %v", err)
	}
	testutil.Eventually(t, "the cancelled call's bytes to be free", func() bool {
		n, err := hl.Size(make([]byte, 400<<10))
		return err == nil && n == 400<<10
	})
	cancel2()
	testutil.Receive(t, held, 10*time.Second, "Hold did not return after its context was cancelled")
	testutil.Eventually(t, "the 960 KB call to run once it is alone", func() bool {
		n, err := hl.Count(make([][]byte, 40000))
		return err == nil && n == 40000
	})
}

// responder answers through the http.ResponseWriter it is given with n
// wire calls at once, as a hostile peer could (the proxy itself keeps to
// one).
type responder struct{}

func (responder) Respond(w http.ResponseWriter, n int) error {
	r := w.(*responseProxy).Ref
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Invoke("WriteHeader", []any{200, map[string][]string{fmt.Sprint("X-", i): {"y"}}})
			var k int
			r.Invoke("Write", []any{[]byte("x")}, &k)
		}()
	}
	wg.Wait()
	return nil
}

type Responder interface {
	Respond(w http.ResponseWriter, n int) error
}

type responderProxy struct{ *Ref }

func (p responderProxy) Respond(w http.ResponseWriter, n int) error {
	return p.Invoke("Respond", []any{w, n})
}

func init() {
	RegisterInterface[Responder](func(r *Ref) Responder { return responderProxy{r} })
}

// TestResponseWriterCalledOneAtATime: a peer calling the methods of an
// http.ResponseWriter it was passed from many goroutines at once gets
// them run one at a time here: a ResponseWriter's header is a map, and
// concurrent writes to a map end the process (not a panic a recover
// could catch). The race detector fails this test without that.
func TestResponseWriterCalledOneAtATime(t *testing.T) {
	client, _ := newPair(t, Options{Roots: map[string]any{"responder": responder{}}}, Options{})
	r, err := Dispense[Responder](client, "responder")
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := r.Respond(rec, 32); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 || rec.Body.Len() != 32 {
		t.Errorf("the recorder got status %d and %d bytes; want 200 and 32", rec.Code, rec.Body.Len())
	}
}
