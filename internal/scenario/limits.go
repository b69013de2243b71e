package scenario

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"
	"github.com/refplug/refplug/refbroker"
	"github.com/refplug/refplug/testdata/contract"
)

// Scenarios of the boundary's promises against a careless or hostile
// peer: least authority on the way home, the caller's reason for ending a
// context, and the concurrency limit.

// Grants: a reference the host passed as Sink cannot come home where more
// is asked of it (any, io.Closer): the host's own object would then be
// called for methods the plugin was never granted.
func Grants(t *testing.T, svc contract.Service) {
	s := &sink{}
	if v, err := svc.LaunderAny(s); err == nil || !strings.Contains(err.Error(), "granted as contract.Sink, where interface {} is expected") {
		t.Errorf("LaunderAny = %T, %v; want the reference refused in an any", v, err)
	}
	if v, err := svc.LaunderCloser(s); err == nil || !strings.Contains(err.Error(), "granted as contract.Sink, where io.Closer is expected") {
		t.Errorf("LaunderCloser = %T, %v; want the reference refused as io.Closer", v, err)
	}
	// At the type it was granted as, it comes home as the original.
	if got, err := svc.Same(&thing{name: "t"}); err != nil {
		t.Errorf("Same after refused launders: %v", err)
	} else if _, ok := got.(*thing); !ok {
		t.Errorf("Same = %T; want the host's own *thing", got)
	}
}

// ContextReason: the callee's context ends with the caller's reason,
// DeadlineExceeded or Canceled, and the caller's context.Cause, every
// time (the caller's cancel message must not turn a deadline into a
// cancellation).
func ContextReason(t *testing.T, svc contract.Service) {
	check := func(what string, run func() error, wantErr, wantCause string) {
		t.Helper()
		before, _ := svc.Cancelled()
		if err := run(); err == nil || err.Error() != wantErr {
			t.Errorf("%s: the caller got %v; want %s", what, err, wantErr)
		}
		testutil.Eventually(t, "the callee's context to end", func() bool {
			n, _ := svc.Cancelled()
			return n > before
		})
		gotErr, gotCause, err := svc.Reason()
		if err != nil || gotErr != wantErr || gotCause != wantCause {
			t.Errorf("%s: the callee's context ended with Err %q, Cause %q (%v); want %q, %q", what, gotErr, gotCause, err, wantErr, wantCause)
		}
	}
	for range 5 {
		check("deadline", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			return svc.Wait(ctx, func() {})
		}, "context deadline exceeded", "context deadline exceeded")
	}
	check("cancel with a cause", func() error {
		ctx, cancel := context.WithCancelCause(context.Background())
		return svc.Wait(ctx, func() { cancel(errors.New("the user gave up")) })
	}, "context canceled", "the user gave up")
	check("plain cancel", func() error {
		ctx, cancel := context.WithCancel(context.Background())
		return svc.Wait(ctx, cancel)
	}, "context canceled", "context canceled")
}

// ConcurrencyLimit: with the host limited to limit concurrent calls from
// the plugin, a plugin that makes 3*limit blocking callbacks at once gets
// limit of them run and the rest refused at once with an error naming
// the limit, and nothing deadlocks; re-entrant calls under the limit
// still work. hostStats reads the host side's counts.
func ConcurrencyLimit(t *testing.T, svc contract.Service, limit int, hostStats func() refbroker.Stats) {
	var running atomic.Int32
	release := make(chan struct{})
	fn := func() error {
		running.Add(1)
		<-release
		return nil
	}
	type result struct {
		failed int
		first  string
		err    error
	}
	done := make(chan result, 1)
	refused0 := hostStats().CallsRefused
	go func() {
		failed, first, err := svc.Flood(fn, 3*limit)
		done <- result{failed, first, err}
	}()
	testutil.Eventually(t, "the limit's worth of callbacks to run and the rest to be refused", func() bool {
		return running.Load() == int32(limit) && hostStats().CallsRefused-refused0 == uint64(2*limit)
	})
	close(release)
	r := <-done
	if r.err != nil || r.failed != 2*limit || !strings.Contains(r.first, "MaxConcurrentCalls") {
		t.Errorf("Flood(%d) = %d failed, first %q, %v; want %d refused naming MaxConcurrentCalls", 3*limit, r.failed, r.first, r.err, 2*limit)
	}
	if got := running.Load(); got != int32(limit) {
		t.Errorf("%d callbacks ran; want %d", got, limit)
	}
	if n, err := svc.Bounce(&host{svc: svc}, limit-2); err != nil || n != 2*(limit-2) {
		t.Errorf("Bounce(%d) under the limit = %d, %v", limit-2, n, err)
	}
}

