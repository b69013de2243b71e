package refbroker

import (
	"bytes"
	"context"
	"encoding"
	"encoding/gob"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// All reflect.Type analysis lives in this file. A type is classified once,
// and its codec (how a value of it is written and read) and, for funcs and
// interfaces, its call plan are built once and cached. The call path only
// looks plans up.

var (
	errorType             = reflect.TypeFor[error]()
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

// codec writes and reads values of one type. dec stores into v, which must
// be settable; it reports failures through d.err.
type codec struct {
	t   reflect.Type
	enc func(e *encoder, v reflect.Value) error
	dec func(d *decoder, v reflect.Value)
}

var (
	codecCache sync.Map   // reflect.Type -> *codec
	codecBuild sync.Mutex // serialises building, so recursive types are built once
)

// codecFor returns the codec for t, or an error saying why t cannot cross.
func codecFor(t reflect.Type) (*codec, error) {
	if c, ok := codecCache.Load(t); ok {
		return c.(*codec), nil
	}
	codecBuild.Lock()
	defer codecBuild.Unlock()
	building := make(map[reflect.Type]*codec)
	c, err := buildCodec(t, building)
	if err != nil {
		return nil, err
	}
	for bt, bc := range building {
		codecCache.LoadOrStore(bt, bc)
	}
	return c, nil
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

func buildCodec(t reflect.Type, building map[reflect.Type]*codec) (*codec, error) {
	if c, ok := codecCache.Load(t); ok {
		return c.(*codec), nil
	}
	if c, ok := building[t]; ok {
		return c, nil // recursive type: enc/dec are filled in before use
	}
	c := &codec{t: t}
	building[t] = c
	var err error
	switch classify(t) {
	case kindUnsupported:
		hint := ""
		if t.Kind() == reflect.Chan {
			hint = " (hint: pass a func or an interface instead)"
		}
		err = &typeError{t: t, why: "channels and unsafe pointers are not supported" + hint}
	case kindContext:
		err = &typeError{t: t, why: "a context.Context crosses only as the first parameter of a method or func"}
	case kindError:
		c.enc, c.dec = encodeErrorValue, decodeErrorValue
	case kindInterface, kindFunc:
		c.enc = func(e *encoder, v reflect.Value) error { return e.conn.encodeRef(e, v, t) }
		c.dec = func(d *decoder, v reflect.Value) { d.conn.decodeRef(d, v, t) }
	case kindAny:
		c.enc = func(e *encoder, v reflect.Value) error { return e.conn.encodeAny(e, v) }
		c.dec = func(d *decoder, v reflect.Value) { d.conn.decodeAny(d, v) }
	case kindValue:
		err = buildValueCodec(c, building)
	}
	if err != nil {
		delete(building, t)
		return nil, err
	}
	return c, nil
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

func buildValueCodec(c *codec, building map[reflect.Type]*codec) error {
	t := c.t
	if encI, _, ok := marshalers(t); ok {
		buildMarshalerCodec(c, encI == gobEncoderType)
		return nil
	}
	switch t.Kind() {
	case reflect.Bool:
		c.enc = func(e *encoder, v reflect.Value) error { e.bool(v.Bool()); return nil }
		c.dec = func(d *decoder, v reflect.Value) { v.SetBool(d.bool()) }
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		c.enc = func(e *encoder, v reflect.Value) error { e.varint(v.Int()); return nil }
		c.dec = func(d *decoder, v reflect.Value) {
			x := d.varint()
			if v.OverflowInt(x) {
				d.fail(malformed("%d overflows %s", x, v.Type()))
				return
			}
			v.SetInt(x)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		c.enc = func(e *encoder, v reflect.Value) error { e.uvarint(v.Uint()); return nil }
		c.dec = func(d *decoder, v reflect.Value) {
			x := d.uvarint()
			if v.OverflowUint(x) {
				d.fail(malformed("%d overflows %s", x, v.Type()))
				return
			}
			v.SetUint(x)
		}
	case reflect.Float32:
		c.enc = func(e *encoder, v reflect.Value) error { e.float32(float32(v.Float())); return nil }
		c.dec = func(d *decoder, v reflect.Value) { v.SetFloat(float64(d.float32())) }
	case reflect.Float64:
		c.enc = func(e *encoder, v reflect.Value) error { e.float64(v.Float()); return nil }
		c.dec = func(d *decoder, v reflect.Value) { v.SetFloat(d.float64()) }
	case reflect.Complex64, reflect.Complex128:
		c.enc = func(e *encoder, v reflect.Value) error {
			x := v.Complex()
			e.float64(real(x))
			e.float64(imag(x))
			return nil
		}
		c.dec = func(d *decoder, v reflect.Value) { v.SetComplex(complex(d.float64(), d.float64())) }
	case reflect.String:
		c.enc = func(e *encoder, v reflect.Value) error { e.string(v.String()); return nil }
		c.dec = func(d *decoder, v reflect.Value) { v.SetString(d.string()) }
	case reflect.Pointer:
		return buildPointerCodec(c, building)
	case reflect.Slice:
		return buildSliceCodec(c, building)
	case reflect.Array:
		return buildArrayCodec(c, building)
	case reflect.Map:
		return buildMapCodec(c, building)
	case reflect.Struct:
		return buildStructCodec(c, building)
	default:
		return &typeError{t: t, why: "unsupported kind " + t.Kind().String()}
	}
	return nil
}

// buildMarshalerCodec handles types that implement GobEncoder/GobDecoder or
// BinaryMarshaler/BinaryUnmarshaler: their bytes cross as a byte string.
func buildMarshalerCodec(c *codec, useGob bool) {
	t := c.t
	encIface := binaryMarshalerType
	if useGob {
		encIface = gobEncoderType
	}
	valueRecv := t.Implements(encIface)
	c.enc = func(e *encoder, v reflect.Value) error {
		recv := v
		if !valueRecv {
			if !v.CanAddr() {
				p := reflect.New(t)
				p.Elem().Set(v)
				v = p.Elem()
			}
			recv = v.Addr()
		}
		var b []byte
		var err error
		if useGob {
			b, err = recv.Interface().(gob.GobEncoder).GobEncode()
		} else {
			b, err = recv.Interface().(encoding.BinaryMarshaler).MarshalBinary()
		}
		if err != nil {
			return fmt.Errorf("refbroker: encoding %s: %w", t, err)
		}
		e.bytes(b)
		return nil
	}
	c.dec = func(d *decoder, v reflect.Value) {
		b := bytes.Clone(d.bytes()) // user code may keep it; the message buffer is reused
		if d.err != nil {
			return
		}
		var err error
		if useGob {
			err = v.Addr().Interface().(gob.GobDecoder).GobDecode(b)
		} else {
			err = v.Addr().Interface().(encoding.BinaryUnmarshaler).UnmarshalBinary(b)
		}
		if err != nil {
			d.fail(fmt.Errorf("refbroker: decoding %s: %w", t, err))
		}
	}
}

func buildPointerCodec(c *codec, building map[reflect.Type]*codec) error {
	t := c.t
	elem, err := buildCodec(t.Elem(), building)
	if err != nil {
		return within(err, "pointer to "+t.Elem().String())
	}
	c.enc = func(e *encoder, v reflect.Value) error {
		if v.IsNil() {
			e.byte1(0)
			return nil
		}
		if !e.enter() {
			return depthError(t)
		}
		defer e.leave()
		e.byte1(1)
		return elem.enc(e, v.Elem())
	}
	c.dec = func(d *decoder, v reflect.Value) {
		switch d.byte1() {
		case 0:
			v.SetZero()
		case 1:
			if !d.enter() {
				return
			}
			defer d.leave()
			p := reflect.New(t.Elem())
			elem.dec(d, p.Elem())
			v.Set(p)
		default:
			d.fail(malformed("bad pointer tag at byte %d", d.off-1))
		}
	}
	return nil
}

func depthError(t reflect.Type) error {
	return fmt.Errorf("refbroker: value of type %s nests deeper than %d levels (is it cyclic?)", t, maxDepth)
}

func buildSliceCodec(c *codec, building map[reflect.Type]*codec) error {
	t := c.t
	if t.Elem().Kind() == reflect.Uint8 {
		if _, _, ok := marshalers(t.Elem()); !ok {
			c.enc = func(e *encoder, v reflect.Value) error {
				if v.IsNil() {
					e.uvarint(0)
					return nil
				}
				b := v.Bytes()
				e.uvarint(uint64(len(b)) + 1)
				e.buf = append(e.buf, b...)
				return nil
			}
			c.dec = func(d *decoder, v reflect.Value) {
				n, isNil := d.nilOrLength(1)
				if isNil {
					v.SetZero()
					return
				}
				b := d.take(n)
				if d.err != nil {
					return
				}
				s := reflect.MakeSlice(t, n, n)
				copy(s.Bytes(), b)
				v.Set(s)
			}
			return nil
		}
	}
	elem, err := buildCodec(t.Elem(), building)
	if err != nil {
		return within(err, "element of "+t.String())
	}
	c.enc = func(e *encoder, v reflect.Value) error {
		if v.IsNil() {
			e.uvarint(0)
			return nil
		}
		if !e.enter() {
			return depthError(t)
		}
		defer e.leave()
		e.uvarint(uint64(v.Len()) + 1)
		return encodeElems(e, elem, v)
	}
	c.dec = func(d *decoder, v reflect.Value) {
		n, isNil := d.nilOrLength(1)
		if isNil {
			v.SetZero()
			return
		}
		if !d.enter() {
			return
		}
		defer d.leave()
		s := reflect.MakeSlice(t, n, n)
		decodeElems(d, elem, s)
		v.Set(s)
	}
	return nil
}

func buildArrayCodec(c *codec, building map[reflect.Type]*codec) error {
	t := c.t
	elem, err := buildCodec(t.Elem(), building)
	if err != nil {
		return within(err, "element of "+t.String())
	}
	c.enc = func(e *encoder, v reflect.Value) error {
		if !e.enter() {
			return depthError(t)
		}
		defer e.leave()
		return encodeElems(e, elem, v)
	}
	c.dec = func(d *decoder, v reflect.Value) {
		if !d.enter() {
			return
		}
		defer d.leave()
		decodeElems(d, elem, v)
	}
	return nil
}

// encodeElems writes the elements of the slice or array v.
func encodeElems(e *encoder, elem *codec, v reflect.Value) error {
	for i := range v.Len() {
		if err := elem.enc(e, v.Index(i)); err != nil {
			return err
		}
	}
	return nil
}

// decodeElems reads the elements of the slice or array v, stopping at the
// first error.
func decodeElems(d *decoder, elem *codec, v reflect.Value) {
	for i := 0; i < v.Len() && d.err == nil; i++ {
		elem.dec(d, v.Index(i))
	}
}

func buildMapCodec(c *codec, building map[reflect.Type]*codec) error {
	t := c.t
	if holdsReference(t.Key(), map[reflect.Type]bool{}) {
		return &typeError{t: t, why: "map keys must be plain data, not interfaces or funcs"}
	}
	key, err := buildCodec(t.Key(), building)
	if err != nil {
		return within(err, "key of "+t.String())
	}
	elem, err := buildCodec(t.Elem(), building)
	if err != nil {
		return within(err, "value of "+t.String())
	}
	c.enc = func(e *encoder, v reflect.Value) error {
		if v.IsNil() {
			e.uvarint(0)
			return nil
		}
		if !e.enter() {
			return depthError(t)
		}
		defer e.leave()
		e.uvarint(uint64(v.Len()) + 1)
		it := v.MapRange()
		for it.Next() {
			if err := key.enc(e, it.Key()); err != nil {
				return err
			}
			if err := elem.enc(e, it.Value()); err != nil {
				return err
			}
		}
		return nil
	}
	c.dec = func(d *decoder, v reflect.Value) {
		n, isNil := d.nilOrLength(2)
		if isNil {
			v.SetZero()
			return
		}
		if !d.enter() {
			return
		}
		defer d.leave()
		m := reflect.MakeMapWithSize(t, n)
		k := reflect.New(t.Key()).Elem()
		x := reflect.New(t.Elem()).Elem()
		for i := 0; i < n && d.err == nil; i++ {
			k.SetZero()
			x.SetZero()
			key.dec(d, k)
			elem.dec(d, x)
			m.SetMapIndex(k, x)
		}
		v.Set(m)
	}
	return nil
}

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

func buildStructCodec(c *codec, building map[reflect.Type]*codec) error {
	t := c.t
	type field struct {
		index int
		codec *codec
	}
	var fields []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		fc, err := buildCodec(f.Type, building)
		if err != nil {
			return within(err, "field "+t.String()+"."+f.Name)
		}
		fields = append(fields, field{i, fc})
	}
	if len(fields) == 0 && t.NumField() > 0 {
		return &typeError{t: t, why: "it has no exported fields (hint: export them, or implement encoding.BinaryMarshaler and BinaryUnmarshaler)"}
	}
	nf := uint64(len(fields))
	c.enc = func(e *encoder, v reflect.Value) error {
		if !e.enter() {
			return depthError(t)
		}
		defer e.leave()
		e.uvarint(nf)
		for _, f := range fields {
			if err := f.codec.enc(e, v.Field(f.index)); err != nil {
				return err
			}
		}
		return nil
	}
	c.dec = func(d *decoder, v reflect.Value) {
		if n := d.uvarint(); n != nf && d.err == nil {
			d.fail(fmt.Errorf("refbroker: the peer sent %s with %d fields, this side has %d (are both sides built from the same contract?)", t, n, nf))
			return
		}
		if !d.enter() {
			return
		}
		defer d.leave()
		for _, f := range fields {
			if d.err != nil {
				return
			}
			f.codec.dec(d, v.Field(f.index))
		}
	}
	return nil
}

// funcPlan is how a call of one func type crosses: the codecs of its
// parameters and results, and where its context and error are.
type funcPlan struct {
	t        reflect.Type
	ctx      bool     // the first parameter is a context.Context
	in       []*codec // parameters, without the context
	out      []*codec // results, error included
	errOut   bool     // the last result is an error
	variadic bool
}

var funcPlans sync.Map // reflect.Type -> *funcPlan

// funcPlanFor returns the plan for calls of the func type t (a method's type
// without its receiver), or an error naming the parameter or result that
// cannot cross.
func funcPlanFor(t reflect.Type) (*funcPlan, error) {
	if p, ok := funcPlans.Load(t); ok {
		return p.(*funcPlan), nil
	}
	p := &funcPlan{t: t, variadic: t.IsVariadic()}
	for i := range t.NumIn() {
		pt := t.In(i)
		if i == 0 && pt == contextType {
			p.ctx = true
			continue
		}
		c, err := codecFor(pt)
		if err != nil {
			return nil, within(err, fmt.Sprintf("parameter %d", i+1))
		}
		p.in = append(p.in, c)
	}
	for i := range t.NumOut() {
		c, err := codecFor(t.Out(i))
		if err != nil {
			return nil, within(err, fmt.Sprintf("result %d", i+1))
		}
		p.out = append(p.out, c)
	}
	p.errOut = t.NumOut() > 0 && t.Out(t.NumOut()-1) == errorType
	actual, _ := funcPlans.LoadOrStore(t, p)
	return actual.(*funcPlan), nil
}

// methodPlan is one method a reference grants.
type methodPlan struct {
	name  string // "Get"
	full  string // "shared.Store.Get", for messages
	index int    // method index in the receiver's reflect.Value; -1 for a func
	plan  *funcPlan
}

// ifacePlan is the set of methods a reference of one static type grants.
type ifacePlan struct {
	t       reflect.Type
	methods map[string]*methodPlan
}

var ifacePlans sync.Map // reflect.Type -> *ifacePlan

// ifacePlanFor returns the method set of the interface type t.
func ifacePlanFor(t reflect.Type) (*ifacePlan, error) {
	if p, ok := ifacePlans.Load(t); ok {
		return p.(*ifacePlan), nil
	}
	p := &ifacePlan{t: t, methods: make(map[string]*methodPlan, t.NumMethod())}
	for i := range t.NumMethod() {
		m := t.Method(i)
		fp, err := funcPlanFor(m.Type)
		if err != nil {
			return nil, fmt.Errorf("refbroker: %s.%s: %w", t, m.Name, err)
		}
		p.methods[m.Name] = &methodPlan{name: m.Name, full: t.String() + "." + m.Name, index: i, plan: fp}
	}
	actual, _ := ifacePlans.LoadOrStore(t, p)
	return actual.(*ifacePlan), nil
}

// funcMethods is the method set of a func reference: the func itself,
// called by the empty method name.
func funcMethods(t reflect.Type) (*ifacePlan, error) {
	if p, ok := ifacePlans.Load(t); ok {
		return p.(*ifacePlan), nil
	}
	fp, err := funcPlanFor(t)
	if err != nil {
		return nil, fmt.Errorf("refbroker: %s: %w", t, err)
	}
	p := &ifacePlan{t: t, methods: map[string]*methodPlan{"": {full: t.String(), index: -1, plan: fp}}}
	actual, _ := ifacePlans.LoadOrStore(t, p)
	return actual.(*ifacePlan), nil
}

// anyMethods is the empty method set of a reference that crossed as any.
var anyMethods = &ifacePlan{t: anyType, methods: map[string]*methodPlan{}}

// methodsFor is the method set a reference of static type t grants on the
// wire: a func's call, an interface's methods (or its wire adapter's, see
// builtin.go), nothing for any.
func methodsFor(t reflect.Type) (*ifacePlan, error) {
	switch classify(t) {
	case kindFunc:
		return funcMethods(t)
	case kindInterface:
		if a, ok := adapters[t]; ok {
			return ifacePlanFor(a.wire)
		}
		return ifacePlanFor(t)
	}
	return anyMethods, nil
}

// rootMethods builds the method set granted on a root object: the methods
// the dispensing side asked for, which must exist on v's concrete type with
// the same signatures. The error lists every missing or different method.
func rootMethods(v reflect.Value, iface string, want [][2]string) (*ifacePlan, error) {
	t := v.Type()
	p := &ifacePlan{t: t, methods: make(map[string]*methodPlan, len(want))}
	var problems []string
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
	if len(problems) > 0 {
		return nil, fmt.Errorf("(%s) does not implement %s: %s", t, iface, strings.Join(problems, "; "))
	}
	return p, nil
}

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
			return fmt.Errorf("refbroker: no proxy registered for interface %s (hint: call refbroker.RegisterInterface[%s] in an init func of the package that declares it)", t, t)
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
			return fmt.Errorf("refbroker: %s: %w", t, err)
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
