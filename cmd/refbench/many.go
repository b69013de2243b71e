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
// plugin holds.
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

	// Each side loads, dispenses and calls each plugin in one goroutine,
	// manyParallel at a time: refplug through host.Manager (Load, then
	// DispenseFrom), go-plugin through its Client.
	paths, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return "", err
	}
	heap0 := int64(heap())
	start := time.Now()
	m := host.NewManager(host.LoadOptions(host.WithArgs("plugin", "refplug"), host.WithLogger(quietLogger("refplug")), host.WithAutoMTLS(autoMTLS)))
	defer m.Close()
	errs := make([]error, n)
	slots := make(chan struct{}, manyParallel)
	var wg sync.WaitGroup
	for i, path := range paths {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			err := m.Load(path)
			if err == nil {
				var b bench.Bench
				if b, err = host.DispenseFrom[bench.Bench](m, filepath.Base(path), "bench"); err == nil {
					_, err = b.Plain(1, 2)
				}
			}
			errs[i] = err
		})
	}
	wg.Wait()
	refplugTime := time.Since(start)
	refplugHeap := (int64(heap()) - heap0) / int64(n)
	m.Close()
	for i, err := range errs {
		if err != nil {
			return "", fmt.Errorf("refplug plugin %s: %w", paths[i], err)
		}
	}

	heap0 = int64(heap())
	start = time.Now()
	closers := make([]func(), n)
	errs = make([]error, n)
	for i := range n {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			b, closeIt, err := loadNetRPC()
			if err == nil {
				closers[i] = closeIt
				_, err = b.Plain(1, 2)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	netrpcTime := time.Since(start)
	netrpcHeap := (int64(heap()) - heap0) / int64(n)
	for i := range n {
		if closers[i] != nil {
			closers[i]()
		}
		if errs[i] != nil && err == nil {
			err = fmt.Errorf("net/rpc plugin %d: %w", i, errs[i])
		}
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("| %d plugins loaded in parallel (%d at a time) and called once | refplug (host.Manager) | go-plugin net/rpc | refplug ÷ net/rpc |\n|---|---:|---:|---:|\n"+
		"| total time | %v | %v | %.2f |\n| host heap per loaded plugin | %s | %s | %.2f |\n",
		n, manyParallel, refplugTime.Round(time.Millisecond), netrpcTime.Round(time.Millisecond), float64(refplugTime)/float64(netrpcTime),
		kib(refplugHeap), kib(netrpcHeap), float64(refplugHeap)/float64(netrpcHeap)), nil
}

func kib(n int64) string { return fmt.Sprintf("%.0f KiB", float64(n)/1024) }
