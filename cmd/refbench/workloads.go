package main

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/refplug/refplug/internal/bench"
)

// workload is one measured operation.
type workload struct {
	name       string
	target     string  // the goal, as a ratio to the baseline
	limit      float64 // the ratio that meets it; 0 for none
	goroutines int
	op         func(b bench.Bench) error
	// skewed: refplug's column runs against a plugin whose structs are
	// laid out otherwise (internal/bench/skew), so it decodes by field
	// name; the baselines' columns are as in the other rows (gob and
	// protobuf always match fields by name or number).
	skewed bool
}

func workloads() []workload {
	inc := func(x int) int { return x + 1 }
	mib := make([]byte, 1<<20)
	batch := bench.Batch{Label: "batch"}
	for i := range 1000 {
		batch.Records = append(batch.Records, bench.Record{ID: int64(i), Name: fmt.Sprint("record-", i), Score: float64(i) / 3, Tags: []string{"a", "b"}})
	}
	check := func(got, want int, err error) error {
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("got %d, want %d", got, want)
		}
		return nil
	}
	plain := func(b bench.Bench) error { n, err := b.Plain(1, 2); return check(n, 3, err) }
	structOp := func(b bench.Bench) error {
		out, err := b.Struct(batch)
		if err == nil && (out.Label != batch.Label || out.Records[999].Name != batch.Records[999].Name) {
			return fmt.Errorf("b.Struct returned %q, %q", out.Label, out.Records[999].Name)
		}
		return check(len(out.Records), 1000, err)
	}
	return []workload{
		{name: "plain call", target: "≤ 0.9", limit: 0.9, goroutines: 1, op: plain},
		{name: "call passing a callback, invoked once", target: "≤ 0.4", limit: 0.4, goroutines: 1, op: func(b bench.Bench) error {
			n, err := b.Callback(inc, 1)
			return check(n, 2, err)
		}},
		{name: "callback invoked 100 times", goroutines: 1, op: func(b bench.Bench) error {
			n, err := b.CallbackN(inc, 100)
			return check(n, 100, err)
		}},
		{name: "1 MiB []byte in and out", target: "≤ 1.0", limit: 1.0, goroutines: 1, op: func(b bench.Bench) error {
			out, err := b.Bytes(mib)
			return check(len(out), len(mib), err)
		}},
		{name: "struct with 1000-element slice", goroutines: 1, op: structOp},
		{name: "struct with 1000-element slice, layouts differ", goroutines: 1, op: structOp, skewed: true},
		{name: "pointer out-parameter filled (copy-restore)", goroutines: 1, op: func(b bench.Bench) error {
			var dst bench.Batch
			if err := b.Fill(&dst); err != nil {
				return err
			}
			if dst.Label != "filled" || len(dst.Records) != 1 || dst.Records[0].Name != "one" {
				return fmt.Errorf("b.Fill left %+v", dst)
			}
			return nil
		}},
		{name: "plain call, 8 goroutines", goroutines: 8, op: plain},
		{name: "plain call, 64 goroutines", goroutines: 64, op: plain},
	}
}

// measure runs op on g goroutines for about d, and returns the time per
// operation and the host's allocations per operation.
func measure(b bench.Bench, w workload, d time.Duration) (perOp time.Duration, allocs float64, err error) {
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	start := time.Now()
	deadline := start.Add(d)
	var ops int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range w.goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(0)
			for time.Now().Before(deadline) {
				if err := w.op(b); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					break
				}
				n++
			}
			mu.Lock()
			ops += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	runtime.ReadMemStats(&ms1)
	if firstErr != nil {
		return 0, 0, fmt.Errorf("%s: %w", w.name, firstErr)
	}
	if ops == 0 {
		return 0, 0, fmt.Errorf("%s: no operation finished in %v", w.name, d)
	}
	return el / time.Duration(ops), float64(ms1.Mallocs-ms0.Mallocs) / float64(ops), nil
}

type result struct {
	perOp  []time.Duration
	allocs []float64
}

func (r *result) median() time.Duration { return median(r.perOp) }

// median is the median of d.
func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func (r *result) medianAllocs() float64 {
	s := slices.Clone(r.allocs)
	slices.Sort(s)
	return s[len(s)/2]
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Nanoseconds())/1000) }
