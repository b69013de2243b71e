package refbroker

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// The fuzz targets feed peer bytes to every decoding path: the value
// codecs (with references, any and errors) and whole messages through
// dispatch. Neither may panic, hang or allocate beyond the message.

type fuzzValue struct {
	B   bool
	I   int64
	U   uint8
	F   float64
	C   complex64
	S   string
	Bs  []byte
	Arr [2]int16
	M   map[string][]int
	P   *fuzzValue
	Any any
	Err error
	N   named
	Fn  func(int) string
	T   time.Time
	W   []wide // large in memory, small on the wire
}

var (
	fuzzConnOnce sync.Once
	fuzzConn     *Conn
)

// fuzzTarget is a Conn whose peer end discards everything it is sent.
func fuzzTarget() *Conn {
	fuzzConnOnce.Do(func() {
		a, b := net.Pipe()
		go io.Copy(io.Discard, b)
		fuzzConn = NewConn(a, Options{Roots: map[string]any{"m": &factory{}}})
	})
	return fuzzConn
}

func fuzzValueSeeds(t testing.TB) [][]byte {
	c := fuzzTarget()
	codec, err := codecFor(reflect.TypeFor[fuzzValue]())
	if err != nil {
		t.Fatal(err)
	}
	var seeds [][]byte
	for _, v := range []fuzzValue{
		{},
		{B: true, I: -5, U: 7, F: 1.5, C: 2i, S: "s", Bs: []byte("b"), Arr: [2]int16{1, -1},
			M: map[string][]int{"k": {1, 2}}, P: &fuzzValue{S: "inner"}, Any: 42,
			Err: fmt.Errorf("wrapped: %w", io.EOF), N: &thing{label: "n"}, Fn: func(i int) string { return fmt.Sprint(i) }, T: time.Unix(1, 2),
			W: []wide{{}, {A: [32]int64{1, 2, 3}}}},
		{Any: &thing{}, Err: errors.Join(io.EOF, errors.New("x"))},
		// A count of elements far larger in memory than on the wire: a
		// fuzzer that raises it finds a decoder that allocates by the count.
		{W: make([]wide, 200)},
	} {
		e := &encoder{refs: c}
		if err := codec.enc(e, reflect.ValueOf(v)); err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, e.buf)
	}
	return seeds
}

// allocBound is the most a decoder may allocate for a message of n bytes:
// what a slice or map may take before its elements arrive, and a constant
// factor of the bytes. The costliest case is a map's entries (about 40
// bytes and the map's own overhead for 2 on the wire); a []wide claiming
// one element per byte, allocated up front, would take 256 per byte.
func allocBound(n int) uint64 { return 256<<10 + 64*uint64(n) }

var allocMetric = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

func allocated() uint64 {
	metrics.Read(allocMetric)
	return allocMetric[0].Value.Uint64()
}

func FuzzDecodeValue(f *testing.F) {
	for _, s := range fuzzValueSeeds(f) {
		f.Add(s)
	}
	codec, _ := codecFor(reflect.TypeFor[fuzzValue]())
	decode := func(b []byte) uint64 {
		before := allocated()
		d := &decoder{buf: b, refs: fuzzTarget()}
		codec.dec(d, reflect.New(codec.t).Elem())
		_ = decodeError(&decoder{buf: b}, 0)
		return allocated() - before
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if raceEnabled { // the race detector's own allocations would count
			decode(b)
			return
		}
		// The count is the process's: the fuzzing engine's own work can
		// land in it. A decoder's allocations do not change from one run to
		// the next, so the least of three runs is the decoder's.
		got := decode(b)
		for i := 0; i < 2 && got > allocBound(len(b)); i++ {
			got = min(got, decode(b))
		}
		if got > allocBound(len(b)) {
			t.Errorf("decoding %d bytes allocated %d bytes; the bound is %d", len(b), got, allocBound(len(b)))
		}
	})
}

