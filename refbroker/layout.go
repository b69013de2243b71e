package refbroker

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// Struct layouts: how each side lays a struct type out, so that two sides
// built from different versions of a contract never misread each other's
// data. A struct value crosses positionally (its field count, then its
// exported fields in declaration order); alongside, each side describes
// every struct type it may send, once per connection (layoutTable): its
// name (reflect's String, "contract.Record") and, per field, the name, the
// Go type and the wire type. A receiver whose own layout of a struct
// differs from the sender's decodes by field name (structPlan): a field
// only the sender has is skipped, one only the receiver has stays zero,
// order does not matter, and numbers widen or narrow within their family
// (a value that does not fit fails, naming the field). Any other change of
// a field's type is incompatible. When the layouts agree, which is the
// common case, nothing is looked up: decoding stays positional.

// wireKind is the family of a value's layout on the wire.
type wireKind byte

const (
	wBool wireKind = iota + 1
	wInt
	wUint
	wFloat32
	wFloat64
	wComplex
	wString
	wBytes
	wError
	wRef
	wAny
	wMarshal
	wSlice
	wArray
	wMap
	wPointer
	wStruct
)

// wireType is how values of one type are laid out on the wire: enough to
// compare two sides' types and to skip a value.
type wireType struct {
	kind wireKind
	n    int       // array length
	elem *wireType // slice, array and pointer element; map value
	key  *wireType // map key
	name string    // struct: its name
}

var wireTypes sync.Map // reflect.Type -> *wireType

// wireTypeOf returns the wire type of t, which can cross.
func wireTypeOf(t reflect.Type) *wireType {
	if w, ok := wireTypes.Load(t); ok {
		return w.(*wireType)
	}
	if conv, ok := converters[t]; ok {
		return wireTypeOf(conv.wire)
	}
	w := &wireType{}
	switch classify(t) {
	case kindError:
		w.kind = wError
	case kindInterface, kindFunc:
		w.kind = wRef
	case kindAny:
		w.kind = wAny
	default:
		if _, _, ok := marshalers(t); ok {
			w.kind = wMarshal
			break
		}
		switch t.Kind() {
		case reflect.Bool:
			w.kind = wBool
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			w.kind = wInt
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			w.kind = wUint
		case reflect.Float32:
			w.kind = wFloat32
		case reflect.Float64:
			w.kind = wFloat64
		case reflect.Complex64, reflect.Complex128:
			w.kind = wComplex
		case reflect.String:
			w.kind = wString
		case reflect.Slice:
			if _, _, ok := marshalers(t.Elem()); t.Elem().Kind() == reflect.Uint8 && !ok {
				w.kind = wBytes
			} else {
				w.kind, w.elem = wSlice, wireTypeOf(t.Elem())
			}
		case reflect.Array:
			w.kind, w.n, w.elem = wArray, t.Len(), wireTypeOf(t.Elem())
		case reflect.Map:
			w.kind, w.key, w.elem = wMap, wireTypeOf(t.Key()), wireTypeOf(t.Elem())
		case reflect.Pointer:
			w.kind, w.elem = wPointer, wireTypeOf(t.Elem())
		case reflect.Struct:
			w.kind, w.name = wStruct, t.String()
		}
	}
	actual, _ := wireTypes.LoadOrStore(t, w)
	return actual.(*wireType)
}

// empty reports whether a value of w takes no bytes on the wire: an
// array of none, or of such values. Every other value takes at least one.
func (w *wireType) empty() bool {
	return w.kind == wArray && (w.n == 0 || w.elem.empty())
}

// same reports whether a and b are laid out alike (nested structs by
// name: their layouts are compared on their own).
func (a *wireType) same(b *wireType) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil || a.kind != b.kind || a.n != b.n || a.name != b.name {
		return false
	}
	return a.elem.same(b.elem) && a.key.same(b.key)
}

func (w *wireType) write(e *encoder) {
	e.byte1(byte(w.kind))
	switch w.kind {
	case wArray:
		e.uvarint(uint64(w.n))
		w.elem.write(e)
	case wSlice, wPointer:
		w.elem.write(e)
	case wMap:
		w.key.write(e)
		w.elem.write(e)
	case wStruct:
		e.string(w.name)
	}
}

// maxWireTypeDepth bounds the nesting of a wire type a peer describes;
// maxWireArray the length of an array in it.
const (
	maxWireTypeDepth = 64
	maxWireArray     = 1<<31 - 1
)

func readWireType(d *decoder, depth int, parts *typeParts) *wireType {
	if !parts.take(d) {
		return nil
	}
	if depth > maxWireTypeDepth {
		d.fail(malformed("a type description nests deeper than %d", maxWireTypeDepth))
		return nil
	}
	w := &wireType{kind: wireKind(d.byte1())}
	switch w.kind {
	case wBool, wInt, wUint, wFloat32, wFloat64, wComplex, wString, wBytes, wError, wRef, wAny, wMarshal:
	case wArray:
		// A type's length, not a count of what follows in this message:
		// a value's elements are checked against the bytes of the message
		// that carries it (Conn.skip).
		n := d.uvarint()
		if n > maxWireArray && d.err == nil {
			d.fail(malformed("an array of %d elements in a type description (at most %d)", n, maxWireArray))
		}
		w.n = int(n)
		w.elem = readWireType(d, depth+1, parts)
	case wSlice, wPointer:
		w.elem = readWireType(d, depth+1, parts)
	case wMap:
		w.key = readWireType(d, depth+1, parts)
		w.elem = readWireType(d, depth+1, parts)
	case wStruct:
		w.name = d.text("a struct's name")
	default:
		d.fail(malformed("bad wire kind %d", w.kind))
	}
	if d.err != nil {
		return nil
	}
	return w
}

