//go:build unix

package host_test

import (
	"context"
	"errors"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/refplug/refplug/host"
)

// A plugin that stops reading (here: stopped with SIGSTOP) costs the host
// bounded memory, and a caller whose context ends returns then, even
// while its message is being written.
func TestStoppedPluginBoundsTheHost(t *testing.T) {
	c := load(t, "svcplugin", host.WithMaxQueuedBytes(8<<20))
	svc := dispenseSvc(t, c)
	pid, err := svc.Pid()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)

	heap := func() uint64 {
		runtime.GC()
		runtime.GC() // buffers kept for reuse (sync.Pool) go at the second
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	const callers, size = 50, 4 << 20
	errs := make(chan error, callers)
	for range callers {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err := svc.Upload(ctx, make([]byte, size))
			errs <- err
		}()
	}
	for i := range callers {
		select {
		case err := <-errs:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Upload to a stopped plugin = %v; want DeadlineExceeded", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d callers still blocked 10s after their 300ms deadline", callers-i, callers)
		}
	}
	// What waits to be written is bounded (8 MiB queued, plus the frame
	// being written), not 50 × 4 MiB.
	if grew := int64(heap()) - int64(before); grew > 32<<20 {
		t.Errorf("the host's heap grew by %d MiB while the plugin was stopped; want it bounded by the write queue", grew>>20)
	}
	syscall.Kill(pid, syscall.SIGCONT)
	if n, err := svc.Sum(2, 3); err != nil || n != 5 {
		t.Errorf("Sum after the plugin resumed = %d, %v", n, err)
	}
}
