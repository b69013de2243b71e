//go:build unix

package refbroker

import (
	"sync"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"
)

// Tests of callers reading their own returns on a side the peer may call
// (callerread.go: quiet, passRoleWith, idleReadServing).

type hub interface {
	Subscribe(cb func(int) int) error
	Plain(n int) (int, error)
	// Fire calls the subscribed callback with n, during the call.
	Fire(n int) (int, error)
	// FireAside calls the callback with n on a goroutine of its own and
	// returns once the hub's started func says the callback runs.
	FireAside(n int) error
}

type hubProxy struct{ *Ref }

func (p hubProxy) Subscribe(cb func(int) int) error { return p.Invoke("Subscribe", []any{cb}) }

func (p hubProxy) Plain(n int) (int, error) {
	var r int
	err := p.Invoke("Plain", []any{n}, &r)
	return r, err
}

func (p hubProxy) Fire(n int) (int, error) {
	var r int
	err := p.Invoke("Fire", []any{n}, &r)
	return r, err
}

func (p hubProxy) FireAside(n int) error { return p.Invoke("FireAside", []any{n}) }

func init() { RegisterInterface[hub](func(r *Ref) hub { return hubProxy{r} }) }

type hubImpl struct {
	mu      sync.Mutex
	cb      func(int) int
	started chan struct{} // FireAside waits for it
	fired   chan int      // FireAside's callback results
}

func (h *hubImpl) Subscribe(cb func(int) int) error {
	h.mu.Lock()
	h.cb = cb
	h.mu.Unlock()
	return nil
}

func (h *hubImpl) callback() func(int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cb
}

func (h *hubImpl) Plain(n int) (int, error) { return n + 1, nil }

func (h *hubImpl) Fire(n int) (int, error) { return h.callback()(n), nil }

func (h *hubImpl) FireAside(n int) error {
	cb := h.callback()
	go func() { h.fired <- cb(n) }()
	<-h.started
	return nil
}

// servingPair is a client that exports a callback its peer holds (so the
// peer may call it at any time) and a hub serving it, over a unix socket
// pair; cb is the client's callback.
func servingPair(t *testing.T, cb func(int) int) (client *Conn, h hub, impl *hubImpl) {
	t.Helper()
	impl = &hubImpl{started: make(chan struct{}), fired: make(chan int, 1)}
	client, _ = serversPair(t, map[string]any{"hub": impl})
	if !client.rd.callers {
		t.Fatal("callers do not read on a side without roots, over a socket pair")
	}
	h, err := Dispense[hub](client, "hub")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Subscribe(cb); err != nil {
		t.Fatal(err)
	}
	if n := client.Stats().Exports; n == 0 {
		t.Fatal("the client exports nothing after Subscribe")
	}
	return client, h, impl
}

// plainUntilFree makes plain calls until the client's reader role is free
// between them.
func plainUntilFree(t *testing.T, client *Conn, h hub) {
	t.Helper()
	testutil.Eventually(t, "the reader role to be left free between plain calls", func() bool {
		if n, err := h.Plain(1); err != nil || n != 2 {
			t.Fatalf("Plain(1) = %d, %v", n, err)
		}
		return roleIs(client, roleFree)()
	})
}

// TestServingSideCallersRead: a side whose callback the peer holds still
// lets its callers read their own returns once its calls come back
// without calls from the peer between them; a callback during a call
// passes the role to a reader goroutine, which keeps it while calls bring
// callbacks, and gives it up again after plain ones.
func TestServingSideCallersRead(t *testing.T) {
	client, h, _ := servingPair(t, func(n int) int { return n * 10 })
	client.rd.Lock()
	client.rd.idleAfter, client.rd.idleServing = time.Minute, time.Minute // free stays free
	client.rd.Unlock()
	plainUntilFree(t, client, h)
	client.rd.Lock()
	passes := client.rd.passes
	client.rd.Unlock()

	if n, err := h.Fire(4); err != nil || n != 40 {
		t.Fatalf("Fire(4) = %d, %v; want 40", n, err)
	}
	client.rd.Lock()
	passed := client.rd.passes - passes
	client.rd.Unlock()
	if passed != 1 {
		t.Fatalf("a callback read by the caller passed the role %d times; want once", passed)
	}
	// Calls with callbacks: the reader goroutine keeps the role.
	for i := range 20 {
		if n, err := h.Fire(i); err != nil || n != i*10 {
			t.Fatalf("Fire(%d) = %d, %v", i, n, err)
		}
		if roleIs(client, roleFree)() {
			t.Fatalf("the role was left free after call %d brought a callback", i)
		}
	}
	plainUntilFree(t, client, h)
}

// TestServingSideAsyncCallback: a callback the peer makes on a goroutine
// of its own never holds up the return of the call that started it (the
// callback here waits until that call has returned, so a caller that
// served it while reading would never return), and a call of the peer's
// arriving while the role is free is read within idleReadServing, not
// idleRead (set to a minute here).
func TestServingSideAsyncCallback(t *testing.T) {
	returned := make(chan struct{})
	started := make(chan struct{}, 1)
	client, h, impl := servingPair(t, func(n int) int {
		if n == 7 {
			started <- struct{}{}
			<-returned
		}
		return n + 100
	})
	impl.started = started
	client.rd.Lock()
	client.rd.idleAfter = time.Minute
	client.rd.Unlock()
	plainUntilFree(t, client, h)

	errc := make(chan error, 1)
	go func() { errc <- h.FireAside(7) }()
	if err := testutil.Receive(t, errc, 10*time.Second, "FireAside did not return while the callback it started waited for that return"); err != nil {
		t.Fatal(err)
	}
	close(returned)
	if got := testutil.Receive(t, impl.fired, 10*time.Second, "the callback's result did not reach the peer"); got != 107 {
		t.Fatalf("the callback returned %d; want 107", got)
	}

	// The peer calls while this side calls nothing and its role is free.
	plainUntilFree(t, client, h)
	cb := impl.callback()
	got := make(chan int, 1)
	go func() { got <- cb(1) }()
	if n := testutil.Receive(t, got, 5*time.Second, "a call of the peer's, made while the role was free, was not read within 5 s"); n != 101 {
		t.Fatalf("the callback returned %d; want 101", n)
	}
}
