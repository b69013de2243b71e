package refbroker

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"testing"
)

// walker calls back with errors and hands errors back.
type walker interface {
	// Walk calls fn for each path and returns its first error, wrapped.
	Walk(paths []string, fn func(path string) error) error
	// Echo returns err.
	Echo(err error) error
	// Fail returns an error of the walker's own.
	Fail() error
	// Mine reports whether err is the error Fail returns.
	Mine(err error) (bool, error)
	// Keep keeps err; Kept returns it.
	Keep(err error) error
	Kept() error
}

type walkerProxy struct{ *Ref }

func (p walkerProxy) Walk(paths []string, fn func(path string) error) error {
	return p.Invoke("Walk", []any{paths, fn})
}
func (p walkerProxy) Echo(err error) error { return p.Invoke("Echo", []any{err}) }
func (p walkerProxy) Fail() error          { return p.Invoke("Fail", nil) }
func (p walkerProxy) Mine(err error) (bool, error) {
	var mine bool
	e := p.Invoke("Mine", []any{err}, &mine)
	return mine, e
}

func (p walkerProxy) Keep(err error) error { return p.Invoke("Keep", []any{err}) }
func (p walkerProxy) Kept() error          { return p.Invoke("Kept", nil) }

func init() { RegisterInterface[walker](func(r *Ref) walker { return walkerProxy{r} }) }

type walkerImpl struct {
	own  error
	kept *error
}

