package refbroker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
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
	a, b := net.Pipe()
	c := refbroker.NewConn(a, refbroker.Options{Logger: testutil.Logger(t, "conn")})
	t.Cleanup(func() { b.Close(); c.Close() })
	p := &rawPeer{t: t, conn: c, w: b, r: bufio.NewReader(b)}

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
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DispenseContext with no answer = %v; want context.DeadlineExceeded", err)
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
