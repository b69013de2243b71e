package refbroker

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/refplug/refplug/internal/testutil"
)

// Tests of large frames coming back once the slices shared from them are
// dropped (recycle.go).

type megabytes interface {
	// Fill returns n bytes of v.
	Fill(n int, v byte) ([]byte, error)
	// Keep checks that b is all v, and keeps it if v is 6 more than a
	// multiple of 12.
	Keep(b []byte, v byte) error
}

type megProxy struct{ *Ref }

func (p megProxy) Fill(n int, v byte) ([]byte, error) {
	var b []byte
	err := p.Invoke("Fill", []any{n, v}, &b)
	return b, err
}

func (p megProxy) Keep(b []byte, v byte) error { return p.Invoke("Keep", []any{b, v}) }

func init() { RegisterInterface[megabytes](func(r *Ref) megabytes { return megProxy{r} }) }

type megImpl struct {
	mu   sync.Mutex
	kept map[byte][]byte
}

func (*megImpl) Fill(n int, v byte) ([]byte, error) { return bytes.Repeat([]byte{v}, n), nil }

func (s *megImpl) Keep(b []byte, v byte) error {
	if err := allOf(b, v); err != nil {
		return err
	}
	if v%12 == 6 {
		s.mu.Lock()
		s.kept[v] = b
		s.mu.Unlock()
	}
	return nil
}

// allOf checks that b is a megabyte of v.
func allOf(b []byte, v byte) error {
	if len(b) != 1<<20 {
		return fmt.Errorf("%d bytes, not a megabyte", len(b))
	}
	if i := bytes.IndexByte(b, v^0xff); i >= 0 || !bytes.Equal(b, bytes.Repeat([]byte{v}, len(b))) {
		return fmt.Errorf("not all %d (byte %d is %d)", v, max(i, 0), b[max(i, 0)])
	}
	return nil
}

func reusedFrames() uint64 {
	recycler.mu.Lock()
	defer recycler.mu.Unlock()
	return recycler.reused
}

// TestRecycledFramesStayTheReceivers: megabyte results and arguments,
// some kept by the side that received them, others dropped, with
// collections between: the dropped ones' frames are read into again, and
// what was kept never changes.
func TestRecycledFramesStayTheReceivers(t *testing.T) {
	impl := &megImpl{kept: map[byte][]byte{}}
	client, _ := testPair(t, map[string]any{"megs": impl})
	s, err := Dispense[megabytes](client, "megs")
	if err != nil {
		t.Fatal(err)
	}
	before := reusedFrames()
	kept := map[byte][]byte{}
	arg := make([]byte, 1<<20)
	for i := range 60 {
		v := byte(i)
		b, err := s.Fill(1<<20, v)
		if err != nil {
			t.Fatalf("Fill: %v", err)
		}
		if err := allOf(b, v); err != nil {
			t.Fatalf("Fill(%d) = %v", v, err)
		}
		if i%12 == 0 { // kept well within the recycler's budget
			kept[v] = b
		}
		for j := range arg {
			arg[j] = v
		}
		if err := s.Keep(arg, v); err != nil {
			t.Fatalf("Keep(%d): %v", v, err)
		}
		if i%5 == 4 {
			runtime.GC()
		}
	}
	runtime.GC()
	for v, b := range kept {
		if err := allOf(b, v); err != nil {
			t.Errorf("the result of Fill(%d), kept by the client, changed: %v", v, err)
		}
	}
	impl.mu.Lock()
	defer impl.mu.Unlock()
	for v, b := range impl.kept {
		if err := allOf(b, v); err != nil {
			t.Errorf("the argument of Keep(%d), kept by the server, changed: %v", v, err)
		}
	}
	if len(impl.kept) != 5 {
		t.Errorf("the server kept %d arguments; want 5", len(impl.kept))
	}
	n := reusedFrames() - before
	t.Logf("%d frames read into again", n)
	if n < 40 {
		t.Errorf("%d frames were read into again in 120 megabyte messages; want most of those dropped", n)
	}
}

func (r *frameRecycler) state() (free, held, armed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.free), r.held, r.armed
}

// TestRecyclerBounds: what is armed and kept stays within the budget; an
// armed buffer comes back once dropped, and a free list nobody draws from
// is emptied after collections.
func TestRecyclerBounds(t *testing.T) {
	const mib = 1 << 20
	r := &frameRecycler{budget: 4 * mib}
	var held [][]byte
	for range 6 { // the receiver keeps them all
		b := make([]byte, mib)
		r.arm(b)
		held = append(held, b)
	}
	if _, _, armed := r.state(); armed != 4*mib {
		t.Fatalf("armed %d bytes of 6 MiB kept; want the budget, %d", armed, 4*mib)
	}
	if r.put(make([]byte, mib)) {
		t.Fatal("put kept a buffer over the budget")
	}
	runtime.KeepAlive(held) // dropped from here on
	testutil.Eventually(t, "the armed buffers to come back once dropped", func() bool {
		runtime.GC()
		free, kept, armed := r.state()
		return free == 4 && kept == 4*mib && armed == 0
	})
	if b := r.take(2 * mib); b != nil {
		t.Fatalf("take(2 MiB) returned a buffer of %d", cap(b))
	}
	if b := r.take(mib / 3); b != nil {
		t.Fatalf("take(1/3 MiB) returned a buffer of %d: a shared slice would keep three times its size", cap(b))
	}
	if b := r.take(mib - 100); len(b) != mib-100 || cap(b) != mib {
		t.Fatalf("take(1 MiB - 100) = len %d cap %d", len(b), cap(b))
	}
	testutil.Eventually(t, "a free list nobody draws from to be emptied", func() bool {
		runtime.GC()
		free, kept, _ := r.state()
		return free == 0 && kept == 0
	})
	testutil.Eventually(t, "the recycler to stop following collections", func() bool {
		runtime.GC()
		r.mu.Lock()
		defer r.mu.Unlock()
		return !r.ticking
	})
}
