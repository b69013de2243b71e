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

// checkContract walks every type reachable from the interface type t
// through method signatures and data, and reports the first that cannot
// cross or is an interface without a registered proxy. Dispense runs it, so
// a broken contract fails at once rather than on some later call.
func checkContract(t reflect.Type) error {
	return checkType(t, map[reflect.Type]bool{})
}

func checkType(t reflect.Type, seen map[reflect.Type]bool) error {
	if seen[t] {
		return nil
	}
	seen[t] = true
	switch classify(t) {
	case kindError, kindAny:
		return nil
	case kindInterface:
		if _, ok := proxyFor(t); !ok {
			return noProxyError(t)
		}
		if _, err := ifacePlanFor(t); err != nil {
			return err
		}
		for i := range t.NumMethod() {
			m := t.Method(i)
			if err := checkSignature(m.Type, seen); err != nil {
				return fmt.Errorf("%w (in %s.%s)", err, t, m.Name)
			}
		}
		return nil
	case kindFunc:
		if _, err := funcPlanFor(t); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		return checkSignature(t, seen)
	case kindContext, kindUnsupported:
		_, err := codecFor(t)
		return err
	}
	if _, err := codecFor(t); err != nil {
		return err
	}
	if _, _, ok := marshalers(t); ok {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return checkType(t.Elem(), seen)
	case reflect.Map:
		if err := checkType(t.Key(), seen); err != nil {
			return err
		}
		return checkType(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() {
				if err := checkType(f.Type, seen); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func checkSignature(ft reflect.Type, seen map[reflect.Type]bool) error {
	for i := range ft.NumIn() {
		if i == 0 && ft.In(0) == contextType {
			continue
		}
		if err := checkType(ft.In(i), seen); err != nil {
			return err
		}
	}
	for i := range ft.NumOut() {
		if err := checkType(ft.Out(i), seen); err != nil {
			return err
		}
	}
	return nil
}

// rootMethods builds the method set granted on a root object: the methods
// the dispensing side asked for, which must exist on v's concrete type with
// the same signatures. problems lists every missing or different method;
// the plan holds those that match.
func rootMethods(v reflect.Value, iface string, want [][2]string) (p *ifacePlan, problems []string) {
	t := v.Type()
	p = &ifacePlan{t: t, methods: make(map[string]*methodPlan, len(want))}
	for _, w := range want {
		name, sig := w[0], w[1]
		m, ok := t.MethodByName(name)
		if !ok || !m.IsExported() {
			problems = append(problems, "missing method "+name)
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
		p.methods[name] = &methodPlan{name: name, full: iface + "." + name, index: m.Index, plan: fp}
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
