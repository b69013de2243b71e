// Package scenario holds the broker scenarios that run both in-process
// (refbroker's tests, over net.Pipe) and against a real plugin process
// (host's tests), so the two can never drift apart.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"

	"github.com/refplug/refplug/testdata/contract"
)

// Run runs every scenario against svc, a dispensed contract.Service.
func Run(t *testing.T, svc contract.Service) {
	for _, s := range []struct {
		name string
		fn   func(*testing.T, contract.Service)
	}{
		{"ByValue", ByValue},
		{"Errors", Errors},
		{"Variadic", Variadic},
		{"Callbacks", Callbacks},
		{"ReferencesAtDepth", ReferencesAtDepth},
		{"ObjectsFromObjects", ObjectsFromObjects},
		{"Identity", Identity},
		{"ErrorsComeHome", ErrorsComeHome},
		{"Any", Any},
		{"StaticTypeOnly", StaticTypeOnly},
		{"Context", Context},
		{"Blocked", Blocked},
		{"Panic", Panic},
		{"Reentrant", Reentrant},
		{"FuncWithoutError", FuncWithoutError},
		{"Handlers", Handlers},
		{"Concurrent", Concurrent},
		{"InvokeMistakes", InvokeMistakes},
		{"Release", Release},
		{"Streams", Streams},
		{"StreamEnds", StreamEnds},
		{"BuiltinInterfaces", BuiltinInterfaces},
		{"Grants", Grants},
		{"ContextReason", ContextReason},
		{"FreshReference", FreshReference},
		{"Failures", Failures},
		{"OutParams", OutParams},
		{"FilledBuffers", FilledBuffers},
		{"RandomAccess", RandomAccess},
		{"BrokenStreams", BrokenStreams},
		{"Duplex", Duplex},
		{"FileSystems", FileSystems},
	} {
		t.Run(s.name, func(t *testing.T) { s.fn(t, svc) })
	}
}

// sink records what it is given.
type sink struct {
	mu  sync.Mutex
	got []string
}

func (s *sink) Put(v string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, v)
	return nil
}

func (s *sink) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// thing is a host-side Thing with a method outside Thing.
type thing struct{ name string }

func (t *thing) Name() string   { return t.name }
func (t *thing) Secret() string { return "the secret" }

// ByValue: plain data crosses by value, nil and empty stay apart, unexported
// fields stay home.
func ByValue(t *testing.T, svc contract.Service) {
	when := time.Date(2026, 11, 25, 10, 30, 0, 123, time.UTC)
	in := contract.Doc{
		ID:     "doc-1",
		Tags:   []string{"a", "b"},
		Meta:   map[string]int{"x": 1, "y": -2},
		Loc:    &contract.Point{X: 3, Y: 4},
		When:   when,
		Body:   []byte("hello\x00world"),
		Grid:   [2][2]float64{{1.5, -2}, {3, 4e10}},
		Parts:  []contract.Point{{X: 1, Y: 2}, {X: 3, Y: 4}},
		Extra:  "extra",
		Nested: &contract.Doc{ID: "inner", Meta: map[string]int{}},
	}
	in.SetHidden(7)
	out, err := svc.Echo(in)
	if err != nil {
		t.Fatalf("Echo: %v", err)
	}
	if !out.When.Equal(when) {
		t.Errorf("When = %v, want %v", out.When, when)
	}
	if out.Hidden() != 0 {
		t.Errorf("unexported field crossed: %d", out.Hidden())
	}
	out.When, in.When = time.Time{}, time.Time{}
	in.SetHidden(0)
	if !reflect.DeepEqual(out, in) {
		t.Errorf("Echo round trip:\n got %#v\nwant %#v", out, in)
	}
	if out.Nested.Tags != nil || out.Nested.Meta == nil {
		t.Errorf("nil and empty were not kept apart: Tags=%#v Meta=%#v", out.Nested.Tags, out.Nested.Meta)
	}
	if out.Loc == in.Loc {
		t.Errorf("a pointer to data came back as the same pointer; data must be copied")
	}
}

