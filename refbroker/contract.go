package refbroker

import (
	"fmt"
	"reflect"
	"sync"
)

// Contract checks: whether every type reachable from an interface can
// cross (checkContract, at Dispense), whether a root object has the
// methods a Dispense asks for (rootMethods), and the method signatures a
// type is described by to the peer (typeSig; the nested check is in
// typeinfo.go). Errors here carry no package prefix: Dispense and the call
// layer add it.

// contractProblems walks every type reachable from the interface type t
// through method signatures and data, and lists every problem, each with
// the method and parameter it is in: a type that cannot cross, an
// interface without a registered proxy, an error-like result type with no
// registered failure. Dispense runs it, so a broken contract fails at once,
// naming everything to fix, rather than on some later call.
func contractProblems(t reflect.Type) []string {
	ch := &checker{seen: map[reflect.Type]bool{}}
	ch.iface("", t)
	return ch.problems
}

type checker struct {
	seen     map[reflect.Type]bool
	problems []string
}

func (ch *checker) add(where string, err error) {
	ch.problems = append(ch.problems, where+": "+err.Error())
}

// iface checks an interface that crosses by reference, and its methods;
// where says where it was found ("" for the dispensed one).
func (ch *checker) iface(where string, t reflect.Type) {
	if ch.seen[t] {
		return
	}
	ch.seen[t] = true
	if _, ok := proxyFor(t); !ok {
		if where == "" {
			ch.problems = append(ch.problems, noProxyError(t).Error())
		} else {
			ch.add(where, noProxyError(t))
		}
	}
	for i := range t.NumMethod() {
		m := t.Method(i)
		ch.signature(t.String()+"."+m.Name, m.Type)
	}
}

// signature checks a func type's parameters and results.
func (ch *checker) signature(where string, ft reflect.Type) {
	for i := range ft.NumIn() {
		if i == 0 && ft.In(0) == contextType {
			continue
		}
		ch.value(fmt.Sprintf("%s: parameter %d", where, i+1), ft.In(i))
	}
	for i := range ft.NumOut() {
		ch.value(fmt.Sprintf("%s: result %d", where, i+1), ft.Out(i))
	}
	if n := ft.NumOut(); n > 0 {
		if last := ft.Out(n - 1); errorLike(last) && !hasFailure(last) {
			ch.problems = append(ch.problems, fmt.Sprintf("%s: result %d is %s, an error type, and a failed call must not return it nil (hint: call refbroker.RegisterFailure[%s](func(err error) %s { ... }) to say how a failure becomes one)", where, n, last, last, last))
		}
	}
}

// value checks a type that crosses in some position, and the interfaces
// and funcs it holds.
func (ch *checker) value(where string, t reflect.Type) {
	if _, err := codecFor(t); err != nil {
		ch.add(where, err)
		return
	}
	ch.holds(where, t)
}

// holds checks the interfaces and funcs reachable inside t, found where.
func (ch *checker) holds(where string, t reflect.Type) {
	if conv, ok := converters[t]; ok {
		ch.holds(where, conv.wire)
		return
	}
	switch classify(t) {
	case kindInterface:
		ch.iface(where, t)
		return
	case kindFunc:
		if !ch.seen[t] {
			ch.seen[t] = true
			ch.signature(where+": "+t.String(), t)
		}
		return
	case kindValue:
	default:
		return
	}
	if ch.seen[t] {
		return
	}
	ch.seen[t] = true
	if _, _, ok := marshalers(t); ok {
		return
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		ch.holds(where, t.Elem())
	case reflect.Map:
		ch.holds(where, t.Key())
		ch.holds(where, t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() {
				ch.holds(where+": field "+t.String()+"."+f.Name, f.Type)
			}
		}
	}
}

// errorLike reports whether t is a concrete type that implements error: a
// result of such a type is how many APIs report failure (Mattermost's
// *model.AppError), so a failed call must not return it nil.
func errorLike(t reflect.Type) bool {
	return t.Kind() != reflect.Interface && t.Implements(errorType)
}

// rootMethods builds the method set granted on a root object: the methods
// the dispensing side asked for, which must exist on v's concrete type with
// the same signatures. problems lists every missing or different method;
// the plan holds those that match. A method asked for twice counts once
// (each problem would otherwise repeat the peer's strings).
func rootMethods(v reflect.Value, iface string, want [][2]string) (p *ifacePlan, problems []string) {
	t := v.Type()
	p = &ifacePlan{t: t, methods: make(map[string]*methodPlan, min(len(want), t.NumMethod()))}
	seen := make(map[string]bool, min(len(want), 1024))
	for _, w := range want {
		name, sig := w[0], w[1]
		if seen[name] {
			continue
		}
		seen[name] = true
		m, ok := t.MethodByName(name)
		if !ok || !m.IsExported() {
			problem := "missing method " + name
			if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
				if _, ok := reflect.PointerTo(t).MethodByName(name); ok {
					problem += fmt.Sprintf(" (its receiver is a pointer: serve a *%s)", t)
				}
			}
			problems = append(problems, problem)
			continue
		}
		mt := v.Method(m.Index).Type()
		if mt.String() != sig {
			problems = append(problems, fmt.Sprintf("%s is %s in the object, %s in %s", name, mt, sig, iface))
			continue
		}
		fp, err := funcPlanFor(mt)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		p.methods[name] = newMethodPlan(name, iface+"."+name, m.Index, fp)
	}
	return p, problems
}

// typeSig is a type's method signatures, by method name ("" for a func):
// what a type-info message describes.
type typeSig struct {
	name string
	sigs map[string]string
}

var typeSigs sync.Map // reflect.Type -> *typeSig

func sigOf(t reflect.Type) *typeSig {
	if s, ok := typeSigs.Load(t); ok {
		return s.(*typeSig)
	}
	s := &typeSig{name: t.String(), sigs: map[string]string{}}
	if t.Kind() == reflect.Func {
		s.sigs[""] = t.String()
	} else {
		for i := range t.NumMethod() {
			m := t.Method(i)
			s.sigs[m.Name] = m.Type.String()
		}
	}
	actual, _ := typeSigs.LoadOrStore(t, s)
	return actual.(*typeSig)
}
