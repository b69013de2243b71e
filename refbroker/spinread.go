package refbroker

import (
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// Reads that spin.
//
// A read that finds nothing parks its goroutine in the runtime's poller,
// and its thread falls asleep; waking it when the data comes is, on a small
// machine, a large part of a short call's time (BENCHMARKS.md). So where
// the next frame is expected soon the read first tries again for up to
// spinRead, staying awake, and only then waits in the poller:
//
//   - a caller reading its own return (callerread.go), when its call is
//     the only one waiting;
//   - the reader goroutine (reader.go, armLoop) when exactly one call of
//     this side waits (its callbacks and its return are due), or after
//     serving a call inline when none waits (the peer's next call is often
//     on its way).
//
// It spins only where that pays and costs little:
//
//   - the condition above held for the last aloneCalls reads that had
//     one (with several calls at once the spinning thread would take a
//     processor the others need);
//   - the last spins caught their data (after missLimit misses in a row,
//     frames come further apart than spinRead, and it spins again only on
//     every retryEvery-th read, to notice when they come close again);
//   - the process may run on more than one processor;
//   - the stream is a plain socket, read by its descriptor (newSpinReader);
//   - Options.NoSpin is not set.
type spinReader struct {
	r    io.Reader
	rc   syscall.RawConn // nil if the stream has no descriptor to spin on
	spin atomic.Bool     // the next Read may spin (set by the reading caller)
	// deciding: the reader goroutine is deciding whether its next read
	// spins, or reading; set before it counts the waiting calls
	// (wakeReaderToSpin).
	deciding atomic.Bool
	// Bookkeeping of the reads: only the reader role's holder touches it.
	alone  atomic.Int32 // reads in a row for which arm's condition held (atomic for tests)
	misses int          // spins in a row that ended without data
	reads  int          // reads since misses reached missLimit
	// The spinning read in progress (readFD), and readFD as a func made
	// once: a closure per read would cost allocations per call.
	read struct {
		p      []byte
		n      int
		err    error
		start  time.Time
		caught bool
	}
	readFn func(fd uintptr) bool
}

// spinRead is how long a read spins: well over a plain call's round trip
// on a loaded machine whose two sides both spin (about 30 µs there, 10 on
// a quiet one). With 50 µs, one late message made a spin miss; after
// missLimit misses both sides slept between messages, each message then
// woke the other side's thread, the round trip grew to 60–100 µs, and the
// retries (every retryEvery-th read) missed too: a stable slow way. With
// 100 µs a late message is still caught, and a retry from the slow way
// catches its return and brings both sides back (BENCHMARKS.md, "A longer
// spin"). A spin that catches nothing costs its CPU at most missLimit
// times in a row.
const (
	spinRead   = 100 * time.Microsecond
	aloneCalls = 16
	missLimit  = 4
	retryEvery = 32
)

// newSpinReader wraps the stream. Only a plain socket (*net.UnixConn or
// *net.TCPConn) is read by descriptor: a type that merely has a
// SyscallConn method, such as a wrapper embedding one, may do more in its
// Read than the descriptor's read, and is always read through its Read.
func newSpinReader(r io.Reader, spin bool) *spinReader {
	s := &spinReader{r: r}
	if !spin {
		return s
	}
	var sc syscall.Conn
	switch c := r.(type) {
	case *net.UnixConn:
		sc = c
	case *net.TCPConn:
		sc = c
	}
	if sc != nil && canSpin && runtime.NumCPU() > 1 {
		if rc, err := sc.SyscallConn(); err == nil {
			s.rc, s.readFn = rc, s.readFD
		}
	}
	return s
}

// able reports whether reads can spin at all on this stream (if not, arm
// does nothing, and its callers need not work out its condition).
func (s *spinReader) able() bool { return s.rc != nil }

// arm decides whether the next read may spin: ok is whether the reader's
// condition for it holds (see above).
func (s *spinReader) arm(ok bool) {
	if s.rc == nil {
		return
	}
	if !ok {
		s.alone.Store(0)
		return
	}
	if n := s.alone.Load(); n < aloneCalls {
		s.alone.Store(n + 1)
		return
	}
	if s.misses >= missLimit {
		if s.reads++; s.reads%retryEvery != 0 {
			return
		}
	}
	if runtime.GOMAXPROCS(0) > 1 {
		s.spin.Store(true)
	}
}

// disarm ends what arm allowed.
func (s *spinReader) disarm() { s.spin.Store(false) }

// Read reads from the stream: plainly, or, once after arm allowed it,
// spinning first.
func (s *spinReader) Read(p []byte) (int, error) {
	if !s.spin.Load() || len(p) == 0 {
		return s.r.Read(p)
	}
	s.spin.Store(false) // one spin per arm: the frame's rest is read plainly
	r := &s.read
	r.p, r.n, r.err, r.start, r.caught = p, 0, nil, time.Now(), false
	werr := s.rc.Read(s.readFn)
	n, err, caught := max(r.n, 0), r.err, r.caught
	r.p = nil
	if caught {
		s.misses, s.reads = 0, 0
	} else if s.misses < missLimit {
		s.misses++
	}
	switch {
	case werr != nil: // a deadline (an interrupted caller) or a closed stream
		return 0, werr
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// wakeReaderToSpin is called by a caller that has sent its call and waits
// for the reader goroutine to read its return. If that call is the only
// one waiting and the reader sleeps in a read it decided on before the
// call was made (nothing was due then), a read deadline in the past wakes
// it: the reader goes round again (readLoop's readTimeout), finds a return
// due and spins for it (armLoop). The reader goroutine is readied by this
// goroutine, which is about to park, so it runs on this thread: no other
// thread is woken.
//
// The reader sets deciding before it counts the waiting calls, and this
// caller reads it after its call is counted: so either the reader counts
// the call, or this caller sees deciding and wakes it (a wake it did not
// need costs one more turn of the loop).
func (c *Conn) wakeReaderToSpin() {
	sp := c.rd.spinner
	if !sp.able() || !sp.deciding.Load() || c.waitingCalls() != 1 {
		return
	}
	c.rd.Lock()
	if c.rd.holder == roleLoop && c.rd.inline.Load() == 0 && !c.rd.stopped {
		c.setReadDeadline(time.Unix(1, 0))
	}
	c.rd.Unlock()
}