// Errors: text and wrapping survive; registered sentinels match errors.Is.
func Errors(t *testing.T, svc contract.Service) {
	v, err := svc.Lookup("answer")
	if err != nil || v != "42" {
		t.Fatalf("Lookup(answer) = %q, %v", v, err)
	}
	_, err = svc.Lookup("missing")
	if !errors.Is(err, contract.ErrNotFound) {
		t.Fatalf("errors.Is(%v, ErrNotFound) = false", err)
	}
	if want := `lookup "missing": contract: not found`; err.Error() != want {
		t.Errorf("error text = %q, want %q", err.Error(), want)
	}
	// An error whose own Is makes the match (an *fs.PathError wrapping
	// ENOENT is fs.ErrNotExist) matches alike on this side.
	err = svc.OpenFile("/no/such/file/refplug")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(fmt.Sprint(err), "no such file") {
		t.Errorf("OpenFile(missing) = %v; want errors.Is fs.ErrNotExist", err)
	}
	// A registered error type crosses as itself, anywhere in a %w chain.
	err = svc.Fail(7)
	var ce *contract.CodeError
	if !errors.As(err, &ce) || ce.Code != 7 || ce.Msg != "as asked" {
		t.Errorf("Fail(7) = %v; want errors.As to find *CodeError{7}", err)
	}
	if want := "failing on purpose: code 7: as asked"; fmt.Sprint(err) != want {
		t.Errorf("Fail(7) text = %q; want %q", err, want)
	}
}

// Variadic parameters cross as their slice.
func Variadic(t *testing.T, svc contract.Service) {
	if n, err := svc.Sum(1, 2, 3, 4); err != nil || n != 10 {
		t.Errorf("Sum(1,2,3,4) = %d, %v", n, err)
	}
	if n, err := svc.Sum(); err != nil || n != 0 {
		t.Errorf("Sum() = %d, %v", n, err)
	}
}

// Callbacks: a host func passed to the plugin is called back.
func Callbacks(t *testing.T, svc contract.Service) {
	if n, err := svc.Apply(func(x int) int { return x * 2 }, 21); err != nil || n != 42 {
		t.Errorf("Apply = %d, %v; want 42", n, err)
	}
	calls := 0
	n, err := svc.ApplyN(func(x int) int { calls++; return x + 1 }, 100)
	if err != nil || n != 100 || calls != 100 {
		t.Errorf("ApplyN = %d, %v with %d calls; want 100 and 100 calls", n, err, calls)
	}
}

// Context: deadline and cancellation propagate; the caller returns promptly
// even when the callee ignores its context.
func Context(t *testing.T, svc contract.Service) {
	if _, ok, err := svc.Deadline(context.Background()); err != nil || ok {
		t.Errorf("Deadline(background) = %v, %v; want no deadline", ok, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	left, ok, err := svc.Deadline(ctx)
	cancel()
	if err != nil || !ok || left <= 59*time.Minute || left > time.Hour {
		t.Errorf("Deadline(1h) = %v, %v, %v", left, ok, err)
	}

	before, _ := svc.Cancelled()
	ctx, cancel = context.WithCancel(context.Background())
	err = svc.Wait(ctx, cancel) // the plugin calls cancel back, then waits
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Wait after cancel = %v; want context.Canceled", err)
	}
	testutil.Eventually(t, "the plugin's context to be cancelled", func() bool {
		n, _ := svc.Cancelled()
		return n > before
	})

	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	err = svc.Wait(ctx, func() {})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait past deadline = %v; want context.DeadlineExceeded", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = svc.Hang(ctx) // ignores its context
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Hang = %v; want context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Hang returned after %v; the caller must not wait for a callee that ignores its context", el)
	}
	if err := svc.Unhang(); err != nil {
		t.Errorf("Unhang: %v", err)
	}
}

// Blocked: a call that blocks until another call releases it holds up
// neither that call nor any other. (The serving side may run a call on its
// reader; the reader must move on when the call blocks.)
func Blocked(t *testing.T, svc contract.Service) {
	gate := fmt.Sprintf("gate-%d", time.Now().UnixNano())
	done := make(chan error, 1)
	go func() { done <- svc.Block(gate) }()
	// within runs f, failing the test if it does not return in 10 s (a
	// serving side that stopped reading would never answer).
	within := func(what string, f func() error) {
		t.Helper()
		ch := make(chan error, 1)
		go func() { ch <- f() }()
		select {
		case err := <-ch:
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not return within 10 s while another call was blocked", what)
		}
	}
	testutil.Eventually(t, "Block to be waiting", func() bool {
		var blocked bool
		within("Blocked", func() (err error) { blocked, err = svc.Blocked(gate); return err })
		return blocked
	})
	within("Sum", func() error {
		if n, err := svc.Sum(1, 2); err != nil || n != 3 {
			return fmt.Errorf("= %d, %v; want 3", n, err)
		}
		return nil
	})
	within("Open", func() error { return svc.Open(gate) })
	within("Block after Open", func() error { return <-done })
}

