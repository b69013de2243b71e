//go:build unix

package refbroker

import (
	"errors"
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
	a, b := socketConns(t, 0)
	server = NewConn(a, Options{Roots: roots})
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

// TestReadingGoesToAWaitingServer: when a method served inline calls
// back, the reading passes to a server that waits rather than to a new
// goroutine, and the goroutine that served inline waits in turn.
func TestReadingGoesToAWaitingServer(t *testing.T) {
	client, server := serversPair(t, map[string]any{"a": applyImpl{}})
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
		// callback's return, waits as a server once it has replied.
		testutil.Eventually(t, "the goroutine that served inline to wait as a server", func() bool { return idle() == 1 })
	}
	// After the first call a server waits at every hand-off; it may not be
	// parked yet for the hand-off that follows at once (counted as waiting
	// a moment before it parks), so a few new goroutines are allowed, not
	// one a call.
	if started := server.srv.started.Load() - before; started > 4 {
		t.Errorf("%d goroutines started for the reading in %d calls, though a server waited each time", started, calls-1)
	}
}
