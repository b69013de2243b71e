package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/internal/bench"
)

// manyParallel is how many go-plugin plugins the baseline starts at once:
// host.Manager.LoadDir's own limit.
const manyParallel = 16

// measureMany loads n refplug plugins through a host.Manager (from a
// directory of n links to this binary) and n go-plugin net/rpc plugins,
// manyParallel at a time, calls each once as it is loaded, and reports
// the total time to have them all answering and the host memory each
// loaded plugin holds: heap, goroutine stacks, and goroutines. Each side
// runs twice, in the order refplug, net/rpc, net/rpc, refplug (the first
// burst of a run pays for what is cold), and the rows give the mean of
// each side's two.
func measureMany(n int) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "refbench-many-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	for i := range n {
		if err := os.Symlink(exe, filepath.Join(dir, fmt.Sprintf("plugin-%03d", i))); err != nil {
			return "", err
		}
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return "", err
	}
	var times [2]int64 // refplug, net/rpc: sums over both runs
	var uses [2]hostUse
	for _, side := range []int{0, 1, 1, 0} {
		run := manyRefplug
		if side == 1 {
			run = manyNetRPC
		}
		d, u, err := run(paths)
		if err != nil {
			return "", err
		}
		times[side] += int64(d)
		uses[side] = uses[side].plus(u)
	}
	refplugTime, netrpcTime := time.Duration(times[0]/2), time.Duration(times[1]/2)
	per := func(side int, v func(hostUse) int64) float64 { return float64(v(uses[side])) / 2 / float64(n) }
	var b strings.Builder
	fmt.Fprintf(&b, "| %d plugins loaded in parallel (%d at a time) and called once (mean of 2) | refplug (host.Manager) | go-plugin net/rpc | refplug ÷ net/rpc |\n|---|---:|---:|---:|\n"+
		"| total time | %v | %v | %.2f |\n",
		n, manyParallel, refplugTime.Round(time.Millisecond), netrpcTime.Round(time.Millisecond), float64(refplugTime)/float64(netrpcTime))
	for _, row := range []struct {
		what string
		v    func(hostUse) int64
		unit func(float64) string
	}{
		{"host heap per loaded plugin", func(u hostUse) int64 { return u.heap }, kib},
		{"host goroutine stacks per loaded plugin", func(u hostUse) int64 { return u.stacks }, kib},
		{"host goroutines per loaded plugin", func(u hostUse) int64 { return u.goroutines }, func(x float64) string { return fmt.Sprintf("%.1f", x) }},
	} {
		r, g := per(0, row.v), per(1, row.v)
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f |\n", row.what, row.unit(r), row.unit(g), r/g)
	}
	return b.String(), nil
}

// hostUse is what this process holds: heap, goroutine stacks (bytes), and
// goroutines; or, from (hostUse).since, what it holds more than before.
type hostUse struct{ heap, stacks, goroutines int64 }

// hostNow measures what this process holds, after a collection.
func hostNow() hostUse {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return hostUse{int64(ms.HeapAlloc), int64(ms.StackInuse), int64(runtime.NumGoroutine())}
}

func (u hostUse) since(before hostUse) hostUse {
	return hostUse{u.heap - before.heap, u.stacks - before.stacks, u.goroutines - before.goroutines}
}

func (u hostUse) plus(v hostUse) hostUse {
	return hostUse{u.heap + v.heap, u.stacks + v.stacks, u.goroutines + v.goroutines}
}

// manyRefplug loads the plugins at paths through a host.Manager,
// manyParallel at a time, each goroutine loading, dispensing and calling
// one; it returns the time until all have answered and the host memory
// they hold, and closes them.
func manyRefplug(paths []string) (time.Duration, hostUse, error) {
	before := hostNow()
	start := time.Now()
	m := host.NewManager(host.LoadOptions(host.WithArgs("plugin", "refplug"), host.WithLogger(quietLogger("refplug")), host.WithAutoMTLS(autoMTLS)))
	defer m.Close()
	errs := inParallel(len(paths), func(i int) error {
		if err := m.Load(paths[i]); err != nil {
			return err
		}
		b, err := host.DispenseFrom[bench.Bench](m, filepath.Base(paths[i]), "bench")
		if err == nil {
			_, err = b.Plain(1, 2)
		}
		return err
	})
	d := time.Since(start)
	u := hostNow().since(before)
	for i, err := range errs {
		if err != nil {
			return 0, u, fmt.Errorf("refplug plugin %s: %w", paths[i], err)
		}
	}
	return d, u, nil
}

// manyNetRPC is manyRefplug for go-plugin net/rpc glue (as many plugins as
// paths, each started from this binary).
func manyNetRPC(paths []string) (time.Duration, hostUse, error) {
	n := len(paths)
	before := hostNow()
	start := time.Now()
	closers := make([]func(), n)
	errs := inParallel(n, func(i int) error {
		b, closeIt, err := loadNetRPC()
		if err != nil {
			return err
		}
		closers[i] = closeIt
		_, err = b.Plain(1, 2)
		return err
	})
	d := time.Since(start)
	u := hostNow().since(before)
	var err error
	for i := range n {
		if closers[i] != nil {
			closers[i]()
		}
		if errs[i] != nil && err == nil {
			err = fmt.Errorf("net/rpc plugin %d: %w", i, errs[i])
		}
	}
	return d, u, err
}

// inParallel runs f(0) to f(n-1), manyParallel at a time, and returns
// their errors, by i.
func inParallel(n int, f func(i int) error) []error {
	errs := make([]error, n)
	slots := make(chan struct{}, manyParallel)
	var wg sync.WaitGroup
	for i := range n {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			errs[i] = f(i)
		})
	}
	wg.Wait()
	return errs
}

func kib(n float64) string { return fmt.Sprintf("%.0f KiB", n/1024) }
