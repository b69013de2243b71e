package refbroker_test

import (
	"strings"
	"testing"

	"github.com/refplug/refplug/refbroker"
)

type ptrMethods struct{}

func (*ptrMethods) Get() (int, error) { return 1, nil }
func (*ptrMethods) Put(int) error     { return nil }

type valueMethods struct{}

func (valueMethods) Get() (int, error) { return 1, nil }

type count int

func (*count) Inc() error { return nil }

type noMethods struct{ A int }

// TestCheckServable: a value whose methods all have pointer receivers is
// named, with its methods and the fix; so is anything else without
// methods (data, a func, a channel), from which nothing could be
// dispensed; everything that has methods to call passes.
func TestCheckServable(t *testing.T) {
	for _, c := range []struct {
		name string
		obj  any
		want []string // nil: no error
	}{
		{"a pointer", &ptrMethods{}, nil},
		{"a value with value methods", valueMethods{}, nil},
		{"nil", nil, nil},
		{"a func", func(int) int { return 0 }, []string{"func(int) int has no methods, so nothing can be dispensed from it", "serve an object whose methods return or take this func"}},
		{"a struct without methods at all", noMethods{}, []string{"refbroker_test.noMethods has no methods, so nothing can be dispensed from it"}},
		{"a pointer to a struct without methods", &noMethods{}, []string{"*refbroker_test.noMethods has no methods, so nothing"}},
		{"a channel", make(chan int), []string{"chan int has no methods", "channels cannot cross"}},
		{"an int", 42, []string{"int has no methods"}},
		{"a value whose methods need a pointer", ptrMethods{}, []string{"refbroker_test.ptrMethods has no methods", "(Get, Put) have pointer receivers", "serve &value, a *refbroker_test.ptrMethods"}},
		{"a named int whose methods need a pointer", count(0), []string{"refbroker_test.count has no methods", "(Inc)"}},
	} {
		err := refbroker.CheckServable(c.obj)
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s: %v; want no error", c.name, err)
		case c.want != nil && err == nil:
			t.Errorf("%s: no error; want one naming %q", c.name, c.want)
		}
		for _, w := range c.want {
			if err != nil && !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v; want it to contain %q", c.name, err, w)
			}
		}
	}
}
