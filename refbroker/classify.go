package refbroker

import (
	"context"
	"encoding"
	"encoding/gob"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// The type layer: this file classifies types (how each crosses),
// codec.go and composite.go build the codecs that write and read values,
// plan.go the call plans of funcs and interfaces, and contract.go the
// checks of a contract. Every reflect.Type analysis is done once per type
// and cached; the call path only looks plans up.

var (
	errorType             = reflect.TypeFor[error]()
	intType               = reflect.TypeFor[int]()
	contextType           = reflect.TypeFor[context.Context]()
	anyType               = reflect.TypeFor[any]()
	gobEncoderType        = reflect.TypeFor[gob.GobEncoder]()
	gobDecoderType        = reflect.TypeFor[gob.GobDecoder]()
	binaryMarshalerType   = reflect.TypeFor[encoding.BinaryMarshaler]()
	binaryUnmarshalerType = reflect.TypeFor[encoding.BinaryUnmarshaler]()
)

// kind says how a value of a type crosses.
type kind uint8

const (
	kindValue       kind = iota // by value (data; may hold references inside)
	kindError                   // the error interface: by value, chain kept
	kindContext                 // context.Context: only as a first parameter
	kindInterface               // an interface with methods: by reference
	kindAny                     // an empty interface: data if registered, else by reference
	kindFunc                    // a func: by reference
	kindUnsupported             // cannot cross
)

// classify is the one place that decides how a type crosses.
func classify(t reflect.Type) kind {
	switch {
	case t == errorType:
		return kindError
	case t == contextType:
		return kindContext
	}
	switch t.Kind() {
	case reflect.Interface:
		if t.NumMethod() == 0 {
			return kindAny
		}
		return kindInterface
	case reflect.Func:
		return kindFunc
	case reflect.Chan, reflect.UnsafePointer, reflect.Invalid:
		return kindUnsupported
	}
	return kindValue
}

// marshalers reports whether t marshals itself, as gob would use it.
func marshalers(t reflect.Type) (encIface, decIface reflect.Type, ok bool) {
	if t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface {
		return nil, nil, false
	}
	pt := reflect.PointerTo(t)
	for _, pair := range [][2]reflect.Type{{gobEncoderType, gobDecoderType}, {binaryMarshalerType, binaryUnmarshalerType}} {
		if (t.Implements(pair[0]) || pt.Implements(pair[0])) && pt.Implements(pair[1]) {
			return pair[0], pair[1], true
		}
	}
	return nil, nil, false
}

// typeHoldsReference is holdsReference, remembered per type.
func typeHoldsReference(t reflect.Type) bool {
	if v, ok := holdsRefs.Load(t); ok {
		return v.(bool)
	}
	h := holdsReference(t, map[reflect.Type]bool{})
	holdsRefs.Store(t, h)
	return h
}

var holdsRefs sync.Map // reflect.Type -> bool

// holdsReference reports whether a value of t can contain something that
// crosses by reference.
func holdsReference(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch classify(t) {
	case kindInterface, kindFunc, kindAny:
		return true
	case kindError, kindContext, kindUnsupported:
		return false
	}
	if _, _, ok := marshalers(t); ok {
		return false
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return holdsReference(t.Elem(), seen)
	case reflect.Map:
		return holdsReference(t.Key(), seen) || holdsReference(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && holdsReference(f.Type, seen) {
				return true
			}
		}
	}
	return false
}

// typeError says a type cannot cross. path names where inside a value.
type typeError struct {
	path []string
	t    reflect.Type
	why  string
}

func (e *typeError) Error() string {
	var b strings.Builder
	for i := len(e.path) - 1; i >= 0; i-- {
		b.WriteString(e.path[i])
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "%s cannot cross: %s", e.t, e.why)
	return b.String()
}

// within adds a step to the path of a typeError.
func within(err error, step string) error {
	if te, ok := err.(*typeError); ok {
		te.path = append(te.path, step)
		return te
	}
	return fmt.Errorf("%s: %w", step, err)
}

// noProxyError says an interface that crosses by reference has no proxy.
func noProxyError(t reflect.Type) error {
	return fmt.Errorf("no proxy registered for interface %s (hint: generate its proxy with refgen in the package that declares it, or call refbroker.RegisterInterface[%s] in an init func there)", t, t)
}

func depthError(t reflect.Type) error {
	return fmt.Errorf("value of type %s nests deeper than %d levels (is it cyclic?)", t, maxDepth)
}
