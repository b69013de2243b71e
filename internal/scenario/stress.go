package scenario

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refplug/refplug/testdata/contract"
)

// StressDuration is how long Stress runs: REFPLUG_STRESS (a Go duration)
// or, by default, a short run that fits in `make test`.
func StressDuration(t *testing.T) time.Duration {
	if s := os.Getenv("REFPLUG_STRESS"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("REFPLUG_STRESS=%q: %v", s, err)
		}
		return d
	}
	return 2 * time.Second
}

// StressCallers are the numbers of callers each stress test runs with: 64,
// whose returns the reader goroutine hands over, and one (beside the bulk
// goroutine), which mostly reads its own (refbroker/callerread.go).
var StressCallers = []struct {
	Name    string
	Callers int
}{{"64 callers", 64}, {"one caller", 1}}

// StressResult counts what a stress run did.
type StressResult struct {
	Iterations int64
	Bulk       int64 // of them, the large slices and streams
	Failures   int64
}

// Stress runs workers goroutines against svc for d, mixing plain calls,
// callbacks, re-entrant calls, nested objects, identity round trips and
// cancelled contexts, while bulkWorkers more goroutines send large slices
// and streams (64 KiB to 1 MiB, written from and read into their frames)
// among them; it checks every result. Failures are reported with t.Error
// (from this goroutine, never the workers).
func Stress(t *testing.T, svc contract.Service, workers int, d time.Duration) StressResult {
	var res StressResult
	bulkSource() // made before the clock starts
	errs := make(chan error, workers+bulkWorkers)
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range workers + bulkWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			step, count := stressStep, &res.Iterations
			if w >= workers {
				step = bulkStep
				count = &res.Bulk
			}
			var first error
			for i := 0; time.Now().Before(stop); i++ {
				atomic.AddInt64(count, 1)
				if err := step(svc, rng, w, i); err != nil {
					atomic.AddInt64(&res.Failures, 1)
					if first == nil {
						first = fmt.Errorf("worker %d, iteration %d: %w", w, i, err)
					}
				}
			}
			errs <- first
		}()
	}
	wg.Wait()
	res.Iterations += res.Bulk
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	return res
}

// bulkWorkers is how many of Stress's goroutines send large slices and
// streams (each a megabyte at most).
const bulkWorkers = 1

func stressStep(svc contract.Service, rng *rand.Rand, w, i int) error {
	switch rng.IntN(7) {
	case 0:
		if n, err := svc.Sum(w, i, 1); err != nil || n != w+i+1 {
			return fmt.Errorf("svc.Sum = %d, %v", n, err)
		}
	case 1:
		if n, err := svc.Apply(func(x int) int { return x * 3 }, i); err != nil || n != 3*i {
			return fmt.Errorf("svc.Apply = %d, %v", n, err)
		}
	case 2:
		h := &host{svc: svc}
		if n, err := svc.Bounce(h, 3); err != nil || n != 6 {
			return fmt.Errorf("svc.Bounce(3) = %d, %v", n, err)
		}
	case 3:
		c, err := svc.NewCounter("s")
		if err != nil {
			return err
		}
		child, err := c.Child(fmt.Sprint(i))
		if err != nil {
			return err
		}
		if n, err := child.Add(i); err != nil || n != i {
			return fmt.Errorf("child.Add = %d, %v", n, err)
		}
		if l, err := child.Label(); err != nil || l != fmt.Sprintf("s/%d", i) {
			return fmt.Errorf("child.Label = %q, %v", l, err)
		}
	case 4:
		th := &thing{name: "t"}
		if got, err := svc.Same(th); err != nil || got != contract.Thing(th) {
			return fmt.Errorf("svc.Same = %T, %v", got, err)
		}
	case 5:
		s := &sink{}
		if err := svc.Fanout([]contract.Sink{s, s}, nil, "m"); err != nil || len(s.all()) != 2 {
			return fmt.Errorf("svc.Fanout: %v, sink got %v", err, s.all())
		}
	case 6:
		ctx, cancel := context.WithCancel(context.Background())
		err := svc.Wait(ctx, cancel)
		cancel()
		if err != context.Canceled {
			return fmt.Errorf("svc.Wait after cancel = %v", err)
		}
	}
	return nil
}

// bulkStep is one of bulkWorkers' steps.
func bulkStep(svc contract.Service, rng *rand.Rand, w, i int) error {
	switch rng.IntN(2) {
	case 0: // a large slice there and back, sent from and received into the frame's own memory
		body := bulk(rng, i)
		d, err := svc.Echo(contract.Doc{ID: fmt.Sprint(w, "/", i), Body: body})
		if err != nil || d.ID != fmt.Sprint(w, "/", i) || !bytes.Equal(d.Body, body) {
			return fmt.Errorf("svc.Echo of a %d-byte body = %q, %d bytes back (equal %v), %v", len(body), d.ID, len(d.Body), bytes.Equal(d.Body, body), err)
		}
	case 1: // a large stream through the caller's reader and writer
		data := bulk(rng, i)
		var got bytes.Buffer
		if n, err := svc.Copy(&got, bytes.NewReader(data)); err != nil || n != int64(len(data)) || !bytes.Equal(got.Bytes(), data) {
			return fmt.Errorf("svc.Copy of %d bytes = %d, %v (the writer got %d bytes, equal %v)", len(data), n, err, got.Len(), bytes.Equal(got.Bytes(), data))
		}
	}
	return nil
}

// bulkSource is a megabyte and more of random bytes, made once, for the
// large steps to take their slices from.
var bulkSource = sync.OnceValue(func() []byte {
	b := make([]byte, 1<<20+64<<10)
	rand.NewChaCha8([32]byte{7}).Read(b)
	return b
})

// bulk returns 64 KiB to 1 MiB of bulkSource from a random place, with
// the iteration i in its first bytes: a frame written into another's
// place, or cut short, shows.
func bulk(rng *rand.Rand, i int) []byte {
	src := bulkSource()
	n := 64<<10 + rng.IntN(960<<10)
	off := rng.IntN(len(src) - n + 1)
	b := bytes.Clone(src[off : off+n])
	binary.LittleEndian.PutUint64(b, uint64(i))
	return b
}
