package refbroker_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
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
