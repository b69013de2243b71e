// Package scenario holds the broker scenarios that run both in-process
// (refbroker's tests, over net.Pipe) and against a real plugin process
// (host's tests), so the two can never drift apart.
package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/refplug/refplug/refbroker"
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
		{"Any", Any},
		{"StaticTypeOnly", StaticTypeOnly},
		{"Context", Context},
		{"Blocked", Blocked},
		{"Panic", Panic},
		{"Reentrant", Reentrant},
		{"FuncWithoutError", FuncWithoutError},
		{"Concurrent", Concurrent},
		{"InvokeMistakes", InvokeMistakes},
		{"Release", Release},
		{"Streams", Streams},
		{"BuiltinInterfaces", BuiltinInterfaces},
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

// ReferencesAtDepth: interfaces and funcs inside slices, maps and struct
// fields cross by reference.
func ReferencesAtDepth(t *testing.T, svc contract.Service) {
	a, b, m := &sink{}, &sink{}, &sink{}
	if err := svc.Fanout([]contract.Sink{a, b}, map[string]contract.Sink{"m": m}, "hi"); err != nil {
		t.Fatalf("Fanout: %v", err)
	}
	if got := fmt.Sprint(a.all(), b.all(), m.all()); got != "[hi#0] [hi#1] [hi@m]" {
		t.Errorf("sinks got %s", got)
	}
	var saved []string
	s := &sink{}
	d := contract.Doc{ID: "d7", OnSave: func(id string) error { saved = append(saved, id); return nil }, Sink: s}
	if err := svc.CallFields(d); err != nil {
		t.Fatalf("CallFields: %v", err)
	}
	if fmt.Sprint(saved, s.all()) != "[d7] [d7]" {
		t.Errorf("OnSave got %v, Sink got %v", saved, s.all())
	}
	// A func field that fails reports its error through the plugin.
	d.OnSave = func(string) error { return fmt.Errorf("disk full: %w", contract.ErrNotFound) }
	err := svc.CallFields(d)
	if !errors.Is(err, contract.ErrNotFound) || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("CallFields with failing OnSave = %v", err)
	}
}

// ObjectsFromObjects: the plugin returns objects whose methods return more.
func ObjectsFromObjects(t *testing.T, svc contract.Service) {
	c, err := svc.NewCounter("root")
	if err != nil {
		t.Fatalf("NewCounter: %v", err)
	}
	c.Add(2)
	if n, err := c.Add(3); err != nil || n != 5 {
		t.Errorf("Add = %d, %v; want 5", n, err)
	}
	child, err := c.Child("a")
	if err != nil {
		t.Fatalf("Child: %v", err)
	}
	grand, err := child.Child("b")
	if err != nil {
		t.Fatalf("Child: %v", err)
	}
	if l, err := grand.Label(); err != nil || l != "root/a/b" {
		t.Errorf("Label = %q, %v", l, err)
	}
}

// Identity: a reference coming home arrives as the original object.
func Identity(t *testing.T, svc contract.Service) {
	th := &thing{name: "mine"}
	got, err := svc.Same(th)
	if err != nil {
		t.Fatalf("Same: %v", err)
	}
	if got != contract.Thing(th) {
		t.Errorf("Same returned %T %v, not the host's own *thing", got, got)
	}
	if _, err := svc.Keep(th); err != nil {
		t.Fatal(err)
	}
	if same, err := svc.Keep(th); err != nil || !same {
		t.Errorf("Keep twice: the plugin got different proxies for one object (%v, %v)", same, err)
	}
	if k, err := svc.Kept(); err != nil || k != contract.Thing(th) {
		t.Errorf("Kept = %T, %v; want the host's own *thing", k, err)
	}
	if _, err := svc.Keep(nil); err != nil { // let the plugin drop its proxy
		t.Errorf("Keep(nil): %v", err)
	}
	// Funcs and interfaces inside data come home as the originals too.
	s := &sink{}
	onSave := func(string) error { return nil }
	out, err := svc.Echo(contract.Doc{OnSave: onSave, Sink: s})
	if err != nil {
		t.Fatalf("Echo: %v", err)
	}
	if out.Sink != contract.Sink(s) {
		t.Errorf("Echo returned Sink %T, not the host's own *sink", out.Sink)
	}
	if funcAddr(out.OnSave) != funcAddr(onSave) {
		t.Errorf("Echo returned a different OnSave func, not the host's own")
	}
	c, err := svc.NewCounter("x")
	if err != nil {
		t.Fatal(err)
	}
	if mine, err := svc.IsMine(c); err != nil || !mine {
		t.Errorf("IsMine = %v, %v; the plugin did not get its own *counter back", mine, err)
	}
}