// structLayout is one side's layout of a struct type.
type structLayout struct {
	name   string
	fields []fieldLayout
}

type fieldLayout struct {
	name   string
	goType string // for messages
	wire   *wireType
}

var layouts sync.Map // reflect.Type -> *structLayout

// layoutOf returns the layout of the struct type t, which can cross.
func layoutOf(t reflect.Type) *structLayout {
	if l, ok := layouts.Load(t); ok {
		return l.(*structLayout)
	}
	l := &structLayout{name: t.String()}
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() {
			l.fields = append(l.fields, fieldLayout{name: f.Name, goType: f.Type.String(), wire: wireTypeOf(f.Type)})
		}
	}
	actual, _ := layouts.LoadOrStore(t, l)
	return actual.(*structLayout)
}

func (l *structLayout) equal(o *structLayout) bool {
	if l.name != o.name || len(l.fields) != len(o.fields) {
		return false
	}
	for i, f := range l.fields {
		g := o.fields[i]
		if f.name != g.name || f.goType != g.goType || !f.wire.same(g.wire) {
			return false
		}
	}
	return true
}

func (l *structLayout) field(name string) (int, *fieldLayout) {
	for i := range l.fields {
		if l.fields[i].name == name {
			return i, &l.fields[i]
		}
	}
	return -1, nil
}

var structSets sync.Map // reflect.Type -> []reflect.Type

// structsIn returns the struct types reachable from t through data and
// method signatures, t included: the layouts a side describes for t.
func structsIn(t reflect.Type) []reflect.Type {
	if s, ok := structSets.Load(t); ok {
		return s.([]reflect.Type)
	}
	out := findStructs(t)
	structSets.Store(t, out)
	return out
}

func findStructs(t reflect.Type) []reflect.Type {
	var out []reflect.Type
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		if seen[t] {
			return
		}
		seen[t] = true
		if conv, ok := converters[t]; ok {
			walk(conv.wire)
			return
		}
		switch classify(t) {
		case kindInterface:
			for i := range t.NumMethod() {
				walk(t.Method(i).Type)
			}
			return
		case kindFunc:
			for i := range t.NumIn() {
				walk(t.In(i))
			}
			for i := range t.NumOut() {
				walk(t.Out(i))
			}
			return
		case kindValue:
		default:
			return
		}
		if _, _, ok := marshalers(t); ok {
			return
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(t.Elem())
		case reflect.Map:
			walk(t.Key())
			walk(t.Elem())
		case reflect.Struct:
			if _, err := codecFor(t); err == nil {
				out = append(out, t)
			}
			for i := range t.NumField() {
				if f := t.Field(i); f.IsExported() {
					walk(f.Type)
				}
			}
		}
	}
	walk(t)
	return out
}

// sides names the two sides in messages about their differences.
type sides struct{ here, there string }

func (s sides) in(here bool) string {
	switch {
	case here && s.here != "":
		return "in the " + s.here
	case here:
		return "here"
	case s.there != "":
		return "in the " + s.there
	default:
		return "there"
	}
}

// layoutProblems lists the fields whose types the two layouts of one
// struct do not share compatibly; changes lists the compatible
// differences (added, removed and reordered fields), for the log.
func layoutProblems(own, peer *structLayout, s sides) (problems, changes []string) {
	short := own.name
	if i := strings.LastIndexByte(short, '.'); i >= 0 {
		short = short[i+1:]
	}
	for i, f := range own.fields {
		j, g := peer.field(f.name)
		switch {
		case g == nil:
			changes = append(changes, fmt.Sprintf("%s.%s only %s", short, f.name, s.in(true)))
		case !compatible(f.wire, g.wire):
			problems = append(problems, fmt.Sprintf("%s.%s is %s %s, %s %s", short, f.name, f.goType, s.in(true), g.goType, s.in(false)))
		case i != j:
			changes = append(changes, fmt.Sprintf("%s.%s moved", short, f.name))
		}
	}
	for _, g := range peer.fields {
		if _, f := own.field(g.name); f == nil {
			changes = append(changes, fmt.Sprintf("%s.%s only %s", short, g.name, s.in(false)))
		}
	}
	return problems, changes
}

// compatible reports whether a field laid out as peer can be read into
// one laid out as own: the same layout, or numbers of one family
// (signed integers, unsigned integers, floats).
func compatible(own, peer *wireType) bool {
	return own.same(peer) || (isFloat(own.kind) && isFloat(peer.kind))
}

func isFloat(k wireKind) bool { return k == wFloat32 || k == wFloat64 }
