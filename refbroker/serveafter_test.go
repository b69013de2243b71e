package refbroker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"
)

// heldGetter's Get reports whether ready was closed when it ran.
type heldGetter struct{ ready chan struct{} }

func (h heldGetter) Get(context.Context, int, int) ([]byte, error) {
	select {
	case <-h.ready:
		return []byte{1}, nil
	default:
		return []byte{0}, nil
	}
}

func (heldGetter) Block(context.Context) error { return nil }

// TestServeAfterHoldsCalls: with Options.ServeAfter, Dispense and Describe
// are answered, a call waits until the channel is closed and then runs,
// and a call still held when the connection ends returns at once.
func TestServeAfterHoldsCalls(t *testing.T) {
	ready := make(chan struct{})
	client, _ := newPair(t, Options{Roots: map[string]any{"g": heldGetter{ready}}, ServeAfter: ready}, Options{})
	g, err := Dispense[getter](client, "g")
	if err != nil {
		t.Fatalf("Dispense while calls are held: %v", err)
	}
	got := heldGet(t, g)
	testutil.Eventually(t, "the call to be on its way", func() bool { return client.Stats().Pending == 1 })
	if _, err := client.Describe(); err != nil {
		t.Fatalf("Describe while a call is held: %v", err)
	}
	close(ready)
	awaitRanAfter(t, got, "ServeAfter")
}

// heldGet calls g.Get on a goroutine of its own, and returns its result.
func heldGet(t *testing.T, g getter) <-chan []byte {
	got := make(chan []byte, 1)
	go func() {
		b, err := g.Get(context.Background(), 1, 0)
		if err != nil {
			t.Errorf("Get: %v", err)
		}
		got <- b
	}()
	return got
}

// awaitRanAfter checks that the held Get (heldGet) ran once the channel
// of the option named after was closed, and not before.
func awaitRanAfter(t *testing.T, got <-chan []byte, after string) {
	t.Helper()
	b := testutil.Receive(t, got, 10*time.Second, fmt.Sprintf("the held call did not run once %s was closed", after))
	if len(b) != 1 || b[0] != 1 {
		t.Errorf("the held call ran before %s was closed (%v)", after, b)
	}
}

// TestCallAfterHoldsCalls: with Options.CallAfter, Dispense and Describe
// go at once; a call waits, unsent, until the channel is closed (a call
// whose context ends first returns its context's error, and the peer never
// sees it), then runs.
func TestCallAfterHoldsCalls(t *testing.T) {
	ready := make(chan struct{})
	client, server := newPair(t, Options{Roots: map[string]any{"g": heldGetter{ready}}}, Options{CallAfter: ready})
	g, err := Dispense[getter](client, "g")
	if err != nil {
		t.Fatalf("Dispense while calls are held: %v", err)
	}
	if _, err := client.Describe(); err != nil {
		t.Fatalf("Describe while calls are held: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := g.Get(ctx, 1, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a held call whose context ended = %v; want context.DeadlineExceeded", err)
	}
	if n := server.Stats().CallsServed; n != 0 {
		t.Errorf("the peer served %d calls while this side's were held", n)
	}
	got := heldGet(t, g)
	close(ready)
	awaitRanAfter(t, got, "CallAfter")
}

// TestHeldCallConnectionEnds: a call held by ServeAfter (on the serving
// side, the call sent) or CallAfter (on the calling side, the call not
// sent) returns ErrDisconnected when the connection ends.
func TestHeldCallConnectionEnds(t *testing.T) {
	for _, tc := range []struct {
		name           string
		server, client Options
		sent           bool
	}{
		{"ServeAfter", Options{Roots: map[string]any{"g": heldGetter{make(chan struct{})}}, ServeAfter: make(chan struct{})}, Options{}, true},
		{"CallAfter", Options{Roots: map[string]any{"g": heldGetter{make(chan struct{})}}}, Options{CallAfter: make(chan struct{})}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := newPair(t, tc.server, tc.client)
			g, err := Dispense[getter](client, "g")
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := g.Get(context.Background(), 1, 0)
				done <- err
			}()
			if tc.sent {
				testutil.Eventually(t, "the call to be on its way", func() bool { return client.Stats().Pending == 1 })
			}
			server.Close()
			err = testutil.Receive(t, done, 10*time.Second, "a held call did not return when the connection ended")
			if !errors.Is(err, ErrDisconnected) {
				t.Errorf("a held call when the connection ended = %v; want ErrDisconnected", err)
			}
		})
	}
}

// TestWatchdogStopsWhenIdle: after a call served inline, the serving
// side's watchdog stops within a few ticks, so a connection left alone
// wakes nobody (an idle plugin does no work).
func TestWatchdogStopsWhenIdle(t *testing.T) {
	ready := make(chan struct{})
	close(ready)
	client, server := newPair(t, Options{Roots: map[string]any{"g": heldGetter{ready}}}, Options{})
	g, err := Dispense[getter](client, "g")
	if err != nil {
		t.Fatal(err)
	}
	stopped := func() bool {
		server.rd.Lock()
		defer server.rd.Unlock()
		return !server.rd.watching
	}
	testutil.Eventually(t, "the server's watchdog to stop after Dispense", stopped)
	server.rd.Lock()
	server.rd.ticks = 0
	server.rd.Unlock()
	if _, err := g.Get(context.Background(), 1, 0); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the server's watchdog to stop after the call", stopped)
	server.rd.Lock()
	ticks := server.rd.ticks
	server.rd.Unlock()
	if ticks == 0 || ticks > 5 { // each tick wakes a thread of an idle process
		t.Errorf("the watchdog ticked %d times for one call and stopped; want 1 to 5", ticks)
	}
}
