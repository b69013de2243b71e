package refbroker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"
	"github.com/refplug/refplug/refbroker"
)

// TestDispenseContext: a Dispense the peer does not answer returns its
// context's error at the deadline, and the peer hears that its caller gave
// up; the answer that comes later is taken in and its reference released,
// so the peer's object is not held for ever.
func TestDispenseContext(t *testing.T) {
	p := newRawPeer(t)
	c := p.conn

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := refbroker.DispenseContext[Greeter](ctx, c, "greeter")
		errc <- err
	}()
	req := p.next() // the bootstrap: type 5, seq, the name, …
	head := msg(5).bytes()
	if !bytes.HasPrefix(req, head) || !bytes.Contains(req, []byte("greeter")) {
		t.Fatalf("got % x; want a bootstrap asking for greeter", req)
	}
	seq, n := binary.Uvarint(req[len(head):])
	if n <= 0 {
		t.Fatalf("bootstrap % x has no call number", req)
	}
	err := testutil.Receive(t, errc, 10*time.Second, "DispenseContext still waits 10 s after its context's 100 ms deadline")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `Dispense("greeter")`) {
		t.Fatalf("DispenseContext with no answer = %v; want context.DeadlineExceeded, naming the Dispense", err)
	}
	if got := p.next(); !bytes.HasPrefix(got, msg(3).u(seq).bytes()) {
		t.Fatalf("after the deadline: got % x; want a cancel of call %d", got, seq)
	}

	// The late answer: our export 7 (reference tag 1), type ID 0.
	p.send(msg(2).u(seq).byte1(0).byte1(1).u(7).u(0))
	p.expectRelease("the late answer's reference", msg(4).u(1).u(7).u(1))
	if s := c.Stats(); s.Imports != 0 {
		t.Errorf("Stats.Imports = %d after the late answer was released; want 0", s.Imports)
	}

	// An ended context is refused before anything is sent.
	if _, err := refbroker.DispenseContext[Greeter](ctx, c, "greeter"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("DispenseContext with an ended context = %v; want context.DeadlineExceeded", err)
	}
}

// blocker's Block returns when its context ends, and says how.
type blocker struct{ ended chan error }

func (b blocker) Block(ctx context.Context) error {
	<-ctx.Done()
	b.ended <- ctx.Err()
	return ctx.Err()
}

// TestCallJSONContext: a CallJSON whose context ends returns its error then,
// not when the method does, and the method's own context ends with it (a
// method that waits for its context would otherwise run for ever). Describe
// with an ended context is refused before it is sent.
func TestCallJSONContext(t *testing.T) {
	b := blocker{ended: make(chan error, 1)}
	logger := testutil.Logger(t, "test")
	client, _ := refbroker.NewPair(t,
		refbroker.Options{Logger: logger.Named("server"), Roots: map[string]any{"blocker": b}},
		refbroker.Options{Logger: logger.Named("client")})

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := client.CallJSONContext(ctx, "blocker", "Block")
		errc <- err
	}()
	err := testutil.Receive(t, errc, 10*time.Second, "CallJSONContext still waits 10 s after its context's 100 ms deadline")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "blocker.Block") {
		t.Errorf("CallJSONContext of a method that waits for its context = %v; want context.DeadlineExceeded, naming the method", err)
	}
	if got := testutil.Receive(t, b.ended, 10*time.Second, "the method's context still runs 10 s after the caller gave up"); !errors.Is(got, context.DeadlineExceeded) {
		t.Errorf("the method's context ended with %v; want the caller's reason, context.DeadlineExceeded", got)
	}

	// The connection goes on: the Conn answers the next request.
	if res, err := client.CallJSONContext(context.Background(), "blocker", "Nope"); err == nil || !strings.Contains(err.Error(), "has no method Nope") {
		t.Errorf("CallJSONContext of a missing method = %s, %v; want an error naming it", res, err)
	}
	if _, err := client.DescribeContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("DescribeContext with an ended context = %v; want context.DeadlineExceeded", err)
	}
	infos, err := client.DescribeContext(context.Background())
	if err != nil || len(infos) != 1 || infos[0].Name != "blocker" {
		t.Errorf("DescribeContext = %+v, %v; want the blocker", infos, err)
	}
}

// Waiter is a contract whose one method waits on its caller's context.
type Waiter interface {
	Wait(ctx context.Context) error
}

type waiterProxy struct{ *refbroker.Ref }

func (p waiterProxy) Wait(ctx context.Context) error { return p.Invoke("Wait", []any{ctx}) }

func init() {
	refbroker.RegisterInterface[Waiter](func(r *refbroker.Ref) Waiter { return waiterProxy{r} })
}

