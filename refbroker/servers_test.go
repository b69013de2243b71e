//go:build unix

package refbroker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"
)

// Tests of the goroutines that serve calls aside (servers.go).

// serversPair connects a client and a server serving roots over a unix
// socket pair, which buffers: the server's reader runs ahead of the calls
// it serves, as between processes, and serves calls aside.
func serversPair(t *testing.T, roots map[string]any) (client, server *Conn) {
	t.Helper()
	return serversPairOn(t, roots, func(c net.Conn) io.ReadWriteCloser { return c })
}

// serversPairOn is serversPair with the server's end of the socket pair
// wrapped by wrap.
func serversPairOn(t *testing.T, roots map[string]any, wrap func(net.Conn) io.ReadWriteCloser) (client, server *Conn) {
	t.Helper()
	a, b := socketConns(t, 0)
	server = NewConn(wrap(a), Options{Roots: roots})
	client = NewConn(b, Options{})
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

// TestServersAreReused: calls served aside run on goroutines that have
// served before, not on a new goroutine each (which grew a fresh stack
// for every call).
func TestServersAreReused(t *testing.T) {
	client, server := serversPair(t, map[string]any{"n": &thing{label: "n"}})
	n, err := Dispense[named](client, "n")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for server.srv.aside.Load() < 1000 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d calls were served aside in 20 s of 8 callers at once", server.srv.aside.Load())
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 250 {
					if got, err := n.Name(); err != nil || got != "n" {
						t.Errorf("Name() = %q, %v", got, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
	}
	aside, started := server.srv.aside.Load(), server.srv.started.Load()
	t.Logf("%d calls served aside on %d goroutines", aside, started)
	if started*4 > aside {
		t.Errorf("%d goroutines started for %d calls served aside: servers are not reused", started, aside)
	}
}

// TestIdleServersEnd: at most maxIdleServers wait for calls, and those
// that wait end when the connection does, and otherwise by the timer
// within two periods of idleServe.
func TestIdleServersEnd(t *testing.T) {
	const extra = 6
	// waitAll starts maxIdleServers+extra goroutines waiting as servers,
	// and counts those that end.
	waitAll := func(server *Conn) *atomic.Int32 {
		var ended atomic.Int32
		for range maxIdleServers + extra {
			go func() {
				if in := server.nextCall(); in != nil {
					t.Errorf("a waiting server was handed a call nobody made: %+v", in)
				}
				ended.Add(1)
			}()
		}
		return &ended
	}
	idle := func(server *Conn) int {
		server.srv.mu.Lock()
		defer server.srv.mu.Unlock()
		return server.srv.idle
	}

	t.Run("bound and close", func(t *testing.T) {
		client, server := serversPair(t, nil)
		server.srv.mu.Lock()
		server.srv.period = time.Minute // only the limit and Close end them here
		server.srv.mu.Unlock()
		ended := waitAll(server)
		testutil.Eventually(t, "the servers beyond the limit to end at once, the others to wait", func() bool {
			return ended.Load() == extra && idle(server) == maxIdleServers
		})
		client.Close()
		server.Close()
		testutil.Eventually(t, "the waiting servers to end with the connection", func() bool {
			return ended.Load() == maxIdleServers+extra && idle(server) == 0
		})
	})

	t.Run("timer", func(t *testing.T) {
		_, server := serversPair(t, nil)
		start := time.Now()
		ended := waitAll(server)
		testutil.Eventually(t, "the waiting servers to end by the timer", func() bool {
			return ended.Load() == maxIdleServers+extra && idle(server) == 0
		})
		// Two periods, and a margin for a loaded machine: without the
		// timer they would wait until the connection ends.
		if d := time.Since(start); d > 2*idleServe+time.Second {
			t.Errorf("the waiting servers took %v to end", d)
		}
	})
}

// gathering answers Name only once want calls of it run at once.
type gathering struct {
	want int
	mu   sync.Mutex
	n    int
	all  chan struct{}
}

func (g *gathering) Name() (string, error) {
	g.mu.Lock()
	if g.n++; g.n == g.want {
		close(g.all)
	}
	g.mu.Unlock()
	select {
	case <-g.all:
		return "all", nil
	case <-time.After(20 * time.Second):
		return "", errors.New("the calls did not all run at once")
	}
}

// TestNoCallWaitsBehindAnother: a call served aside never waits for a
// server to be free: more calls than maxIdleServers, each running until
// all run at once, all return; twice, the second time with the servers
// of the first waiting.
func TestNoCallWaitsBehindAnother(t *testing.T) {
	const calls = maxIdleServers + 36
	client, server := serversPair(t, map[string]any{
		"first":  &gathering{want: calls, all: make(chan struct{})},
		"second": &gathering{want: calls, all: make(chan struct{})},
	})
	for round, name := range []string{"first", "second"} {
		n, err := Dispense[named](client, name)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range calls {
			wg.Go(func() {
				if got, err := n.Name(); err != nil || got != "all" {
					t.Errorf("round %d: Name() = %q, %v", round, got, err)
				}
			})
		}
		wg.Wait()
		t.Logf("round %d: %d calls served aside so far, on %d goroutines", round, server.srv.aside.Load(), server.srv.started.Load())
	}
}

type applier interface {
	Apply(fn func(int) (int, error), n int) (int, error)
}

type applierProxy struct{ *Ref }

func (p applierProxy) Apply(fn func(int) (int, error), n int) (int, error) {
	var r int
	err := p.Invoke("Apply", []any{fn, n}, &r)
	return r, err
}

func init() {
	RegisterInterface[applier](func(r *Ref) applier { return applierProxy{r} })
}

type applyImpl struct{}

func (applyImpl) Apply(fn func(int) (int, error), n int) (int, error) { return fn(n) }

// noDeadlines hides a stream's read deadlines: its callers cannot read
// (callerread.go).
type noDeadlines struct{ io.ReadWriteCloser }

// TestReadingGoesToAWaitingServer: when a method served inline calls
// back on a stream whose callers cannot read (no read deadlines), the
// reading passes to a server that waits rather than to a new goroutine,
// and the goroutine that served inline waits in turn.
func TestReadingGoesToAWaitingServer(t *testing.T) {
	client, server := serversPairOn(t, map[string]any{"a": applyImpl{}}, func(c net.Conn) io.ReadWriteCloser { return noDeadlines{c} })
	server.srv.mu.Lock()
	server.srv.period = time.Minute // waiting servers stay for the test
	server.srv.mu.Unlock()
	a, err := Dispense[applier](client, "a")
	if err != nil {
		t.Fatal(err)
	}
	double := func(n int) (int, error) { return 2 * n, nil }
	idle := func() int {
		server.srv.mu.Lock()
		defer server.srv.mu.Unlock()
		return server.srv.idle
	}
	const calls = 20
	var before int64
	for i := range calls {
		if i == 1 {
			before = server.srv.started.Load()
		}
		if got, err := a.Apply(double, i); err != nil || got != 2*i {
			t.Fatalf("Apply(double, %d) = %d, %v", i, got, err)
		}
		// The method's goroutine, having lost the reading to its
		// callback's return, waits as a server once it has replied (with
		// any goroutine started at a hand-off below: waiting servers stay
		// for the test, so more than one may wait).
		testutil.Eventually(t, "the goroutine that served inline to wait as a server", func() bool { return idle() >= 1 })
	}
	// After the first call a server waits at every hand-off; it may not be
	// parked yet for the hand-off that follows at once (counted as waiting
	// a moment before it parks), so a few new goroutines are allowed, not
	// one a call.
	if started := server.srv.started.Load() - before; started > 4 {
		t.Errorf("%d goroutines started for the reading in %d calls, though a server waited each time", started, calls-1)
	}
}

// TestInlineCallBorrowsTheReading: a method served inline that calls
// back reads its callback's return itself (it borrows the reader role)
// and gives the reading back: no goroutine is started or handed the
// reading for it, and none is left waiting as a server.
func TestInlineCallBorrowsTheReading(t *testing.T) {
	client, server := serversPair(t, map[string]any{"a": applyImpl{}})
	a, err := Dispense[applier](client, "a")
	if err != nil {
		t.Fatal(err)
	}
	double := func(n int) (int, error) { return 2 * n, nil }
	lends := func() uint64 {
		server.rd.Lock()
		defer server.rd.Unlock()
		return server.rd.lends
	}
	if got, err := a.Apply(double, 1); err != nil || got != 2 {
		t.Fatalf("Apply(double, 1) = %d, %v", got, err)
	}
	started, lent := server.srv.started.Load(), lends()
	const calls = 20
	for i := range calls {
		if got, err := a.Apply(double, i); err != nil || got != 2*i {
			t.Fatalf("Apply(double, %d) = %d, %v", i, got, err)
		}
	}
	// The watchdog may pass the role on once if a call ran across two of
	// its ticks without calling back (a slow moment on a loaded machine);
	// that call's callback then has its return read by the new reader,
	// not by borrowing.
	passed := server.srv.started.Load() - started
	if passed > 1 {
		t.Errorf("%d goroutines started for %d calls that called back; want none", passed, calls)
	}
	if n := lends() - lent; n+uint64(passed) < calls {
		t.Errorf("the method borrowed the reading %d times in %d calls that called back (the reading passed on %d times); want each", n, calls, passed)
	}
}

// gatedApplier's Apply calls fn once, and then again and again for n
// milliseconds (across n of the watchdog's ticks), then closes blocked and
// waits until gate is closed.
type gatedApplier struct{ blocked, gate chan struct{} }

func (g gatedApplier) Apply(fn func(int) (int, error), n int) (int, error) {
	start := time.Now()
	r, err := fn(0)
	for i := 1; err == nil && time.Since(start) < time.Duration(n)*time.Millisecond; i++ {
		r, err = fn(i)
	}
	close(g.blocked)
	<-g.gate
	return r, err
}

// openingApplier's Apply closes gate.
type openingApplier struct{ gate chan struct{} }

func (o openingApplier) Apply(_ func(int) (int, error), n int) (int, error) {
	close(o.gate)
	return n, nil
}

// gatedMethod serves "wait" (gatedApplier) and "open" (openingApplier)
// on one gate, and calls wait.Apply(callback, ms) on a goroutine of its
// own. Once the method has blocked behind its gate (having had its last
// return, and given the reading back), it calls open and checks that both
// calls return: that the call that opens the gate is read at all.
func gatedMethod(t *testing.T, callback func(int) (int, error), ms int) (server *Conn, run func()) {
	t.Helper()
	blocked, gate := make(chan struct{}), make(chan struct{})
	client, server := serversPair(t, map[string]any{"wait": gatedApplier{blocked, gate}, "open": openingApplier{gate}})
	wait, err := Dispense[applier](client, "wait")
	if err != nil {
		t.Fatal(err)
	}
	open, err := Dispense[applier](client, "open")
	if err != nil {
		t.Fatal(err)
	}
	return server, func() {
		done := make(chan error, 1)
		go func() { _, err := wait.Apply(callback, ms); done <- err }()
		testutil.Receive(t, blocked, 10*time.Second, "the method to call back and block")
		opened := make(chan error, 1)
		go func() { _, err := open.Apply(nil, 2); opened <- err }()
		if err := testutil.Receive(t, opened, 10*time.Second, "the call that opens the gate is still unread"); err != nil {
			t.Fatalf("the call that opens the gate: %v", err)
		}
		if err := testutil.Receive(t, done, 10*time.Second, "the method behind the gate to return"); err != nil {
			t.Errorf("the method behind the gate: %v", err)
		}
	}
}

// TestBorrowedThenBlocked: a method served inline that calls back (and
// so borrowed the reading), once, or for many of the watchdog's ticks, or
// once but for a callback that takes several ticks, and then blocks until
// another call opens its gate does not keep that call from being read:
// the watchdog passes the reading on once the method has stopped calling
// out.
func TestBorrowedThenBlocked(t *testing.T) {
	for _, c := range []struct {
		ms   int           // how long the method calls back
		slow time.Duration // how long each callback takes
	}{{0, 0}, {20, 0}, {0, 10 * time.Millisecond}} {
		t.Run(fmt.Sprintf("calling back for %d ms, each callback %v", c.ms, c.slow), func(t *testing.T) {
			_, run := gatedMethod(t, func(n int) (int, error) {
				time.Sleep(c.slow) // the callback's own work, across the watchdog's ticks
				return n, nil
			}, c.ms)
			run()
		})
	}
}

// TestWatchdogRestsWhileBorrowed: while a method served inline waits for
// a callback (having borrowed the reading), the watchdog stops ticking
// (someone reads); when the method has its return and then blocks, the
// watchdog runs again and passes the reading on, so the call that opens
// the method's gate is read.
func TestWatchdogRestsWhileBorrowed(t *testing.T) {
	var server *Conn
	watching := func() bool {
		server.rd.Lock()
		defer server.rd.Unlock()
		return server.rd.watching
	}
	server, run := gatedMethod(t, func(n int) (int, error) {
		testutil.Eventually(t, "the server's watchdog to stop while its method waits for this callback", func() bool { return !watching() })
		return n, nil
	}, 0)
	run()
}
