package refbroker

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/refplug/refplug/internal/testutil"
)

// flushers counts the goroutines running a connection's flusher.
func flushers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte("refbroker.(*Conn).flushControl("))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// TestIdleConnectionsKeepNoFlusher: a host may hold many plugins'
// connections that send no releases or cancels for long stretches; the
// flusher runs only while it has something to send, so an idle connection
// keeps no goroutine for it (each kept one before). Releases queued from
// many goroutines at once all still reach the peer.
func TestIdleConnectionsKeepNoFlusher(t *testing.T) {
	before := flushers()
	const pairs = 20
	for range pairs {
		testPair(t, map[string]any{"m": &factory{}})
	}
	if got := flushers() - before; got != 0 {
		t.Errorf("%d idle connections run %d flushers, want none", 2*pairs, got)
	}

	client, server := testPair(t, map[string]any{"m": &factory{}})
	m, err := Dispense[maker](client, "m")
	if err != nil {
		t.Fatal(err)
	}
	base := server.Stats().Exports
	const makers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, makers)
	for g := range makers {
		wg.Go(func() {
			for i := range each {
				n, err := m.Make(fmt.Sprint(g, i))
				if err == nil {
					err = Release(n)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	testutil.Eventually(t, "every released export to be dropped", func() bool { return server.Stats().Exports == base })
	runtime.KeepAlive(m) // its release would drop the root's export too
	testutil.Eventually(t, "the flusher to stop once it has sent them", func() bool {
		return !client.flushRunning.Load() && flushers() == before
	})
}
