package main

import (
	"fmt"
	"os"
	"path/filepath"
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
// the total time to have them all answering and the host heap each loaded
// plugin holds. Each side runs twice, in the order refplug, net/rpc,
// net/rpc, refplug (the first burst of a run pays for what is cold), and
// the row gives the mean of each side's two.
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
	var times, heaps [2]int64 // refplug, net/rpc: sums over both runs
	for _, side := range []int{0, 1, 1, 0} {
		run := manyRefplug
		if side == 1 {
			run = manyNetRPC
		}
		d, h, err := run(paths)
		if err != nil {
			return "", err
		}
		times[side] += int64(d)
		heaps[side] += h
	}
	refplugTime, netrpcTime := time.Duration(times[0]/2), time.Duration(times[1]/2)
	refplugHeap, netrpcHeap := heaps[0]/2/int64(n), heaps[1]/2/int64(n)
	return fmt.Sprintf("| %d plugins loaded in parallel (%d at a time) and called once (mean of 2) | refplug (host.Manager) | go-plugin net/rpc | refplug ÷ net/rpc |\n|---|---:|---:|---:|\n"+
		"| total time | %v | %v | %.2f |\n| host heap per loaded plugin | %s | %s | %.2f |\n",
		n, manyParallel, refplugTime.Round(time.Millisecond), netrpcTime.Round(time.Millisecond), float64(refplugTime)/float64(netrpcTime),
		kib(refplugHeap), kib(netrpcHeap), float64(refplugHeap)/float64(netrpcHeap)), nil
}

// manyRefplug loads the plugins at paths through a host.Manager,
// manyParallel at a time, each goroutine loading, dispensing and calling
// one; it returns the time until all have answered and the host heap they
// hold, and closes them.
func manyRefplug(paths []string) (time.Duration, int64, error) {
	heap0 := int64(heap())
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
	h := int64(heap()) - heap0
	for i, err := range errs {
		if err != nil {
			return 0, 0, fmt.Errorf("refplug plugin %s: %w", paths[i], err)
		}
	}
	return d, h, nil
}

// manyNetRPC is manyRefplug for go-plugin net/rpc glue (as many plugins as
// paths, each started from this binary).
func manyNetRPC(paths []string) (time.Duration, int64, error) {
	n := len(paths)
	heap0 := int64(heap())
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
	h := int64(heap()) - heap0
	var err error
	for i := range n {
		if closers[i] != nil {
			closers[i]()
		}
		if errs[i] != nil && err == nil {
			err = fmt.Errorf("net/rpc plugin %d: %w", i, errs[i])
		}
	}
	return d, h, err
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

func kib(n int64) string { return fmt.Sprintf("%.0f KiB", float64(n)/1024) }
