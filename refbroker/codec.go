package refbroker

import (
	"bytes"
	"encoding"
	"encoding/gob"
	"fmt"
	"reflect"
	"sync"
)

// codec writes and reads values of one type. dec stores into v, which must
// be settable; it reports failures through d.err. Errors from either say
// what went wrong without the package prefix: the call layer adds it,
// with the method and parameter.
type codec struct {
	t   reflect.Type
	enc func(e *encoder, v reflect.Value) error
	dec func(d *decoder, v reflect.Value)
}

// errCodec is the codec of the error type; reflectError makes its values.
var errCodec = &codec{t: errorType, enc: encodeErrorValue, dec: decodeErrorValue}

func reflectError(err error) reflect.Value { return reflect.ValueOf(&err).Elem() }

var (
	codecCache sync.Map   // reflect.Type -> *codec
	codecBuild sync.Mutex // serialises building, so recursive types are built once
)

// encode writes v with c. A panic in user code it runs (a MarshalBinary, a
// GobEncode, an error's Error method) becomes an error, so a bad value
// fails its call, and the caller can take the message back.
func (c *codec) encode(e *encoder, v reflect.Value) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("encoding %s panicked: %v", c.t, p)
		}
	}()
	return c.enc(e, v)
}

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

func buildCodec(t reflect.Type, building map[reflect.Type]*codec) (*codec, error) {
	if c, ok := codecCache.Load(t); ok {
		return c.(*codec), nil
	}
	if c, ok := building[t]; ok {
		return c, nil // recursive type: enc/dec are filled in before use
	}
	c := &codec{t: t}
	building[t] = c
	if conv, ok := converters[t]; ok { // t crosses as another type
		wc, err := buildCodec(conv.wire, building)
		if err != nil {
			delete(building, t)
			return nil, err
		}
		c.enc = func(e *encoder, v reflect.Value) error { return wc.enc(e, conv.to(v)) }
		c.dec = func(d *decoder, v reflect.Value) {
			w := reflect.New(conv.wire).Elem()
			wc.dec(d, w)
			if d.err != nil {
				return
			}
			x, err := conv.from(w, d)
			if err != nil {
				d.fail(err)
				return
			}
			v.Set(x)
		}
		return c, nil
	}
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
		c.enc = func(e *encoder, v reflect.Value) error { return writeRef(e, v, t) }
		c.dec = func(d *decoder, v reflect.Value) { readRef(d, v, t) }
	case kindAny:
		c.enc, c.dec = encodeAny, decodeAny
	case kindValue:
		err = buildValueCodec(c, building)
	}
	if err != nil {
		delete(building, t)
		return nil, err
	}
	return c, nil
}

// writeRef and readRef hand a reference to the connection behind the
// encoder or decoder; without one, a reference cannot be carried.
func writeRef(e *encoder, v reflect.Value, t reflect.Type) error {
	if e.refs == nil {
		return fmt.Errorf("%s crosses by reference, and this message has no connection to carry it", t)
	}
	return e.refs.writeRef(e, v, t)
}

func readRef(d *decoder, v reflect.Value, t reflect.Type) {
	if d.refs == nil {
		d.fail(fmt.Errorf("%s crosses by reference, and this message has no connection to carry it", t))
		return
	}
	d.refs.readRef(d, v, t)
}

// encodeAny writes the value of an `any` position. Nothing in an any is
// silently turned into something else:
//
//   - a proxy of the peer's goes home, by reference;
//   - a value of a type registered with RegisterType crosses by value;
//   - an error crosses as an error (text, chain, registered types);
//   - a func, and an object (a value that implements an interface with a
//     registered proxy, fmt.Stringer aside), cross by reference;
//   - anything else (plain data of an unregistered type) is refused,
//     naming the type and what to do, rather than arriving as a *Ref the
//     receiver cannot use.
func encodeAny(e *encoder, v reflect.Value) error {
	if v.IsNil() {
		e.byte1(refNil)
		return nil
	}
	dyn := v.Elem()
	if refOf(v) != nil {
		return writeRef(e, v, anyType)
	}
	if name, ok := registeredName(dyn.Type()); ok {
		dc, err := codecFor(dyn.Type())
		if err != nil {
			return err
		}
		if e.refs != nil {
			if err := e.refs.describe(e.ctx, dyn.Type()); err != nil {
				return err
			}
		}
		if !e.enter() {
			return depthError(dyn.Type())
		}
		defer e.leave()
		e.byte1(refData)
		e.string(name)
		return dc.enc(e, dyn)
	}
	switch dt := dyn.Type(); {
	case dt.Implements(errorType):
		e.byte1(refError)
		encodeError(e, dyn.Interface().(error), 0)
		return nil
	case dt.Kind() == reflect.Func || isObject(dt):
		return writeRef(e, v, anyType)
	default:
		return &typeError{t: dt, why: fmt.Sprintf("it is data of a type not registered for an any (hint: call refbroker.RegisterType(%s{}) on both sides to send it by value, or pass it where an interface with a registered proxy is expected)", dataExample(dt))}
	}
}

// dataExample is how a zero value of t is written in a hint.
func dataExample(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		return "&" + t.Elem().String()
	}
	return t.String()
}

var objectTypes sync.Map // reflect.Type -> bool

// isObject reports whether values of t are objects, not data, in an any:
// t implements an interface with a registered proxy (fmt.Stringer aside,
// which data types implement to print themselves).
func isObject(t reflect.Type) bool {
	if o, ok := objectTypes.Load(t); ok {
		return o.(bool)
	}
	o := implementsProxied(t)
	objectTypes.Store(t, o)
	return o
}

func decodeAny(d *decoder, v reflect.Value) {
	if d.err != nil {
		return
	}
	if d.off < len(d.buf) && d.buf[d.off] == refError {
		d.off++
		err := decodeError(d, 0)
		if d.err == nil && err != nil {
			v.Set(reflect.ValueOf(&err).Elem().Elem())
		}
		return
	}
	if d.off >= len(d.buf) || d.buf[d.off] != refData {
		readRef(d, v, anyType)
		return
	}
	d.off++
	name := d.string()
	if d.err != nil {
		return
	}
	t, ok := registeredType(name)
	if !ok {
		d.fail(fmt.Errorf("the peer sent a %s in an `any`, which is not registered here (hint: refbroker.RegisterType)", shown(name)))
		return
	}
	dc, err := codecFor(t)
	if err != nil {
		d.fail(err)
		return
	}
	if d.refs != nil {
		d.refs.checkLayouts(t)
	}
	if !d.enter() || !d.charge(uint64(t.Size())) {
		return
	}
	defer d.leave()
	x := reflect.New(t).Elem()
	dc.dec(d, x)
	if d.err == nil {
		v.Set(x)
	}
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
				d.fail(fmt.Errorf("%d overflows %s", x, v.Type()))
				return
			}
			v.SetInt(x)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		c.enc = func(e *encoder, v reflect.Value) error { e.uvarint(v.Uint()); return nil }
		c.dec = func(d *decoder, v reflect.Value) {
			x := d.uvarint()
			if v.OverflowUint(x) {
				d.fail(fmt.Errorf("%d overflows %s", x, v.Type()))
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
			return fmt.Errorf("encoding %s: %w", t, err)
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
			d.fail(fmt.Errorf("decoding %s: %w", t, err))
		}
	}
}
