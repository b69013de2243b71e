//go:build unix

package refbroker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"
)

// Tests of callers spinning for their returns (spinread.go), over a real
// socket pair: net.Pipe has no descriptor to spin on.

func unixPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "pair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		t.Cleanup(func() { c.Close() })
	}
	return conns[0], conns[1]
}

// spinning reports whether this machine lets reads spin at all.
func spinning() bool { return runtime.NumCPU() > 1 && runtime.GOMAXPROCS(0) > 1 }

// armAlone arms s as a caller whose call has been alone long enough.
func armAlone(s *spinReader) {
	for range aloneCalls {
		s.arm(true)
	}
	s.arm(true)
}

// spinConns connects a server and a client over a socket pair, closed at
// the test's end.
func spinConns(t *testing.T, server, client Options) (s, c *Conn) {
	t.Helper()
	a, b := unixPair(t)
	s, c = NewConn(a, server), NewConn(b, client)
	t.Cleanup(func() {
		c.Close()
		s.Close()
	})
	return s, c
}

// getInARow makes n calls of g.Get one after another, checking each.
func getInARow(t *testing.T, g getter, n int) {
	t.Helper()
	for i := range n {
		got, err := g.Get(context.Background(), 10, i)
		if want, _ := (streams{}).Chunk(10, i); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Get %d: %v (equal %v)", i, err, bytes.Equal(got, want))
		}
	}
}

// aloneCount is c's spinner's count of reads in a row that may spin.
func aloneCount(c *Conn) int { return int(c.rd.spinner.alone.Load()) }

// TestSpinReaderArming: a read spins only once its call has been the only
// one waiting for aloneCalls reads in a row, and another call waiting
// starts the count again.
func TestSpinReaderArming(t *testing.T) {
	a, _ := unixPair(t)
	s := newSpinReader(a, true)
	if s.rc == nil {
		t.Fatal("no descriptor to spin on for a unix socket")
	}
	for i := range aloneCalls {
		if s.arm(true); s.spin.Load() {
			t.Fatalf("armed to spin after %d reads alone; want %d first", i+1, aloneCalls)
		}
	}
	s.arm(true)
	if s.spin.Load() != spinning() {
		t.Fatalf("after %d reads alone: spin %v, want %v (GOMAXPROCS %d, %d CPUs)", aloneCalls, s.spin.Load(), spinning(), runtime.GOMAXPROCS(0), runtime.NumCPU())
	}
	s.disarm()
	s.arm(false)
	if s.spin.Load() || s.alone.Load() != 0 {
		t.Fatalf("another call waiting: spin %v, reads alone %d; want no spin and the count restarted", s.spin.Load(), s.alone.Load())
	}
}

// wrappedConn embeds a socket, and so has its SyscallConn, but does more
// in its Read than the descriptor's read.
type wrappedConn struct {
	*net.UnixConn
	reads int
}

func (w *wrappedConn) Read(p []byte) (int, error) { w.reads++; return w.UnixConn.Read(p) }

// TestSpinReaderOnlyPlainSockets: a stream that is not a plain socket is
// never read by descriptor, even if it has a SyscallConn method: its own
// Read is what reads it.
func TestSpinReaderOnlyPlainSockets(t *testing.T) {
	a, b := unixPair(t)
	w := &wrappedConn{UnixConn: a.(*net.UnixConn)}
	s := newSpinReader(w, true)
	if s.rc != nil {
		t.Fatal("a wrapper with a SyscallConn method would be read by descriptor, past its Read")
	}
	armAlone(s)
	b.Write([]byte("x"))
	if n, err := s.Read(make([]byte, 4)); n != 1 || err != nil || w.reads != 1 {
		t.Fatalf("read %d, %v through the wrapper's Read %d times; want 1, nil, once", n, err, w.reads)
	}
}

// TestSpinReaderReads: a spinning read returns what was written, whether
// it was there before the read or came while it spun or waited; the
// peer's hang-up reads as io.EOF.
func TestSpinReaderReads(t *testing.T) {
	a, b := unixPair(t)
	s := newSpinReader(a, true)
	buf := make([]byte, 64)
	for i, msg := range []string{"before the read", "while it spins or waits"} {
		armAlone(s)
		if i == 0 {
			b.Write([]byte(msg))
		} else {
			go b.Write([]byte(msg))
		}
		n, err := io.ReadAtLeast(s, buf, len(msg))
		if err != nil || string(buf[:n]) != msg {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, msg)
		}
		s.disarm()
	}
	armAlone(s)
	b.Close()
	if n, err := s.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("after the peer hung up: %d, %v; want 0, io.EOF", n, err)
	}
}

