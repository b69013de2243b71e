package refbroker_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"
	"github.com/refplug/refplug/refbroker"
)

// Staller is a contract whose methods without a context can be made to
// hang, as a buggy plugin's would.
type Staller interface {
	Stall() error
	StallCount() int
	Deadline(ctx context.Context) (bool, error)
	Release() error
}

type stallerProxy struct{ *refbroker.Ref }

func (p stallerProxy) Stall() error { return p.Invoke("Stall", nil) }
func (p stallerProxy) StallCount() int {
	var n int
	p.Invoke("StallCount", nil, &n)
	return n
}
func (p stallerProxy) Deadline(ctx context.Context) (bool, error) {
	var ok bool
	err := p.Invoke("Deadline", []any{ctx}, &ok)
	return ok, err
}
func (p stallerProxy) Release() error { return p.Invoke("Release", nil) }

func init() {
	refbroker.RegisterInterface[Staller](func(r *refbroker.Ref) Staller { return stallerProxy{r} })
}

// staller's Stall and StallCount wait until Release is called.
type staller struct{ release chan struct{} }

func (s staller) Stall() error    { <-s.release; return nil }
func (s staller) StallCount() int { <-s.release; return 1 }
func (s staller) Release() error  { close(s.release); return nil }
func (staller) Deadline(ctx context.Context) (bool, error) {
	_, ok := ctx.Deadline()
	return ok, nil
}

// TestCallTimeout: with Options.CallTimeout, a call the caller cannot
// bound (its method takes no context) returns at the timeout with an error
// that wraps context.DeadlineExceeded and names the method and the
// timeout, whatever its results; a method that takes a context is bounded
// by that context alone (its callee sees no deadline); and the connection
// goes on: the late return is taken in, and later calls work.
func TestCallTimeout(t *testing.T) {
	s := staller{release: make(chan struct{})}
	logger := testutil.Logger(t, "test")
	client, _ := refbroker.NewPair(t,
		refbroker.Options{Logger: logger.Named("server"), Roots: map[string]any{"staller": s}},
		refbroker.Options{Logger: logger.Named("client"), CallTimeout: 100 * time.Millisecond})
	st, err := refbroker.Dispense[Staller](client, "staller")
	if err != nil {
		t.Fatal(err)
	}

	errc := make(chan error, 1)
	go func() { errc <- st.Stall() }()
	err = testutil.Receive(t, errc, 10*time.Second, "a call still waits 10 s after its 100 ms call timeout")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "Staller.Stall") || !strings.Contains(err.Error(), "call timeout of 100ms") {
		t.Errorf("Stall past the call timeout = %v; want context.DeadlineExceeded, naming the method and the timeout", err)
	}
	counts := make(chan int, 1)
	go func() { counts <- st.StallCount() }()
	if n := testutil.Receive(t, counts, 10*time.Second, "a call without an error result still waits 10 s after its call timeout"); n != 0 {
		t.Errorf("StallCount past the call timeout = %d; want the zero value", n)
	}

	if ok, err := st.Deadline(context.Background()); err != nil || ok {
		t.Errorf("Deadline(ctx without one) = %v, %v; want false: the call timeout is not the callee's deadline", ok, err)
	}
	if err := st.Release(); err != nil {
		t.Fatalf("Release after two calls timed out: %v", err)
	}
	testutil.Eventually(t, "the late returns to be taken in", func() bool { return client.Stats().Pending == 0 })
	if err := st.Stall(); err != nil {
		t.Errorf("Stall once released = %v", err)
	}
}

// TestCallTimeoutDispense: Dispense, Describe and CallJSON, which take no
// context, are bounded by the call timeout too.
func TestCallTimeoutDispense(t *testing.T) {
	a, b := net.Pipe()
	c := refbroker.NewConn(a, refbroker.Options{Logger: testutil.Logger(t, "conn"), CallTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { b.Close(); c.Close() })
	go bufio.NewReader(b).WriteTo(discard{}) // reads every request, answers none

	for what, do := range map[string]func() error{
		`Dispense("staller")`: func() error { _, err := refbroker.Dispense[Staller](c, "staller"); return err },
		"Describe":            func() error { _, err := c.Describe(); return err },
		"CallJSON of staller.Stall": func() error {
			_, err := c.CallJSON("staller", "Stall")
			return err
		},
	} {
		errc := make(chan error, 1)
		go func() { errc <- do() }()
		err := testutil.Receive(t, errc, 10*time.Second, what+" still waits 10 s after its 100 ms call timeout")
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), what) || !strings.Contains(err.Error(), "call timeout") {
			t.Errorf("%s unanswered = %v; want context.DeadlineExceeded, naming it and the call timeout", what, err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
