package refbroker

import (
	"runtime"
	"sync"
	"unsafe"
)

// Large byte slices reach the receiver sharing the frame they arrived in
// (decoder.alias): the frame cannot be reused, since the receiver may
// keep the slice. Read into fresh memory instead, a call with a large
// []byte argument or result costs several times what the socket does,
// mostly in the collections fresh memory brings on a small heap
// (BENCHMARKS.md, "Why fresh memory costs so much"). So such a frame is
// armed: a finalizer puts its buffer back in a free list once nothing
// refers to any of it, the receiver's slice dropped, and the frame reader
// reads the next large frame into it.
//
// Bounds: the buffers armed and those in the free list together hold at
// most recycleBudget bytes, per process; a frame over the budget is left
// to the collector as before. A buffer not taken from the free list
// within two collections of its return is dropped, so an idle process
// gives the memory back, and so does a busy one the buffers of a size it
// no longer reads.
// Nothing the peer sends changes the budget: it bounds what is kept, not
// what is read (the message limit does that).
//
// A buffer is armed only if it begins its allocation and carries no
// finalizer (takeFrame says which: buffers it made, or took from the free
// list). A receiver cannot have set a finalizer of its own on it: what it
// holds begins after the frame's head, not at the allocation's start.

// recycleBudget is the most memory the recycler keeps, in bytes.
const recycleBudget = 16 << 20

type frameRecycler struct {
	mu      sync.Mutex
	free    []freeFrame // buffers back
	held    int         // bytes in free
	armed   int         // bytes of the buffers armed, not back yet
	ticks   uint64      // collections seen (collected)
	ticking bool        // a collection tick is set (tickAfterGC)
	budget  int         // the most held and armed together may be
	reused  uint64      // buffers taken from free so far (for tests)
}

// freeFrame is a buffer in the free list: it begins its allocation and
// carries no finalizer. since is the recycler's ticks when it came back.
type freeFrame struct {
	b     []byte
	since uint64
}

// recycler is the process's: frames are read on every connection.
var recycler = frameRecycler{budget: recycleBudget}

// take returns a buffer from the free list for a frame of n bytes, or nil.
// A buffer more than twice n is left for a larger frame: a slice shared
// from it would keep too much memory alive (decoder.alias).
func (r *frameRecycler) take(n int) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.free) - 1; i >= 0; i-- {
		if b := r.free[i].b; cap(b) >= n && cap(b) <= 2*n {
			last := len(r.free) - 1
			r.free[i], r.free[last] = r.free[last], freeFrame{}
			r.free = r.free[:last]
			r.held -= cap(b)
			r.reused++
			return b[:n]
		}
	}
	return nil
}

// put keeps b, which begins its allocation and carries no finalizer, in
// the free list if the budget allows, and reports whether it did.
func (r *frameRecycler) put(b []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held+r.armed+cap(b) > r.budget {
		return false
	}
	r.keep(b)
	return true
}

func (r *frameRecycler) keep(b []byte) {
	r.free = append(r.free, freeFrame{b[:0], r.ticks})
	r.held += cap(b)
	if !r.ticking {
		r.ticking = true
		r.tickAfterGC()
	}
}

// arm sets frame's buffer, which begins its allocation and carries no
// finalizer, to come back to the free list once nothing refers to it, if
// the budget allows.
func (r *frameRecycler) arm(frame []byte) {
	n := cap(frame)
	r.mu.Lock()
	ok := r.held+r.armed+n <= r.budget
	if ok {
		r.armed += n
	}
	r.mu.Unlock()
	if ok {
		runtime.SetFinalizer(&frame[:1][0], func(p *byte) { r.back(unsafe.Slice(p, n)) })
	}
}

// back takes an armed buffer nothing refers to any more.
func (r *frameRecycler) back(b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.armed -= cap(b)
	r.keep(b)
}

// collected runs after each collection while the recycler holds
// anything: a buffer that came back before the collection before this one
// and has not been taken since is dropped.
func (r *frameRecycler) collected() (again bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ticks++
	kept := r.free[:0]
	for _, f := range r.free {
		if r.ticks-f.since < 2 {
			kept = append(kept, f)
		} else {
			r.held -= cap(f.b)
		}
	}
	clear(r.free[len(kept):])
	r.free = kept
	r.ticking = len(r.free) > 0 || r.armed > 0
	return r.ticking
}

// gcTick is an object whose finalizer marks a collection. It holds a
// pointer so that it is not a tiny allocation, whose finalizer may never
// run.
type gcTick struct {
	_ *gcTick
	_ [8]byte
}

// tickAfterGC has r.collected run after the next collection, and after
// each one after that while it asks to.
func (r *frameRecycler) tickAfterGC() {
	runtime.SetFinalizer(new(gcTick), func(*gcTick) {
		if r.collected() {
			r.tickAfterGC()
		}
	})
}