// TestSpinReaderDeadline: a read deadline (how a caller whose context
// ends is interrupted) ends a spinning read with a timeout, and a spin that
// caught nothing counts as a miss; after missLimit misses reads stop
// spinning but for every retryEvery-th, and data caught by a spin starts
// over.
func TestSpinReaderDeadline(t *testing.T) {
	if !spinning() {
		t.Skip("reads never spin with one CPU or GOMAXPROCS=1 (TestSpinReaderArming checks that)")
	}
	a, b := unixPair(t)
	s := newSpinReader(a, true)
	buf := make([]byte, 8)
	armAlone(s)
	for i := range missLimit {
		s.arm(true)
		a.SetReadDeadline(time.Now().Add(time.Millisecond))
		start := time.Now()
		_, err := s.Read(buf)
		if !isTimeout(err) || time.Since(start) > 5*time.Second {
			t.Fatalf("read past its deadline: %v after %v; want a timeout, at once", err, time.Since(start))
		}
		if s.misses != i+1 {
			t.Fatalf("%d spins without data: misses %d", i+1, s.misses)
		}
	}
	a.SetReadDeadline(time.Time{})
	spins := 0
	for range retryEvery {
		if s.arm(true); s.spin.Load() {
			spins++
		}
		s.disarm()
	}
	if spins != 1 {
		t.Fatalf("after %d misses, %d of %d reads were armed to spin; want 1", missLimit, spins, retryEvery)
	}
	// Data waiting when a spin starts is caught at once, unless this
	// goroutine is held up past the spin (spinRead; a loaded machine), which
	// counts as a miss: a few tries, each on the next read armed to spin.
	for try := 0; ; try++ {
		for s.arm(true); !s.spin.Load(); s.arm(true) {
		}
		b.Write([]byte("x"))
		if n, err := s.Read(buf); n != 1 || err != nil {
			t.Fatalf("read %d, %v", n, err)
		}
		if s.misses == 0 {
			break
		}
		if try == 9 {
			t.Fatalf("a spin that caught data left misses at %d, ten times; want 0", s.misses)
		}
	}
}

// TestSpinningCallers: callers on a side that serves nothing, over a
// socket pair, read their returns spinning: calls in a row and at once
// get their own results, and a call whose context ends while its caller
// spins or waits returns at once with the context's error, leaving the
// connection working.
func TestSpinningCallers(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	_, client := spinConns(t, Options{Roots: map[string]any{"g": getterImpl{release}, "h": holdImpl{release}}}, Options{})
	g, err := Dispense[getter](client, "g")
	if err != nil {
		t.Fatal(err)
	}
	check := func(n, seed int) {
		got, err := g.Get(context.Background(), n, seed)
		want, _ := streams{}.Chunk(n, seed)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Get(%d, %d): %v (equal %v)", n, seed, err, bytes.Equal(got, want))
		}
	}
	for i := range 3 * aloneCalls { // long enough alone to spin
		check(10+i, i)
	}
	if alone := aloneCount(client); alone != aloneCalls {
		t.Fatalf("after %d calls in a row, the callers' reads counted %d alone; want %d (do callers read their returns?)", 3*aloneCalls, alone, aloneCalls)
	}
	check(3<<20, 7) // a return of many reads
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 50 {
				check(100+i, w*1000+i)
			}
		}()
	}
	for range 4 {
		<-done
	}
	for i := range 3 * aloneCalls {
		check(10+i, i)
	}
	h, err := Dispense[getter](client, "h")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := h.Block(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("Block, which ignores its context, with a 20 ms deadline: %v after %v; want the deadline, at once", err, time.Since(start))
	}
	check(10, 1)
}

// holdImpl's Block ignores its context: it returns only when released, so
// a caller whose context ends must return on its own.
type holdImpl struct{ release chan struct{} }

func (holdImpl) Get(_ context.Context, n, seed int) ([]byte, error) { return streams{}.Chunk(n, seed) }

func (h holdImpl) Block(context.Context) error {
	<-h.release
	return nil
}