// Panic: a panic in the called method comes back as an error; serving goes on.
func Panic(t *testing.T, svc contract.Service) {
	_, err := svc.Panic("boom")
	if err == nil || !strings.Contains(err.Error(), "panicked: boom") || !strings.Contains(err.Error(), "Panic") {
		t.Errorf("Panic = %v; want an error naming the method and the panic value", err)
	}
	if n, err := svc.Sum(1); err != nil || n != 1 {
		t.Errorf("after a panic, Sum = %d, %v", n, err)
	}
	// A callback without an error result that panics returns zero values
	// to its caller (the failure is logged); nothing crashes.
	n, err := svc.Apply(func(int) int { panic("host side") }, 1)
	if err != nil || n != 0 {
		t.Errorf("Apply with a panicking callback = %d, %v; want 0, nil", n, err)
	}
	if n, err := svc.Apply(func(x int) int { return x }, 3); err != nil || n != 3 {
		t.Errorf("after a panicking callback, Apply = %d, %v", n, err)
	}
}

type host struct {
	svc contract.Service
}

func (h *host) Ping(depth int) (int, error) {
	n, err := h.svc.Bounce(h, depth)
	return n + 1, err
}

// Reentrant: host → plugin → host → plugin ... never deadlocks.
func Reentrant(t *testing.T, svc contract.Service) {
	h := &host{svc: svc}
	n, err := svc.Bounce(h, 8)
	if err != nil || n != 16 {
		t.Errorf("Bounce(8) = %d, %v; want 16", n, err)
	}
}

// FuncWithoutError: a func with no error result is called back too.
func FuncWithoutError(t *testing.T, svc contract.Service) {
	var got []string
	if err := svc.Observe(func(s string) { got = append(got, s) }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[observed]" {
		t.Errorf("Observe got %v", got)
	}
}

// Handlers: a callback the plugin calls from a goroutine of its own (an
// event handler) runs while the host calls nothing, and never holds up the
// host's calls: each handler here waits until the call that started it
// has returned, so a host that served it on that call's goroutine would
// never return. Plain calls first, so the host's callers read their own
// returns when the handlers' calls come.
func Handlers(t *testing.T, svc contract.Service) {
	for round := range 20 {
		for range 3 {
			if _, err := svc.Lookup("answer"); err != nil {
				t.Fatal(err)
			}
		}
		returned := make(chan struct{})
		got := make(chan int, 1)
		errc := make(chan error, 1)
		go func() {
			errc <- svc.Later(func(n int) {
				<-returned
				got <- n
			}, round)
		}()
		if err := testutil.Receive(t, errc, 10*time.Second, "Later did not return while the handler it started waited for that return"); err != nil {
			t.Fatal(err)
		}
		close(returned)
		if n := testutil.Receive(t, got, 10*time.Second, "the handler did not run while the host called nothing"); n != round {
			t.Fatalf("the handler got %d; want %d", n, round)
		}
	}
}

// Concurrent: many goroutines call at once, with callbacks and objects.
func Concurrent(t *testing.T, svc contract.Service) {
	const workers, rounds = 16, 25
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				c, err := svc.NewCounter(fmt.Sprint("w", w))
				if err != nil {
					return err
				}
				for i := 1; i <= rounds; i++ {
					if n, err := svc.Sum(w, i); err != nil || n != w+i {
						return fmt.Errorf("svc.Sum(%d, %d) = %d, %v", w, i, n, err)
					}
					if n, err := svc.Apply(func(x int) int { return x + w }, i); err != nil || n != i+w {
						return fmt.Errorf("svc.Apply = %d, %v", n, err)
					}
					if n, err := c.Add(1); err != nil || n != i {
						return fmt.Errorf("c.Add = %d, %v; want %d", n, err, i)
					}
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
