package scenario

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/refplug/refplug/refbroker"
	"github.com/refplug/refplug/testdata/contract"
)

// Scenarios of references: depth, identity, any, least authority, release.

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

// Any: registered data by value, errors as errors, objects and funcs by
// reference, and unregistered data refused with a hint, never turned into
// a reference the receiver cannot use.
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
	for _, v := range []any{&unregistered{A: 1}, unregistered{A: 1}, []unregistered{{A: 1}}} {
		_, err := svc.EchoAny(v)
		want := fmt.Sprintf("parameter 1: %T cannot cross: it is data of a type not registered for an any (hint: call refbroker.RegisterType(", v)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "EchoAny") {
			t.Errorf("EchoAny(%T) = %v; want it refused, naming the method, the type and the hint", v, err)
		}
	}
	for _, v := range []any{map[string]string{"a": "b"}, []int{1, 2}, json.RawMessage(`{"a":1}`),
		// Pointers to, slices of and maps of registered types need no
		// registration of their own.
		&contract.Point{X: 1}, []*contract.Point{{X: 1}, nil}, map[string][]contract.Point{"k": {{Y: 2}}},
		// User is registered by the code refgen wrote, not by hand.
		contract.User{ID: "u", Name: "U"}, []*contract.User{{ID: "v"}}} {
		if got, err := svc.EchoAny(v); err != nil || !reflect.DeepEqual(got, v) {
			t.Errorf("EchoAny(%#v) = %#v, %v; want it back by value (registered by refbroker)", v, got, err)
		}
	}
	// An error in an any crosses as an error.
	got, err := svc.EchoAny(fmt.Errorf("wrapped: %w", contract.ErrNotFound))
	if e, ok := got.(error); err != nil || !ok || !errors.Is(e, contract.ErrNotFound) || e.Error() != "wrapped: contract: not found" {
		t.Errorf("EchoAny(error) = %#v, %v; want an error matching ErrNotFound", got, err)
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

// Empty reports whether a connection holds no live references or calls.
func Empty(s refbroker.Stats) bool {
	return s.Exports == 0 && s.Imports == 0 && s.Pending == 0
}

// ErrorsComeHome: an error of the caller's that the plugin sends back —
// a callback's sentinel, wrapped by the plugin's Visit — is the caller's
// very error again, so errors.Is holds for a sentinel no one registered.
func ErrorsComeHome(t *testing.T, svc contract.Service) {
	errStop := errors.New("stop here")
	var seen []string
	err := svc.Visit([]string{"a", "b", "c"}, func(p string) error {
		seen = append(seen, p)
		if p == "b" {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) || err.Error() != "visit b: stop here" || !slices.Equal(seen, []string{"a", "b"}) {
		t.Errorf("Visit = %v (errors.Is errStop: %v), seen %q; want visit b: stop here, errStop itself inside, seen [a b]", err, errors.Is(err, errStop), seen)
	}
	if err := svc.Visit([]string{"a"}, func(string) error { return nil }); err != nil {
		t.Errorf("Visit with no error = %v", err)
	}
}