// FreshReference: many goroutines pass one func the peer has never seen,
// all at once; every call must find it whole on the other side (a
// reference first imported by several calls at once).
func FreshReference(t *testing.T, svc contract.Service) {
	const rounds, callers = 40, 64
	for round := range rounds {
		f := func(x int) int { return x + round }
		errs := make(chan error, callers)
		start := make(chan struct{})
		for i := range callers {
			go func() {
				<-start
				n, err := svc.Apply(f, i)
				if err == nil && n != i+round {
					err = fmt.Errorf("Apply(f, %d) = %d; want %d", i, n, i+round)
				}
				errs <- err
			}()
		}
		close(start)
		for range callers {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}

// Failures: a method whose last result is an error type (*AppError, with
// a failure registered) never returns nil there for a call that failed:
// a panic on the far side arrives as an *AppError carrying it.
func Failures(t *testing.T, svc contract.Service) {
	if u, ae := svc.GetUser("known"); ae != nil || u == nil || u.Name != "Known" {
		t.Errorf("GetUser(known) = %+v, %v", u, ae)
	}
	if u, ae := svc.GetUser("x"); u != nil || ae == nil || ae.Status != 404 {
		t.Errorf("GetUser(x) = %+v, %v; want the plugin's 404", u, ae)
	}
	if u, ae := svc.PanicUser(); u != nil || ae == nil || ae.Status != 500 || !strings.Contains(ae.Message, "no users today") {
		t.Errorf("PanicUser = %+v, %v; want a 500 *AppError carrying the panic", u, ae)
	}
}

// OutParams: a pointer to data that the callee fills is filled on the
// caller's side when the call returns (copy-restore), given by its type or
// inside an any, and so is one to data holding funcs and objects.
func OutParams(t *testing.T, svc contract.Service) {
	cfg := contract.Settings{Level: 1, Tags: []string{"host"}}
	if err := svc.Fill(&cfg); err != nil || cfg.Name != "filled" || cfg.Level != 2 || !slices.Equal(cfg.Tags, []string{"host", "plugin"}) {
		t.Errorf("Fill(&cfg) = %v; cfg = %+v, want it filled by the plugin", err, cfg)
	}
	var loaded contract.Settings
	if err := svc.FillAny(&loaded); err != nil || loaded.Name != "from json" || loaded.Level != 7 {
		t.Errorf("FillAny(&cfg) = %v; cfg = %+v, want the plugin's JSON in it", err, loaded)
	}
	if err := svc.Fill(nil); err == nil {
		t.Error("Fill(nil) succeeded; the plugin's method dereferences it")
	}

	// Functional options setting a hook and a writer of the caller's
	// (pointers to data holding references) reach the callee's job.
	var done []string
	var log strings.Builder
	name, err := svc.Schedule(context.Background(), "build",
		func(j *contract.Job) { j.OnDone = func(r string) error { done = append(done, r); return nil } },
		func(j *contract.Job) { j.Log = &log; j.Tries++ },
		func(j *contract.Job) { j.Tries++ },
	)
	if err != nil || name != "build" {
		t.Errorf("Schedule = %q, %v; want build", name, err)
	}
	if !slices.Equal(done, []string{"build after 2 tries"}) || log.String() != "ran build" {
		t.Errorf("Schedule's job called OnDone with %q and wrote %q; want [build after 2 tries] and ran build", done, log.String())
	}
}