func fuzzMessageSeeds() [][]byte {
	msg := func(build func(e *encoder)) []byte {
		e := &encoder{}
		build(e)
		return e.buf
	}
	return [][]byte{
		msg(func(e *encoder) { // bootstrap "m" as maker
			e.byte1(msgBootstrap)
			e.uvarint(1)
			e.string("m")
			e.string("refbroker.maker")
			e.uvarint(1)
			e.string("Make")
			e.string("func(string) (refbroker.named, error)")
		}),
		msg(func(e *encoder) { // call Make on export 1
			e.byte1(msgCall)
			e.uvarint(2)
			e.uvarint(1)
			e.string("Make")
			e.byte1(ctxNone)
			e.string("label")
		}),
		msg(func(e *encoder) { // call Take with a reference to one of ours
			e.byte1(msgCall)
			e.uvarint(3)
			e.uvarint(1)
			e.string("Take")
			e.byte1(ctxDeadline)
			e.varint(int64(time.Hour))
			e.byte1(refMine)
			e.uvarint(7)
			e.uvarint(0)
		}),
		msg(func(e *encoder) { // type info
			e.byte1(msgTypeInfo)
			e.uvarint(1)
			e.string("refbroker.named")
			e.uvarint(1)
			e.string("Name")
			e.string("func() (string, error)")
		}),
		msg(func(e *encoder) { // layouts: a struct with an array of structs, a map and a pointer
			e.byte1(msgLayouts)
			e.uvarint(1)
			e.string("refbroker.rec")
			e.uvarint(3)
			e.string("Grid")
			e.string("[4]refbroker.rec")
			e.byte1(byte(wArray))
			e.uvarint(4)
			e.byte1(byte(wStruct))
			e.string("refbroker.rec")
			e.string("M")
			e.string("map[string][]int")
			e.byte1(byte(wMap))
			e.byte1(byte(wString))
			e.byte1(byte(wSlice))
			e.byte1(byte(wInt))
			e.string("P")
			e.string("*int")
			e.byte1(byte(wPointer))
			e.byte1(byte(wInt))
		}),
		msg(func(e *encoder) { e.byte1(msgDescribe); e.uvarint(10) }),
		msg(func(e *encoder) { // CallJSON of m.Make("x")
			e.byte1(msgCallJSON)
			e.uvarint(11)
			e.string("m")
			e.string("Make")
			e.uvarint(1)
			e.bytes([]byte(`"x"`))
		}),
		msg(func(e *encoder) { e.byte1(msgCancel); e.uvarint(3); e.byte1(reasonDeadline); e.byte1(errTagNil) }),
		msg(func(e *encoder) { e.byte1(msgRelease); e.uvarint(1); e.uvarint(1); e.uvarint(1) }),
		msg(func(e *encoder) { e.byte1(msgReturn); e.uvarint(9); e.byte1(statusOK) }),
	}
}

func FuzzDispatch(f *testing.F) {
	for _, s := range fuzzMessageSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// An error only means the message was refused. A call is served on
		// a goroutine of its own (it may wait on the peer, which never
		// answers here).
		c := fuzzTarget()
		if in, err := c.dispatch(c.newInbound(b, false, false)); err == nil && in != nil {
			go c.serveCall(in)
		}
	})
}

var writeSeeds = flag.Bool("write-fuzz-seeds", false, "write the fuzz seed corpus to testdata/fuzz")

// TestWriteFuzzSeeds keeps the seed corpus in testdata/fuzz up to date
// when run with -write-fuzz-seeds; otherwise it checks the corpus exists.
func TestWriteFuzzSeeds(t *testing.T) {
	sets := map[string][][]byte{"FuzzDecodeValue": fuzzValueSeeds(t), "FuzzDispatch": fuzzMessageSeeds()}
	for name, seeds := range sets {
		dir := filepath.Join("testdata", "fuzz", name)
		if !*writeSeeds {
			if ents, err := os.ReadDir(dir); err != nil || len(ents) < len(seeds) {
				t.Errorf("seed corpus %s has fewer than %d files (%v); run go test -run TestWriteFuzzSeeds -write-fuzz-seeds", dir, len(seeds), err)
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
