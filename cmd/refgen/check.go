package main

import (
	"fmt"
	"go/types"
	"strings"
)

// Checking a contract at generation time, with the rules and the words
// refbroker's Dispense uses (refbroker/classify.go, codec.go,
// composite.go, contract.go), so that a method whose types cannot cross is
// refused here rather than when a host first dispenses the interface. The
// checks are on go/types, as refgen never runs the contract's code.

// crossProblems lists every parameter and result of iface's methods that
// cannot cross, each with where it is.
func crossProblems(pkg *types.Package, name string, iface *types.Interface) []string {
	ch := &crossChecker{pkg: pkg, seen: map[types.Type]bool{}}
	for i := range iface.NumMethods() {
		m := iface.Method(i)
		ch.signature(pkg.Name()+"."+name+"."+m.Name(), m.Type().(*types.Signature))
	}
	return ch.problems
}

type crossChecker struct {
	pkg      *types.Package
	seen     map[types.Type]bool
	problems []string
}

// typeName is how reflect's String writes t: packages by name, and
// "struct { A int }" where go/types writes "struct{A int}".
func typeName(t types.Type) string {
	s := types.TypeString(t, func(p *types.Package) string { return p.Name() })
	if !strings.Contains(s, "{") {
		return s
	}
	var b strings.Builder
	var spaced []bool // per open brace: whether its close gets a space
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "struct{") || strings.HasPrefix(s[i:], "interface{"):
			kw := s[i : i+strings.IndexByte(s[i:], '{')]
			i += len(kw)
			b.WriteString(kw + " {")
			empty := i+1 < len(s) && s[i+1] == '}'
			if !empty {
				b.WriteByte(' ')
			}
			spaced = append(spaced, !empty)
		case s[i] == '{':
			b.WriteByte('{')
			spaced = append(spaced, false)
		case s[i] == '}' && len(spaced) > 0:
			if spaced[len(spaced)-1] {
				b.WriteByte(' ')
			}
			spaced = spaced[:len(spaced)-1]
			b.WriteByte('}')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func (ch *crossChecker) signature(where string, sig *types.Signature) {
	for i := range sig.Params().Len() {
		t := sig.Params().At(i).Type()
		if i == 0 && isContext(t) {
			continue
		}
		ch.value(fmt.Sprintf("%s: parameter %d", where, i+1), t)
	}
	for i := range sig.Results().Len() {
		ch.value(fmt.Sprintf("%s: result %d", where, i+1), sig.Results().At(i).Type())
	}
}

// value checks a type in some position; a problem is reported with the
// path to it inside the value, as refbroker's typeError writes it.
func (ch *crossChecker) value(where string, t types.Type) {
	if path, bad, why := cannotCross(t, nil, map[types.Type]bool{}); bad != nil {
		steps := append([]string{where}, path...)
		ch.problems = append(ch.problems, fmt.Sprintf("%s: %s cannot cross: %s", strings.Join(steps, ": "), typeName(bad), why))
		return
	}
	ch.funcs(where, t, map[types.Type]bool{})
}

// funcs checks the signatures of the funcs a value of t holds (they cross
// by reference, and their parameters must cross in turn).
func (ch *crossChecker) funcs(where string, t types.Type, seen map[types.Type]bool) {
	if seen[t] || converted(t) {
		return
	}
	seen[t] = true
	switch u := t.Underlying().(type) {
	case *types.Signature:
		if !ch.seen[t] {
			ch.seen[t] = true
			ch.signature(where+": "+typeName(t), u)
		}
	case *types.Pointer:
		ch.funcs(where, u.Elem(), seen)
	case *types.Slice:
		ch.funcs(where, u.Elem(), seen)
	case *types.Array:
		ch.funcs(where, u.Elem(), seen)
	case *types.Map:
		ch.funcs(where, u.Elem(), seen)
	case *types.Struct:
		if marshals(t) {
			return
		}
		for i := range u.NumFields() {
			if f := u.Field(i); f.Exported() {
				ch.funcs(where+": field "+typeName(t)+"."+f.Name(), f.Type(), seen)
			}
		}
	}
}

