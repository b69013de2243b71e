package refbroker

import (
	"fmt"
	"reflect"
)

// Out-parameters (copy-restore). A parameter that is a pointer to plain
// data, given by its static type or inside an any, is how many Go APIs
// take a destination to fill (LoadConfiguration(&cfg), json.Unmarshal's
// v). Such a pointer crosses by value, so the callee fills its own copy;
// to make that visible, the return carries, after the results, the values
// the non-nil pointers point to when the method returns, and the caller
// writes them into its own. This costs the pointee's bytes a second time,
// only for methods with such parameters. Data holding references
// (interfaces, funcs) is restored too, its references crossing as a
// result's do: a functional option (func(*Config)) that sets a hook, or a
// Fill that sets an io.Writer field, reaches the caller's value. Only an
// *http.Request is never restored: it crosses as a request, not as data
// (builtin_http.go).

// outParam says whether, and how, a parameter is restored.
type outParam uint8

const (
	outNone   outParam = iota
	outStatic          // a pointer to plain data
	outAny             // an any, restored when it holds a pointer to registered plain data
)

// outParamOf classifies a parameter of type t.
func outParamOf(t reflect.Type) outParam {
	switch {
	case t == anyType:
		return outAny
	case t.Kind() == reflect.Pointer && classify(t) == kindValue && t != requestType:
		return outStatic
	}
	return outNone
}

// restorable returns what the value of an outAny parameter restores: the
// pointee, its registered name; ok is false if nothing.
func restorable(v reflect.Value) (elem reflect.Value, name string, ok bool) {
	if v.Kind() == reflect.Interface {
		if v.IsNil() {
			return reflect.Value{}, "", false
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Type() == requestType {
		return reflect.Value{}, "", false
	}
	name, ok = registeredName(v.Type())
	return v.Elem(), name, ok
}

// writeOutParams writes, after a return's results, the values the
// out-parameters point to now. args are the method's arguments without
// its context. refs is whether the peer reads pointees holding
// references (featRestoreRefs): a peer of a refplug from before them
// gets the others only, and nothing at all for a method whose
// out-parameters all hold references (it expects no restore there).
func writeOutParams(e *encoder, fp *funcPlan, args []reflect.Value, refs bool) error {
	if !refs && !fp.oldOut {
		return nil
	}
	type entry struct {
		i    int
		name string // for an any: the pointer's registered name
		v    reflect.Value
	}
	var entries []entry
	for i, kind := range fp.outParams {
		switch a := args[i]; kind {
		case outStatic:
			if !a.IsNil() && (refs || !fp.outRefs[i]) {
				entries = append(entries, entry{i: i, v: a.Elem()})
			}
		case outAny:
			if elem, name, ok := restorable(a); ok && (refs || !typeHoldsReference(elem.Type())) {
				entries = append(entries, entry{i: i, name: name, v: elem})
			}
		}
	}
	e.uvarint(uint64(len(entries)))
	for _, en := range entries {
		e.uvarint(uint64(en.i))
		if fp.outParams[en.i] == outAny {
			e.string(en.name)
		}
		vc, err := codecFor(en.v.Type())
		if err != nil {
			return err
		}
		if err := vc.encode(e, en.v); err != nil {
			return fmt.Errorf("out-parameter %d: %w", en.i+1, err)
		}
	}
	return nil
}

// readOutParams reads what writeOutParams wrote into the caller's
// pointers, args (without the context), or, when args is nil (a return
// nobody waits for), into values of its own.
func readOutParams(d *decoder, fp *funcPlan, args []reflect.Value) {
	n := d.length(2)
	for j := 0; j < n && d.err == nil; j++ {
		i := d.uvarint()
		if d.err != nil {
			return
		}
		if i >= uint64(len(fp.outParams)) || fp.outParams[i] == outNone {
			d.fail(malformed("out-parameter %d, which the method does not have", i+1))
			return
		}
		var dst reflect.Value
		if fp.outParams[i] == outStatic {
			t := fp.in[i].t.Elem()
			if args != nil && !args[i].IsNil() {
				dst = args[i].Elem()
			} else {
				dst = reflect.New(t).Elem()
			}
		} else {
			name := d.string()
			if d.err != nil {
				return
			}
			pt, ok := registeredType(name)
			if !ok || pt.Kind() != reflect.Pointer {
				d.fail(fmt.Errorf("out-parameter %d: %s is not a pointer type registered here", i+1, shown(name)))
				return
			}
			if args != nil {
				if elem, _, ok := restorable(args[i]); ok && elem.Type() == pt.Elem() {
					dst = elem
				}
			}
			if !dst.IsValid() {
				dst = reflect.New(pt.Elem()).Elem()
			}
		}
		vc, err := codecFor(dst.Type())
		if err != nil {
			d.fail(err)
			return
		}
		vc.dec(d, dst)
		if d.err != nil {
			d.err = fmt.Errorf("out-parameter %d: %w", i+1, d.err)
		}
	}
}

// Filled buffers. A method that reads into its caller's byte slice
// (methodPlan.fills: Read, ReadAt, …) gets the slice by value like any
// argument, fills its copy, and the return carries, after the results
// and any out-parameters, the first n bytes of that copy, n being the
// method's int result (held to the slice's length): the caller copies
// them into its own slice, so p[:n] holds what was read, as in process.
// What the callee wrote past n, which io.Reader allows as scratch, stays
// on its side.

// writeFilled writes the filled part of p, the callee's copy of the
// buffer, given the method's count n.
func writeFilled(e *encoder, p, n reflect.Value) {
	b := p.Bytes()
	k := min(max(n.Int(), 0), int64(len(b)))
	e.uvarint(uint64(k))
	e.rawBytes(b[:k])
}

// readFilled copies what writeFilled wrote into the caller's buffer
// (restore.args[0]), or drops it when nobody waits, and returns how many
// bytes were filled. More bytes than the buffer holds is a malformed
// return. If placed, the caller read the return itself and the filled
// bytes went straight into its buffer (frameReader.placeable), the frame
// ending before them: then there is nothing to copy.
func readFilled(d *decoder, restore *outArgs, placed bool) int {
	k := d.uvarint()
	if d.err != nil {
		return 0
	}
	if placed {
		if d.remaining() != 0 || restore.args != nil && k > uint64(restore.args[0].Len()) {
			d.fail(malformed("a filled buffer of %d bytes placed with %d bytes after it", k, d.remaining()))
			return 0
		}
		return int(k)
	}
	if k > uint64(d.remaining()) {
		d.fail(malformed("a filled buffer of %d bytes with %d left", k, d.remaining()))
		return 0
	}
	b := d.take(int(k))
	if restore.args == nil {
		return len(b)
	}
	dst := restore.args[0].Bytes()
	if len(b) > len(dst) {
		d.fail(malformed("%d bytes filled into a buffer of %d", len(b), len(dst)))
		return 0
	}
	copy(dst, b)
	return len(b)
}

// checkFilled fails d unless n, the count a method that fills a buffer
// returned, is the number of bytes it filled: a count past the caller's
// buffer (or below zero), from a broken or hostile peer, would have the
// caller's io.ReadAll or io.ReadFull slice past it and panic.
func checkFilled(d *decoder, n reflect.Value, filled int) {
	if !n.IsValid() || !n.CanInt() || n.Int() == int64(filled) {
		return
	}
	d.fail(malformed("the method returned %d, but %d bytes were filled (a read returns the count it filled, 0 <= n <= len(p))", n.Int(), filled))
}
