package refbroker_test

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"

	"github.com/refplug/refplug/internal/scenario"
	"github.com/refplug/refplug/refbroker"
	"github.com/refplug/refplug/testdata/contract"
)

// pair connects a "host" and a "plugin" Conn in-process over net.Pipe; the
// plugin serves contract.NewService as "svc".
func pair(t *testing.T) (hostSide, pluginSide *refbroker.Conn) {
	t.Helper()
	logger := testutil.Logger(t, "test")
	return refbroker.NewPair(t,
		refbroker.Options{Logger: logger.Named("plugin"), Roots: map[string]any{"svc": contract.NewService(nil)}},
		refbroker.Options{Logger: logger.Named("host")})
}

func TestScenariosInProcess(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	h, p := pair(t)
	svc, err := refbroker.Dispense[contract.Service](h, "svc")
	if err != nil {
		t.Fatalf("Dispense: %v", err)
	}
	scenario.Run(t, svc)

	// Nothing leaks: once the host drops the service, every table on both
	// sides empties, and closing leaves no goroutine behind.
	svc = nil
	testutil.Eventually(t, "both sides' tables to empty", func() bool {
		runtime.GC()
		return scenario.Empty(h.Stats()) && scenario.Empty(p.Stats())
	})
	h.Close()
	p.Close()
	testutil.Eventually(t, "goroutines to return to baseline", func() bool {
		return runtime.NumGoroutine() <= goroutines
	})
}

// TestStressInProcess: goroutines mixing every kind of call; then both
// sides' tables empty and goroutines return to baseline. With 64 callers
// the reader goroutine hands each its return; with one (and the bulk
// goroutine beside it) the caller mostly reads its own (callerread.go).
func TestStressInProcess(t *testing.T) {
	for _, tc := range scenario.StressCallers {
		t.Run(tc.Name, func(t *testing.T) { stressInProcess(t, tc.Callers) })
	}
}

func stressInProcess(t *testing.T, callers int) {
	goroutines := runtime.NumGoroutine()
	h, p := pair(t)
	svc, err := refbroker.Dispense[contract.Service](h, "svc")
	if err != nil {
		t.Fatal(err)
	}
	d := scenario.StressDuration(t)
	res := scenario.Stress(t, svc, callers, d)
	svc = nil
	testutil.Eventually(t, "both sides' tables to empty", func() bool {
		runtime.GC()
		return scenario.Empty(h.Stats()) && scenario.Empty(p.Stats())
	})
	hs, ps := h.Stats(), p.Stats()
	h.Close()
	p.Close()
	testutil.Eventually(t, "goroutines to return to baseline", func() bool {
		return runtime.NumGoroutine() <= goroutines
	})
	t.Logf("in-process stress: %d caller(s) for %v: %d iterations (%d large), %d failures; host made %d calls and served %d; "+
		"host exports created/dropped %d/%d, imports created/released %d/%d; plugin exports created/dropped %d/%d; goroutines before %d, after %d",
		callers, d, res.Iterations, res.Bulk, res.Failures, hs.CallsMade, hs.CallsServed, hs.ExportsCreated, hs.ExportsDropped,
		hs.ImportsCreated, hs.ImportsReleased, ps.ExportsCreated, ps.ExportsDropped, goroutines, runtime.NumGoroutine())
}

// TestCloseDoesNotWaitForMethods: Close returns while a method it serves
// ignores its cancelled context (the serving side may be running it on its
// reader), and the waiting caller fails with ErrDisconnected.
func TestCloseDoesNotWaitForMethods(t *testing.T) {
	h, p := pair(t)
	svc, err := refbroker.Dispense[contract.Service](h, "svc")
	if err != nil {
		t.Fatal(err)
	}
	hung := make(chan error, 1)
	go func() { hung <- svc.Hang(context.Background()) }()
	testutil.Eventually(t, "Hang to be served", func() bool { return p.Stats().CallsServed >= 1 })
	closed := make(chan struct{})
	go func() {
		p.Close()
		close(closed)
	}()
	testutil.Receive(t, closed, 10*time.Second, "Close waited for a method that ignores its context")
	err = testutil.Receive(t, hung, 10*time.Second, "the caller was not failed when the serving side closed")
	if !errors.Is(err, refbroker.ErrDisconnected) {
		t.Errorf("Hang after the serving side closed = %v; want ErrDisconnected", err)
	}
	svc.Unhang() // fails (disconnected); Hang itself stays blocked in this test process
}

// TestConcurrencyLimitInProcess: a host limited to 8 concurrent calls from
// its plugin refuses the rest of a flood of callbacks at once.
func TestConcurrencyLimitInProcess(t *testing.T) {
	logger := testutil.Logger(t, "test")
	h, _ := refbroker.NewPair(t,
		refbroker.Options{Logger: logger.Named("plugin"), Roots: map[string]any{"svc": contract.NewService(nil)}},
		refbroker.Options{Logger: logger.Named("host"), MaxConcurrentCalls: 8})
	svc, err := refbroker.Dispense[contract.Service](h, "svc")
	if err != nil {
		t.Fatal(err)
	}
	scenario.ConcurrencyLimit(t, svc, 8, h.Stats)
}

// TestHTTPInProcess: the HTTP scenario over two Conns.
func TestHTTPInProcess(t *testing.T) {
	h, _ := refbroker.NewPair(t, refbroker.Options{Roots: map[string]any{"web": contract.NewWeb()}}, refbroker.Options{})
	web, err := refbroker.Dispense[http.Handler](h, "web")
	if err != nil {
		t.Fatal(err)
	}
	scenario.HTTP(t, web)
}