// TestCancelsOfAPeerThatDoesNotRead: callers that give up on a peer that
// has stopped reading return at their deadline and leave nothing running
// behind them (the cancels their peer must hear wait in a queue, not in a
// goroutine each), and when the peer reads again, every call it was sent
// is followed by its cancel, with the caller's reason and cause. The
// causes here are longer than the calls: their cancels do not fit in the
// part of the write queue that calls leave free.
func TestCancelsOfAPeerThatDoesNotRead(t *testing.T) {
	a, b := net.Pipe()
	c := refbroker.NewConn(a, refbroker.Options{MaxQueuedBytes: 4096, Logger: testutil.Logger(t, "conn")})
	t.Cleanup(func() { b.Close(); c.Close() })
	p := &rawPeer{t: t, conn: c, w: b, r: bufio.NewReader(b)}
	p.expectHello()

	wc := make(chan Waiter, 1)
	go func() {
		w, err := refbroker.Dispense[Waiter](c, "waiter")
		if err != nil {
			t.Error(err)
		}
		wc <- w
	}()
	req := p.next()
	seq, n := binary.Uvarint(req[1:])
	if req[0] != 5 || n <= 0 {
		t.Fatalf("got % x; want a bootstrap", req)
	}
	p.send(msg(2).u(seq).byte1(0).byte1(1).u(7).u(0)) // our export 7, as the root
	w := testutil.Receive(t, wc, 10*time.Second, "Dispense not answered")

	// From now on the peer reads nothing: the first call's frame stays
	// half written in the pipe, the next ones fill the write queue, the
	// rest wait for room until their deadline.
	before := runtime.NumGoroutine()
	const callers = 1000
	cause := errors.New("the health check gave up: " + strings.Repeat("the plugin does not answer; ", 8))
	errc := make(chan error, callers)
	for range callers {
		go func() {
			ctx, cancel := context.WithTimeoutCause(context.Background(), 50*time.Millisecond, cause)
			defer cancel()
			errc <- w.Wait(ctx)
		}()
	}
	for range callers {
		err := testutil.Receive(t, errc, 10*time.Second, "a call still waits 10 s after its 50 ms deadline")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a call to a peer that does not read = %v; want context.DeadlineExceeded", err)
		}
	}
	testutil.Eventually(t, "the goroutines of calls given up to end", func() bool {
		return runtime.NumGoroutine() <= before+5
	})

	// The peer reads again: each call it gets is cancelled, as a deadline.
	calls, cancels := map[uint64]bool{}, map[uint64]bool{}
	for len(calls) == 0 || len(cancels) < len(calls) {
		f := p.next()
		seq, n := binary.Uvarint(f[1:])
		if n <= 0 {
			t.Fatalf("frame % x has no call number", f)
		}
		switch f[0] {
		case 1:
			calls[seq] = true
		case 3:
			if !calls[seq] || cancels[seq] {
				t.Fatalf("cancel of call %d: not one sent, or cancelled twice", seq)
			}
			if f[1+n] != 2 || !bytes.Contains(f, []byte(cause.Error())) {
				t.Fatalf("cancel % x; want reason 2 (deadline exceeded) and the cause %q", f, cause)
			}
			cancels[seq] = true
		default:
			t.Fatalf("got % x; want calls and their cancels", f)
		}
	}
	if len(calls) < 10 {
		t.Errorf("only %d calls were sent before the queue filled; the test wants the queue full", len(calls))
	}
}

// Stepper is a contract whose method calls back between steps and stops
// when its context ends.
type Stepper interface {
	Steps(ctx context.Context, n int, step func(i int)) (int, error)
}

type stepperProxy struct{ *refbroker.Ref }

func (p stepperProxy) Steps(ctx context.Context, n int, step func(i int)) (int, error) {
	var done int
	err := p.Invoke("Steps", []any{ctx, n, step}, &done)
	return done, err
}

func init() {
	refbroker.RegisterInterface[Stepper](func(r *refbroker.Ref) Stepper { return stepperProxy{r} })
}

// stepper's Steps reports on stopped the step after which it stopped.
type stepper struct{ stopped chan int }

func (s stepper) Steps(ctx context.Context, n int, step func(i int)) (int, error) {
	for i := range n {
		step(i)
		if err := ctx.Err(); err != nil {
			s.stopped <- i
			return i, err
		}
	}
	s.stopped <- n
	return n, nil
}

// TestCancelFromACallback: a callback that cancels the context of the call
// it serves (a progress func stopping the work) returns only after the
// callee has heard: the callee's next look at its context sees it ended,
// every time, as it would in one process.
func TestCancelFromACallback(t *testing.T) {
	st := stepper{stopped: make(chan int, 1)}
	client, _ := refbroker.NewPair(t, refbroker.Options{Roots: map[string]any{"s": st}}, refbroker.Options{})
	s, err := refbroker.Dispense[Stepper](client, "s")
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		ctx, cancel := context.WithCancel(context.Background())
		_, err := s.Steps(ctx, 10, func(i int) {
			if i == 2 {
				cancel()
			}
		})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Steps cancelled by a callback = %v; want context.Canceled", err)
		}
		if i := testutil.Receive(t, st.stopped, 10*time.Second, "Steps did not stop"); i != 2 {
			t.Fatalf("Steps stopped after step %d; want 2, the step whose callback cancelled", i)
		}
	}
}
