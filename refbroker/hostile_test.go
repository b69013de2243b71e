package refbroker

import (
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"
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