func (w walkerImpl) Walk(paths []string, fn func(string) error) error {
	for _, p := range paths {
		if err := fn(p); err != nil {
			return fmt.Errorf("walk %s: %w", p, err)
		}
	}
	return nil
}
func (walkerImpl) Echo(err error) error           { return err }
func (w walkerImpl) Fail() error                  { return w.own }
func (w walkerImpl) Mine(err error) (bool, error) { return err == w.own, nil }
func (w walkerImpl) Keep(err error) error         { *w.kept = err; return nil }
func (w walkerImpl) Kept() error                  { return *w.kept }
func newWalker(name string) walkerImpl {
	return walkerImpl{own: errors.New(name + " failed"), kept: new(error)}
}
func dispenseWalker(t *testing.T, c *Conn) walker {
	t.Helper()
	w, err := Dispense[walker](c, "walker")
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestErrorsComeHome: an error of this side that the peer sends back —
// returned by a callback and wrapped, or given and returned — is the very
// error again, so errors.Is holds for an unregistered sentinel as it
// would in one process.
func TestErrorsComeHome(t *testing.T) {
	client, _ := testPair(t, map[string]any{"walker": newWalker("w")})
	w := dispenseWalker(t, client)

	errStop := errors.New("stop")
	var seen []string
	err := w.Walk([]string{"a", "b", "c"}, func(p string) error {
		seen = append(seen, p)
		if p == "b" {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) || err.Error() != "walk b: stop" || len(seen) != 2 {
		t.Errorf("Walk = %v (errors.Is errStop: %v), seen %q; want walk b: stop, errStop itself inside, seen [a b]", err, errors.Is(err, errStop), seen)
	}

	// Given and returned, wrapped or not.
	for _, e := range []error{errStop, fmt.Errorf("context: %w", errStop), myErr{"value type"}} {
		if got := w.Echo(e); got != e {
			t.Errorf("Echo(%v) = %v (%T); want the same error", e, got, got)
		}
	}

	// The peer's error goes back to it as its own.
	own := w.Fail()
	if mine, err := w.Mine(own); err != nil || !mine {
		t.Errorf("Mine(the walker's own error) = %v, %v; want true", mine, err)
	}
	if mine, err := w.Mine(errors.New(own.Error())); err != nil || mine {
		t.Errorf("Mine(another error with its text) = %v, %v; want false", mine, err)
	}
}

type myErr struct{ s string }

func (e myErr) Error() string { return e.s }

// TestErrorsComeHomeOnlyFromTheirConnection: an error from one peer sent
// to another is numbered there as this side's: the other peer never takes
// it for one of its own.
func TestErrorsComeHomeOnlyFromTheirConnection(t *testing.T) {
	client1, _ := testPair(t, map[string]any{"walker": newWalker("one")})
	client2, _ := testPair(t, map[string]any{"walker": newWalker("two")})
	w1, w2 := dispenseWalker(t, client1), dispenseWalker(t, client2)
	e1, e2 := w1.Fail(), w2.Fail() // each its walker's first error sent
	if mine, err := w2.Mine(e1); err != nil || mine {
		t.Errorf("walker two took walker one's error for its own: %v, %v", mine, err)
	}
	if mine, err := w2.Mine(e2); err != nil || !mine {
		t.Errorf("walker two did not know its own error: %v, %v", mine, err)
	}
	if got := w2.Echo(e1); got != e1 {
		t.Errorf("walker one's error, through walker two: %v (%T); want it as it was", got, got)
	}
}

// TestErrorsComeHomeWhileRemembered: the table keeps the errors sent
// last; one sent before sentErrors others comes back as a copy, its text
// and registered sentinels kept.
func TestErrorsComeHomeWhileRemembered(t *testing.T) {
	client, _ := testPair(t, map[string]any{"walker": newWalker("w")})
	w := dispenseWalker(t, client)
	old := fmt.Errorf("old: %w", io.EOF)
	if err := w.Keep(old); err != nil {
		t.Fatal(err)
	}
	if got := w.Kept(); got != old {
		t.Fatalf("Kept = %v (%T); want the error kept, itself", got, got)
	}
	for i := range sentErrors {
		if err := w.Echo(fmt.Errorf("error %d", i)); err == nil {
			t.Fatal("Echo returned nil")
		}
	}
	got := w.Kept()
	if got == old || got.Error() != old.Error() || !errors.Is(got, io.EOF) {
		t.Errorf("Kept after %d other errors = %v (%T, io.EOF inside: %v); want a copy of the old error, io.EOF inside", sentErrors, got, got, errors.Is(got, io.EOF))
	}
}

// stdErrors returns the standard library's sentinels, wrapped.
type stdErrors interface{ Err(i int) error }

type stdErrorsProxy struct{ *Ref }

func (p stdErrorsProxy) Err(i int) error { return p.Invoke("Err", []any{i}) }

func init() { RegisterInterface[stdErrors](func(r *Ref) stdErrors { return stdErrorsProxy{r} }) }

var standardSentinels = []error{
	errors.ErrUnsupported, io.ErrNoProgress, fs.SkipDir, fs.SkipAll, os.ErrDeadlineExceeded,
	os.ErrProcessDone, net.ErrClosed, bufio.ErrTooLong, http.ErrServerClosed, http.ErrHandlerTimeout,
	http.ErrAbortHandler, http.ErrBodyNotAllowed, http.ErrNoCookie,
}

type stdErrorsImpl struct{}

func (stdErrorsImpl) Err(i int) error {
	if i < 0 {
		return standardSentinels[-i-1] // as itself, not wrapped
	}
	return fmt.Errorf("failed: %w", standardSentinels[i])
}

// TestStandardSentinelsCross: the standard library's sentinels a plugin's
// code meets (errors.ErrUnsupported, fs.SkipDir, os.ErrDeadlineExceeded,
// net.ErrClosed, http.ErrServerClosed, …) cross as themselves, so
// errors.Is holds for errors of the far side's own, and == for one
// returned as it is (fs.WalkDir compares SkipDir so).
func TestStandardSentinelsCross(t *testing.T) {
	client, _ := testPair(t, map[string]any{"std": stdErrorsImpl{}})
	s, err := Dispense[stdErrors](client, "std")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range standardSentinels {
		if err := s.Err(i); !errors.Is(err, want) || err.Error() != "failed: "+want.Error() {
			t.Errorf("Err(%d) = %v; want failed: %v, errors.Is it", i, err, want)
		}
		if err := s.Err(-i - 1); err != want {
			t.Errorf("Err(%d) = %v (%T); want %v itself", -i-1, err, err, want)
		}
	}
}

// sliceErr is an error of an uncomparable type; wrapErr, of a comparable
// one, may hold it.
type sliceErr struct{ s []int }

func (e sliceErr) Error() string { return fmt.Sprint("slice ", e.s) }

type wrapErr struct{ inner error }

func (e wrapErr) Error() string { return "wrap: " + e.inner.Error() }
func (e wrapErr) Unwrap() error { return e.inner }

// TestUncomparableErrorsCross: an error of a comparable type holding an
// uncomparable value (which == and map keys panic on) crosses, and comes
// home, as any other; it failed the call before ("hash of unhashable
// type").
func TestUncomparableErrorsCross(t *testing.T) {
	client, _ := testPair(t, map[string]any{"walker": newWalker("w")})
	w := dispenseWalker(t, client)
	for _, e := range []error{wrapErr{sliceErr{[]int{1}}}, sliceErr{[]int{2}}, fmt.Errorf("outer: %w", wrapErr{sliceErr{[]int{3}}})} {
		for range 2 { // the second time, the table holds one like it
			got := w.Echo(e)
			if got == nil || got.Error() != e.Error() {
				t.Errorf("Echo(%v) = %v; want it back", e, got)
			}
		}
	}
	if err := w.Keep(wrapErr{sliceErr{[]int{4}}}); err != nil {
		t.Fatal(err)
	}
	if got := w.Kept(); got == nil || got.Error() != "wrap: slice [4]" {
		t.Errorf("Kept = %v; want wrap: slice [4]", got)
	}
}