// cannotCross finds the part of t that cannot cross by value: its path
// inside t, the type and why; nil if t can cross.
func cannotCross(t types.Type, path []string, seen map[types.Type]bool) ([]string, types.Type, string) {
	if seen[t] || converted(t) {
		return nil, nil, ""
	}
	seen[t] = true
	if isContext(t) {
		return path, t, "a context.Context crosses only as the first parameter of a method or func"
	}
	switch u := t.Underlying().(type) {
	case *types.Chan:
		return path, t, "channels and unsafe pointers are not supported (hint: pass a func or an interface instead)"
	case *types.Basic:
		if u.Kind() == types.UnsafePointer {
			return path, t, "channels and unsafe pointers are not supported"
		}
	case *types.Interface, *types.Signature:
		return nil, nil, "" // by reference
	}
	if marshals(t) {
		return nil, nil, ""
	}
	switch u := t.Underlying().(type) {
	case *types.Pointer:
		return cannotCross(u.Elem(), append(path, "pointer to "+typeName(u.Elem())), seen)
	case *types.Slice:
		return cannotCross(u.Elem(), append(path, "element of "+typeName(t)), seen)
	case *types.Array:
		return cannotCross(u.Elem(), append(path, "element of "+typeName(t)), seen)
	case *types.Map:
		if holdsReference(u.Key(), map[types.Type]bool{}) {
			return path, t, "map keys must be plain data, not interfaces or funcs"
		}
		if p, bad, why := cannotCross(u.Key(), append(path, "key of "+typeName(t)), seen); bad != nil {
			return p, bad, why
		}
		return cannotCross(u.Elem(), append(path, "value of "+typeName(t)), seen)
	case *types.Struct:
		exported := 0
		for i := range u.NumFields() {
			f := u.Field(i)
			if !f.Exported() {
				continue
			}
			exported++
			if p, bad, why := cannotCross(f.Type(), append(slicesClone(path), "field "+typeName(t)+"."+f.Name()), seen); bad != nil {
				return p, bad, why
			}
		}
		if exported == 0 && u.NumFields() > 0 {
			return path, t, "it has no exported fields (hint: export them, or implement encoding.BinaryMarshaler and BinaryUnmarshaler)"
		}
	}
	return nil, nil, ""
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// holdsReference reports whether a value of t can hold something that
// crosses by reference.
func holdsReference(t types.Type, seen map[types.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	if isError(t) || isContext(t) || marshals(t) {
		return false
	}
	switch u := t.Underlying().(type) {
	case *types.Interface, *types.Signature:
		return true
	case *types.Pointer:
		return holdsReference(u.Elem(), seen)
	case *types.Slice:
		return holdsReference(u.Elem(), seen)
	case *types.Array:
		return holdsReference(u.Elem(), seen)
	case *types.Map:
		return holdsReference(u.Key(), seen) || holdsReference(u.Elem(), seen)
	case *types.Struct:
		for i := range u.NumFields() {
			if f := u.Field(i); f.Exported() && holdsReference(f.Type(), seen) {
				return true
			}
		}
	}
	return false
}

func isContext(t types.Type) bool { return isNamed(t, "context", "Context") }
func isError(t types.Type) bool   { return types.Identical(t, types.Universe.Lookup("error").Type()) }

func isNamed(t types.Type, pkg, name string) bool {
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == pkg && n.Obj().Name() == name
}

// marshals reports whether t marshals itself as gob would use it
// (GobEncode/GobDecode or MarshalBinary/UnmarshalBinary), crossing as its
// bytes.
func marshals(t types.Type) bool {
	if _, ok := t.Underlying().(*types.Pointer); ok {
		return false
	}
	if _, ok := t.Underlying().(*types.Interface); ok {
		return false
	}
	has := func(name string) bool {
		for _, recv := range []types.Type{t, types.NewPointer(t)} {
			if obj, _, _ := types.LookupFieldOrMethod(recv, true, nil, name); obj != nil {
				if _, ok := obj.(*types.Func); ok {
					return true
				}
			}
		}
		return false
	}
	return (has("GobEncode") && has("GobDecode")) || (has("MarshalBinary") && has("UnmarshalBinary"))
}

// converted reports whether refbroker carries t through a converter of its
// own (builtin_http.go): an *http.Request crosses by value as the fields
// that can.
func converted(t types.Type) bool {
	p, ok := t.(*types.Pointer)
	return ok && isNamed(p.Elem(), "net/http", "Request")
}
