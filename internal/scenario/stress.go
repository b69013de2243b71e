package scenario

import (
	"context"
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

// StressResult counts what a stress run did.
type StressResult struct {
	Iterations int64
	Failures   int64
}

// Stress runs workers goroutines against svc for d, mixing plain calls,
// callbacks, re-entrant calls, nested objects, identity round trips and
// cancelled contexts, and checks every result. Failures are reported with
// t.Error (from this goroutine, never the workers).
func Stress(t *testing.T, svc contract.Service, workers int, d time.Duration) StressResult {
	var res StressResult
	errs := make(chan error, workers)
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			var first error
			for i := 0; time.Now().Before(stop); i++ {
				atomic.AddInt64(&res.Iterations, 1)
				if err := stressStep(svc, rng, w, i); err != nil {
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
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	return res
}

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