// funcAddr is the address of the closure behind a func value: equal for
// the same func value, different for a proxy standing in for it.
func funcAddr(f func(string) error) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&f))
}

type unregistered struct{ A int }

// Any: registered data by value, anything else by reference.
func Any(t *testing.T, svc contract.Service) {
	for _, v := range []any{42, "s", 2.5, true, []byte("b"), contract.Point{X: 1, Y: 2}, map[string]any{"k": "v", "n": 1}, time.Duration(5)} {
		got, err := svc.EchoAny(v)
		if err != nil || !reflect.DeepEqual(got, v) {
			t.Errorf("EchoAny(%#v) = %#v, %v", v, got, err)
		}
	}
	if got, err := svc.EchoAny(nil); err != nil || got != nil {
		t.Errorf("EchoAny(nil) = %#v, %v", got, err)
	}
	th := &thing{}
	if got, err := svc.EchoAny(th); err != nil || got != any(th) {
		t.Errorf("EchoAny(*thing) = %#v, %v; want the same pointer back", got, err)
	}
	u := &unregistered{A: 1}
	if got, err := svc.EchoAny(u); err != nil || got != any(u) {
		t.Errorf("EchoAny(unregistered) = %#v, %v; want the same pointer back", got, err)
	}
}

// StaticTypeOnly: a reference grants only the methods of its static type.
func StaticTypeOnly(t *testing.T, svc contract.Service) {
	got, err := svc.Narrow(&thing{name: "n"})
	if err != nil {
		t.Fatalf("Narrow: %v", err)
	}
	if strings.Contains(got, "asserted Secret") || strings.Contains(got, "Invoke got") {
		t.Errorf("the plugin reached a method outside Thing: %s", got)
	}
	if !strings.Contains(got, "Invoke refused") || !strings.Contains(got, "no method Secret") {
		t.Errorf("Narrow = %q; want the broker to refuse Secret by name", got)
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
	Eventually(t, "the plugin's context to be cancelled", func() bool {
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
	Eventually(t, "Block to be waiting", func() bool {
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
						return fmt.Errorf("Sum(%d, %d) = %d, %v", w, i, n, err)
					}
					if n, err := svc.Apply(func(x int) int { return x + w }, i); err != nil || n != i+w {
						return fmt.Errorf("Apply = %d, %v", n, err)
					}
					if n, err := c.Add(1); err != nil || n != i {
						return fmt.Errorf("Add = %d, %v; want %d", n, err, i)
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

// InvokeMistakes: a proxy's mistakes are reported by name, not panics.
func InvokeMistakes(t *testing.T, svc contract.Service) {
	inv, ok := svc.(interface {
		Invoke(string, []any, ...any) error
	})
	if !ok {
		t.Fatalf("the Service proxy %T does not embed *refbroker.Ref", svc)
	}
	var n int
	for _, c := range []struct {
		method  string
		args    []any
		results []any
		want    string
	}{
		{"Nope", nil, nil, "has no method Nope"},
		{"Sum", []any{"x"}, []any{&n}, "argument 1 is string, want []int"},
		{"Sum", nil, []any{&n}, "got 0 arguments, want 1"},
		{"Sum", []any{[]int{1}}, nil, "got 0 result pointers, want 1"},
		{"Sum", []any{[]int{1}}, []any{new(string)}, "result 1 is *string, want *int"},
	} {
		err := inv.Invoke(c.method, c.args, c.results...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Invoke(%s, %v) = %v; want an error containing %q", c.method, c.args, err, c.want)
		}
	}
}

// Release: a released proxy fails with ErrReleased.
func Release(t *testing.T, svc contract.Service) {
	c, err := svc.NewCounter("r")
	if err != nil {
		t.Fatal(err)
	}
	if err := refbroker.Release(c); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if _, err := c.Add(1); !errors.Is(err, refbroker.ErrReleased) {
		t.Errorf("Add after Release = %v; want ErrReleased", err)
	}
	if err := refbroker.Release(c); err != nil {
		t.Errorf("second Release = %v; want nil", err)
	}
	if err := refbroker.Release(&thing{}); err == nil || !strings.Contains(err.Error(), "not a proxy") {
		t.Errorf("Release(non-proxy) = %v", err)
	}
}

// Eventually polls cond until it holds or 10 seconds pass.
func Eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Empty reports whether a connection holds no live references or calls.
func Empty(s refbroker.Stats) bool {
	return s.Exports == 0 && s.Imports == 0 && s.Pending == 0
}

// Streams: multi-megabyte copies through io.Reader and io.Writer proxies,
// both ways.
func Streams(t *testing.T, svc contract.Service) {
	data := contract.Pattern(4<<20 + 123)
	var out bytes.Buffer
	n, err := svc.Copy(&out, bytes.NewReader(data)) // the plugin reads and writes the host's
	if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Errorf("Copy through the plugin: %d bytes, %v; equal = %v", n, err, bytes.Equal(out.Bytes(), data))
	}
	rc, err := svc.Producer(3 << 20) // the host reads the plugin's
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, contract.Pattern(3<<20)) {
		t.Errorf("reading the plugin's reader: %d bytes, %v", len(got), err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wc, err := svc.Consumer() // the host writes to the plugin's
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(wc, bytes.NewReader(data)); err != nil {
		t.Errorf("writing to the plugin's writer: %v", err)
	}
	if err := wc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	cn, sum, closed, err := svc.Consumed()
	if err != nil || cn != len(data) || sum != contract.Sum(data) || !closed {
		t.Errorf("Consumed = %d, closed %v, %v; want %d bytes, the same checksum, closed", cn, closed, err, len(data))
	}
}

type stringer string

func (s stringer) String() string { return string(s) }

// BuiltinInterfaces: fmt.Stringer crosses without a contract proxy, and an
// iter.Seq result works as the func it is, early stop included.
func BuiltinInterfaces(t *testing.T, svc contract.Service) {
	if got, err := svc.Describe(stringer("me")); err != nil || got != "described: me" {
		t.Errorf("Describe = %q, %v", got, err)
	}
	seq, err := svc.Count(10)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for v := range seq {
		got = append(got, v)
	}
	if fmt.Sprint(got) != "[0 1 2 3 4 5 6 7 8 9]" {
		t.Errorf("ranging over the plugin's iter.Seq: %v", got)
	}
	got = nil
	for v := range seq {
		if v == 3 {
			break
		}
		got = append(got, v)
	}
	if fmt.Sprint(got) != "[0 1 2]" {
		t.Errorf("breaking out of the plugin's iter.Seq: %v", got)
	}
	seq2, err := svc.Enumerate([]string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	var pairs []string
	for i, w := range seq2 {
		pairs = append(pairs, fmt.Sprintf("%d:%s", i, w))
	}
	if fmt.Sprint(pairs) != "[0:a 1:b]" {
		t.Errorf("ranging over the plugin's iter.Seq2: %v", pairs)
	}
}
