package refbroker

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"
)

// A struct whose layout description (its name, fields and their types) is
// longer than the write queue of TestDescribeWaitsNoLongerThanItsContext.
type describedAtLength struct {
	AFieldWithAVeryLongNameIndeed         string
	AnotherFieldWithAnEvenLongerNameStill int
}

type describedCarrier interface {
	Put(describedAtLength) error
}

type describedCarrierProxy struct{ *Ref }

func (p describedCarrierProxy) Put(v describedAtLength) error { return p.Invoke("Put", []any{v}) }

func init() {
	RegisterInterface[describedCarrier](func(r *Ref) describedCarrier { return describedCarrierProxy{r} })
}

// TestDescribeWaitsNoLongerThanItsContext: the struct layouts a Dispense
// sends ahead of it wait for room in the write queue, or for another
// describer's turn, no longer than the Dispense's context, and layouts not
// sent are not counted as sent.
func TestDescribeWaitsNoLongerThanItsContext(t *testing.T) {
	a, b := net.Pipe() // b is never read: the first write blocks
	c := NewConn(a, Options{MaxQueuedBytes: 64, Logger: testutil.Logger(t, "conn")})
	t.Cleanup(func() { b.Close(); c.Close() })

	// One Describe writes (and stays blocked), one waits in the queue.
	queue := func(what string, ready func(q *writeQueue) bool) {
		go c.Describe()
		testutil.Eventually(t, what, func() bool {
			q := &c.wq
			q.Lock()
			defer q.Unlock()
			return ready(q)
		})
	}
	queue("a Describe to be writing", func(q *writeQueue) bool { return q.writing })
	queue("a Describe to be queued", func(q *writeQueue) bool { return len(q.pending) > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := DispenseContext[describedCarrier](ctx, c, "carrier")
		errc <- err
	}()
	err := testutil.Receive(t, errc, 10*time.Second, "DispenseContext still waits 10 s after its 100 ms deadline, its layouts not sent")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("DispenseContext whose layouts find no room = %v; want context.DeadlineExceeded", err)
	}
	var sent bool
	c.locked(func(s *state) { sent = s.layouts.sent["refbroker.describedAtLength"] != nil })
	if sent {
		t.Error("the layouts that were not sent count as sent: the next message would rely on them")
	}

	// A Dispense without a deadline now waits for room for its layouts,
	// holding the turn to describe; one with a deadline, waiting for that
	// turn, still returns at its deadline.
	go DispenseContext[describedCarrier](context.Background(), c, "carrier")
	testutil.Eventually(t, "a Dispense to hold the turn to describe", func() bool { return len(c.describeMu) == 1 })
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	go func() {
		_, err := DispenseContext[describedCarrier](ctx2, c, "carrier")
		errc <- err
	}()
	err = testutil.Receive(t, errc, 10*time.Second, "DispenseContext still waits 10 s after its 100 ms deadline, behind another's layouts")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("DispenseContext behind another's layouts = %v; want context.DeadlineExceeded", err)
	}
}
