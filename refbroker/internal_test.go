package refbroker

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/refplug/refplug/internal/testutil"
)

// Local contract for the package's own tests (testdata/contract imports
// this package, so it cannot be used here).

type named interface{ Name() (string, error) }

type widget interface {
	Name() (string, error)
	Secret() (string, error)
}

type maker interface {
	Make(label string) (named, error)
	Take(n named) (bool, error)
}

type namedProxy struct{ *Ref }

func (p namedProxy) Name() (string, error) {
	var s string
	err := p.Invoke("Name", nil, &s)
	return s, err
}

type widgetProxy struct{ *Ref }

func (p widgetProxy) Name() (string, error) {
	var s string
	err := p.Invoke("Name", nil, &s)
	return s, err
}

func (p widgetProxy) Secret() (string, error) {
	var s string
	err := p.Invoke("Secret", nil, &s)
	return s, err
}

type makerProxy struct{ *Ref }

func (p makerProxy) Make(label string) (named, error) {
	var n named
	err := p.Invoke("Make", []any{label}, &n)
	return n, err
}

func (p makerProxy) Take(n named) (bool, error) {
	var b bool
	err := p.Invoke("Take", []any{n}, &b)
	return b, err
}

func init() {
	RegisterInterface[named](func(r *Ref) named { return namedProxy{r} })
	RegisterInterface[widget](func(r *Ref) widget { return widgetProxy{r} })
	RegisterInterface[maker](func(r *Ref) maker { return makerProxy{r} })
}

type thing struct{ label string }

func (t *thing) Name() (string, error)   { return t.label, nil }
func (t *thing) Secret() (string, error) { return "secret of " + t.label, nil }

type factory struct{ taken []named }

func (f *factory) Make(label string) (named, error) { return &thing{label: label}, nil }
func (f *factory) Take(n named) (bool, error) {
	same := len(f.taken) > 0 && f.taken[len(f.taken)-1] == n
	f.taken = append(f.taken, n)
	return same, nil
}

func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		p := recover()
		if p == nil || !strings.Contains(fmt.Sprint(p), want) {
			t.Errorf("panic = %v; want one containing %q", p, want)
		}
	}()
	f()
}

func TestRegisterMisuse(t *testing.T) {
	mustPanic(t, "is not an interface type", func() { RegisterInterface[thing](func(*Ref) thing { return thing{} }) })
	mustPanic(t, "registered twice", func() { RegisterInterface[named](func(r *Ref) named { return namedProxy{r} }) })
	mustPanic(t, "newProxy is nil", func() { RegisterInterface[fmt.Stringer](nil) })
	mustPanic(t, "takes no proxy", func() { RegisterInterface[error](func(*Ref) error { return nil }) })
	mustPanic(t, "same text", func() { RegisterError(errors.New("EOF")) })
	mustPanic(t, "RegisterError(nil)", func() { RegisterError(nil) })
	mustPanic(t, "cannot cross", func() { RegisterType(make(chan int)) })
	RegisterError(context.Canceled) // again: a no-op
	RegisterType(0)                 // again: a no-op
}

type node struct {
	Val  int
	Next *node
}

type withMarshal struct {
	N *big.Int
	T time.Time
}

type small struct{ B int8 }

func roundTrip(t *testing.T, v any) any {
	t.Helper()
	c, err := codecFor(reflect.TypeOf(v))
	if err != nil {
		t.Fatalf("codecFor(%T): %v", v, err)
	}
	e := &encoder{}
	if err := c.enc(e, reflect.ValueOf(v)); err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	d := &decoder{buf: e.buf}
	out := reflect.New(reflect.TypeOf(v)).Elem()
	c.dec(d, out)
	if d.err != nil || d.remaining() != 0 {
		t.Fatalf("decode %T: %v (%d bytes left)", v, d.err, d.remaining())
	}
	return out.Interface()
}

func TestCodecRoundTrip(t *testing.T) {
	for _, v := range []any{
		true, int8(-128), int64(1 << 62), uint16(65535), 3.25, float32(-1.5), complex(1, -2), "héllo", "",
		[]byte(nil), []byte{}, []byte{0, 1, 255}, [3]int{1, 2, 3}, []string{"a", ""},
		map[string][]int{"a": {1}, "b": nil}, map[int]bool{}, map[string]int(nil),
		&node{1, &node{2, &node{3, nil}}},
		withMarshal{N: big.NewInt(0).Lsh(big.NewInt(1), 100), T: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)},
		struct {
			A []*int
			B map[string]struct{}
		}{A: []*int{nil, new(int)}, B: map[string]struct{}{"x": {}}},
	} {
		got := roundTrip(t, v)
		if !reflect.DeepEqual(got, v) {
			t.Errorf("round trip of %T: got %#v, want %#v", v, got, v)
		}
	}
}