// TestServerSpinsAfterInlineCalls: the serving side, after calls it
// served inline one after another, reads the next one spinning; with
// Options.NoSpin neither side ever does.
func TestServerSpinsAfterInlineCalls(t *testing.T) {
	for _, noSpin := range []bool{false, true} {
		server, client := spinConns(t, Options{Roots: map[string]any{"g": getterImpl{}}, NoSpin: noSpin}, Options{NoSpin: noSpin})
		g, err := Dispense[getter](client, "g")
		if err != nil {
			t.Fatal(err)
		}
		getInARow(t, g, 3*aloneCalls)
		for side, c := range map[string]*Conn{"server": server, "client": client} {
			able, alone := c.rd.spinner.able(), aloneCount(c)
			switch {
			case noSpin && (able || alone != 0):
				t.Errorf("NoSpin: the %s reads by descriptor (%v) and counted %d reads to spin", side, able, alone)
			case !noSpin && alone != aloneCalls:
				t.Errorf("after %d calls one at a time, the %s counted %d reads that may spin; want %d", 3*aloneCalls, side, alone, aloneCalls)
			}
		}
	}
}

// repeater calls back: Repeat calls f n times and sums what it returns.
type repeater interface {
	Repeat(f func(int) int, n int) (int, error)
}

type repeaterProxy struct{ *Ref }

func (p repeaterProxy) Repeat(f func(int) int, n int) (int, error) {
	var sum int
	err := p.Invoke("Repeat", []any{f, n}, &sum)
	return sum, err
}

func init() { RegisterInterface[repeater](func(r *Ref) repeater { return repeaterProxy{r} }) }

type repeatImpl struct{}

func (repeatImpl) Repeat(f func(int) int, n int) (int, error) {
	sum := 0
	for i := range n {
		sum += f(i)
	}
	return sum, nil
}

// TestReaderSpinsWhileACallWaits: a side whose reader goroutine reads
// (it serves something, so its callers do not read) reads spinning while
// exactly one call of its own waits: the callbacks of that call, and its
// return, are due.
func TestReaderSpinsWhileACallWaits(t *testing.T) {
	_, client := spinConns(t, Options{Roots: map[string]any{"r": repeatImpl{}}}, Options{Roots: map[string]any{"g": getterImpl{}}}) // the client serves something
	if client.rd.callers {
		t.Fatal("a side with roots has its callers read their returns")
	}
	r, err := Dispense[repeater](client, "r")
	if err != nil {
		t.Fatal(err)
	}
	n := 3 * aloneCalls
	sum, err := r.Repeat(func(i int) int { return 2 * i }, n)
	if want := n * (n - 1); err != nil || sum != want {
		t.Fatalf("Repeat: %d, %v; want %d", sum, err, want)
	}
	if alone := aloneCount(client); alone != aloneCalls {
		t.Fatalf("after %d callbacks of one waiting call, the reader counted %d reads that may spin; want %d", n, alone, aloneCalls)
	}
}

// TestReaderWokenToSpin: on a side whose reader goroutine reads (it serves
// something), a call made while the reader sleeps in a read it began with
// nothing due wakes it (a read deadline in the past): the reader goes
// round, counts the call's return as due, and reads spinning, though the
// return has not come (the method blocks until released). Calls in a row
// get their own results.
func TestReaderWokenToSpin(t *testing.T) {
	release := make(chan struct{})
	_, client := spinConns(t, Options{Roots: map[string]any{"g": getterImpl{}, "h": holdImpl{release}}}, Options{Roots: map[string]any{"r": repeatImpl{}}}) // the client serves something
	g, err := Dispense[getter](client, "g")
	if err != nil {
		t.Fatal(err)
	}
	h, err := Dispense[getter](client, "h")
	if err != nil {
		t.Fatal(err)
	}
	getInARow(t, g, 3*aloneCalls)
	testutil.Eventually(t, "the reader to sleep in a read with nothing due", func() bool {
		return client.rd.spinner.deciding.Load() && client.Stats().Pending == 0
	})
	before := aloneCount(client)
	if before == aloneCalls { // the count stops there: start it again
		client.rd.spinner.alone.Store(0)
		before = 0
	}
	done := make(chan error, 1)
	go func() { done <- h.Block(context.Background()) }()
	testutil.Eventually(t, "the reader, woken, to count the blocked call's return as due", func() bool {
		return aloneCount(client) > before
	})
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Block: %v", err)
	}
}