func TestCodecRefusals(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{struct{ C chan int }{}, "field struct { C chan int }.C: chan int cannot cross: channels and unsafe pointers are not supported (hint: pass a func or an interface instead)"},
		{map[named]int{}, "map keys must be plain data"},
		{struct{ hidden int }{}, "no exported fields"},
		{[]context.Context{}, "crosses only as the first parameter"},
	} {
		_, err := codecFor(reflect.TypeOf(c.v))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("codecFor(%T) = %v; want an error containing %q", c.v, err, c.want)
		}
	}
	_, err := funcPlanFor(reflect.TypeFor[func(int, chan string) error]())
	if err == nil || !strings.Contains(err.Error(), "parameter 2: chan string cannot cross") {
		t.Errorf("funcPlanFor(chan param) = %v", err)
	}
}

func TestCyclicValueRefused(t *testing.T) {
	n := &node{Val: 1}
	n.Next = n
	c, _ := codecFor(reflect.TypeOf(n))
	err := c.enc(&encoder{}, reflect.ValueOf(n))
	if err == nil || !strings.Contains(err.Error(), "is it cyclic") {
		t.Errorf("encoding a cycle = %v", err)
	}
}

func TestDecodeHostileInput(t *testing.T) {
	c, _ := codecFor(reflect.TypeFor[[]string]())
	for _, b := range [][]byte{
		{}, // empty
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // 2^64-1 elements
		{3, 5, 'a'}, // string longer than the message
		{0x80},      // truncated varint
	} {
		d := &decoder{buf: b}
		c.dec(d, reflect.New(reflect.TypeFor[[]string]()).Elem())
		if d.err == nil {
			t.Errorf("decoding % x succeeded", b)
		}
	}
	sc, _ := codecFor(reflect.TypeFor[small]())
	e := &encoder{}
	e.uvarint(1)
	e.varint(1000)
	d := &decoder{buf: e.buf}
	sc.dec(d, reflect.New(reflect.TypeFor[small]()).Elem())
	if d.err == nil || !strings.Contains(d.err.Error(), "overflows int8") {
		t.Errorf("decoding 1000 into int8 = %v", d.err)
	}
}

func TestPeerRefusesMethodsOutsideStaticType(t *testing.T) {
	client, _ := testPair(t, map[string]any{"w": &thing{label: "w"}})
	n, err := Dispense[named](client, "w")
	if err != nil {
		t.Fatal(err)
	}
	// Forge a call of Secret on the reference, which crossed as named.
	r := refOf(reflect.ValueOf(n))
	wp, _ := ifacePlanFor(reflect.TypeFor[widget]())
	var s string
	var e error
	err = client.call(context.Background(), r.id, wp.methods["Secret"], nil, []reflect.Value{reflect.ValueOf(&s).Elem(), reflect.ValueOf(&e).Elem()})
	if err == nil || !strings.Contains(err.Error(), `has no method "Secret"`) {
		t.Errorf("forged Secret call = %v, %q; want a refusal naming Secret", err, s)
	}
	// Forged handle.
	err = client.call(context.Background(), 999, wp.methods["Name"], nil, []reflect.Value{reflect.ValueOf(&s).Elem(), reflect.ValueOf(&e).Elem()})
	if err == nil || !strings.Contains(err.Error(), "unknown reference #999") {
		t.Errorf("call on a forged handle = %v", err)
	}
	// Arguments that do not fit the method's signature.
	bad := &methodPlan{name: "Name", full: "forged Name", index: -1}
	bad.plan, _ = funcPlanFor(reflect.TypeFor[func(int, int) (string, error)]())
	err = client.call(context.Background(), r.id, bad, []reflect.Value{reflect.ValueOf(1), reflect.ValueOf(2)}, []reflect.Value{reflect.ValueOf(&s).Elem(), reflect.ValueOf(&e).Elem()})
	if err == nil || !strings.Contains(err.Error(), "named.Name: decoding arguments") {
		t.Errorf("call with extra arguments = %v; want the method and the problem named", err)
	}
	// The connection still serves.
	if got, err := n.Name(); err != nil || got != "w" {
		t.Errorf("Name after refusals = %q, %v", got, err)
	}
}

func TestReleaseAndCollection(t *testing.T) {
	f := &factory{}
	client, server := testPair(t, map[string]any{"m": f})
	m, err := Dispense[maker](client, "m")
	if err != nil {
		t.Fatal(err)
	}
	base := server.Stats().Exports // the root
	n, err := m.Make("a")
	if err != nil {
		t.Fatal(err)
	}
	if got := server.Stats().Exports; got != base+1 {
		t.Fatalf("exports after Make = %d, want %d", got, base+1)
	}
	if err := Release(n); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the server to drop a released export", func() bool { return server.Stats().Exports == base })

	// Collected proxies are released too.
	for i := range 20 {
		if _, err := m.Make(fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, "the server to drop collected exports", func() bool { return server.Stats().Exports == base })
	testutil.Eventually(t, "the client to forget collected imports", func() bool { return client.Stats().Imports == 1 })

	// Sending one object twice reuses one export; the server keeps one proxy.
	th := &thing{label: "x"}
	m.Take(th)
	same, err := m.Take(th)
	if err != nil || !same {
		t.Errorf("Take twice: same proxy = %v, %v", same, err)
	}
	if got := client.Stats().Exports; got != 1 {
		t.Errorf("client exports after sending one object twice = %d, want 1", got)
	}
	f.taken = nil // drop the server's proxies
	testutil.Eventually(t, "the client to drop the export once the server's proxy is collected", func() bool { return client.Stats().Exports == 0 })
}

type blobber interface {
	Blob(n int) ([]byte, error)
	Store(b []byte, n named) error
}

type blobberProxy struct{ *Ref }

func (p blobberProxy) Blob(n int) ([]byte, error) {
	var b []byte
	err := p.Invoke("Blob", []any{n}, &b)
	return b, err
}

func (p blobberProxy) Store(b []byte, n named) error { return p.Invoke("Store", []any{b, n}) }

func init() {
	RegisterInterface[blobber](func(r *Ref) blobber { return blobberProxy{r} })
}

type blobs struct{}

func (blobs) Blob(n int) ([]byte, error)    { return make([]byte, n), nil }
func (blobs) Store(b []byte, n named) error { return nil }

func TestMessageSizeLimit(t *testing.T) {
	client, _ := newPair(t, Options{Roots: map[string]any{"b": blobs{}}}, Options{MaxMessageSize: 4 << 10}) // the server has the default limit
	bl, err := Dispense[blobber](client, "b")
	if err != nil {
		t.Fatal(err)
	}
	// A result over the receiver's limit fails that call only.
	if _, err := bl.Blob(64 << 10); !errors.Is(err, ErrMessageTooLarge) || !strings.Contains(err.Error(), "exceeds the receiver's limit of 4096") {
		t.Errorf("Blob(64 KiB) = %v; want ErrMessageTooLarge, the receiver's limit named", err)
	}
	// An argument over the sender's limit is refused before sending, and the
	// reference sent with it is taken back.
	if err := bl.Store(make([]byte, 64<<10), &thing{}); !errors.Is(err, ErrMessageTooLarge) || !strings.Contains(err.Error(), "exceeds the limit of 4096") {
		t.Errorf("Store(64 KiB) = %v; want ErrMessageTooLarge, the sender's limit named", err)
	}
	// An argument over the receiver's limit is refused unread there, and the
	// refusal matches ErrMessageTooLarge here too.
	toSmall, _ := newPair(t, Options{MaxMessageSize: 4 << 10, Roots: map[string]any{"b": blobs{}}}, Options{})
	big, err := Dispense[blobber](toSmall, "b")
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Store(make([]byte, 64<<10), &thing{}); !errors.Is(err, ErrMessageTooLarge) || !strings.Contains(err.Error(), "exceeds the receiver's limit of 4096") {
		t.Errorf("Store(64 KiB) to a receiver limited to 4 KiB = %v; want ErrMessageTooLarge, the receiver's limit named", err)
	}
	if n := client.Stats().Exports; n != 0 {
		t.Errorf("client exports after a refused send = %d, want 0", n)
	}
	if b, err := bl.Blob(10); err != nil || len(b) != 10 {
		t.Errorf("after oversized messages, Blob(10) = %d bytes, %v", len(b), err)
	}
}

func TestRejectedCallTakesBackReferences(t *testing.T) {
	client, _ := testPair(t, map[string]any{"b": blobs{}})
	bp, _ := ifacePlanFor(reflect.TypeFor[blobber]())
	var e error
	args := []reflect.Value{reflect.ValueOf([]byte("x")), reflect.ValueOf(named(&thing{}))}
	err := client.call(context.Background(), 999, bp.methods["Store"], args, []reflect.Value{reflect.ValueOf(&e).Elem()})
	if err == nil || !strings.Contains(err.Error(), "unknown reference #999") {
		t.Fatalf("call on a forged handle = %v", err)
	}
	if s := client.Stats(); s.Exports != 0 || s.ExportsCreated != 1 || s.ExportsDropped != 1 {
		t.Errorf("after a rejected call: %+v; want the sent reference taken back", s)
	}
}

func TestStructFieldCountMismatch(t *testing.T) {
	type wide struct{ A, B int }
	type narrow struct{ A int }
	wc, _ := codecFor(reflect.TypeFor[wide]())
	nc, _ := codecFor(reflect.TypeFor[narrow]())
	e := &encoder{}
	if err := wc.enc(e, reflect.ValueOf(wide{1, 2})); err != nil {
		t.Fatal(err)
	}
	d := &decoder{buf: e.buf}
	nc.dec(d, reflect.New(reflect.TypeFor[narrow]()).Elem())
	if d.err == nil || !strings.Contains(d.err.Error(), "with 2 fields, this side has 1") {
		t.Errorf("decoding a wider struct = %v", d.err)
	}
}

// explosive panics when it is decoded.
type explosive struct{}

func (explosive) MarshalBinary() ([]byte, error) { return []byte{1}, nil }
func (*explosive) UnmarshalBinary([]byte) error  { panic("unmarshal exploded") }

type taker interface {
	Take(x explosive) error
	Ping() error
}

type takerProxy struct{ *Ref }

func (p takerProxy) Take(x explosive) error { return p.Invoke("Take", []any{x}) }
func (p takerProxy) Ping() error            { return p.Invoke("Ping", nil) }

func init() {
	RegisterInterface[taker](func(r *Ref) taker { return takerProxy{r} })
}

type takerImpl struct{}

func (takerImpl) Take(explosive) error { return nil }
func (takerImpl) Ping() error          { return nil }

func TestPanicWhileDecodingFailsTheCallOnly(t *testing.T) {
	client, _ := testPair(t, map[string]any{"t": takerImpl{}})
	tk, err := Dispense[taker](client, "t")
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Take(explosive{}); err == nil || !strings.Contains(err.Error(), "unmarshal exploded") {
		t.Errorf("Take = %v; want the decoding panic reported", err)
	}
	if err := tk.Ping(); err != nil {
		t.Errorf("Ping after a decoding panic = %v", err)
	}
}

// TestNestedReferenceTypeChecked: a reference whose sender's type lacks a
// method of the receiver's type is refused when it arrives, naming the
// method, and the answer is cached per type pair.
func TestNestedReferenceTypeChecked(t *testing.T) {
	client, _ := testPair(t, map[string]any{"m": &factory{}})
	m, err := Dispense[maker](client, "m")
	if err != nil {
		t.Fatal(err)
	}
	r := refOf(reflect.ValueOf(m))
	// Make returns a named; decode it as a widget, as a host with a newer
	// contract would.
	skewed := &methodPlan{name: "Make", full: "maker.Make", index: -1}
	skewed.plan, _ = funcPlanFor(reflect.TypeFor[func(string) (widget, error)]())
	for range 2 {
		var w widget
		var e error
		err = client.call(context.Background(), r.id, skewed, []reflect.Value{reflect.ValueOf("x")}, []reflect.Value{reflect.ValueOf(&w).Elem(), reflect.ValueOf(&e).Elem()})
		if err == nil || !strings.Contains(err.Error(), "other side's refbroker.named arrived as refbroker.widget") || !strings.Contains(err.Error(), "missing method Secret") {
			t.Errorf("skewed Make = %v", err)
		}
	}
	if n, err := m.Make("ok"); err != nil {
		t.Errorf("Make after a refused reference: %v", err)
	} else if l, _ := n.Name(); l != "ok" {
		t.Errorf("Name = %q", l)
	}
}

// TestLateReturnAfterShutdown: a return read while the connection ends
// (its call was already told, by Conn.end) is dropped without a warning;
// a return for no call of an open connection is still worth one. The
// example's host warned at Close, when the plugin's answer to a cancelled
// call crossed the end, one run in a few hundred under load.
func TestLateReturnAfterShutdown(t *testing.T) {
	var logs testutil.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	c := NewConn(a, Options{Logger: logger})
	if c.deliver(99, reply{}) || !strings.Contains(logs.String(), "return for an unknown call") {
		t.Errorf("a return for no call of an open connection: logged %q; want a warning", logs.String())
	}
	before := logs.String()
	c.Shutdown()
	if c.deliver(100, reply{}) || logs.String() != before {
		t.Errorf("a return read as the connection ended: logged %q; want nothing", logs.String())
	}
	c.Close()
}
