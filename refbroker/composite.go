package refbroker

import (
	"fmt"
	"reflect"
)

// Codecs of composite types: pointers, slices, arrays, maps and structs.
// Each counts its nesting, so a cyclic value or a hostile message cannot
// exhaust the stack.

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
			if !d.enter() || !d.chargeElems(1, t.Elem()) {
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

func buildSliceCodec(c *codec, building map[reflect.Type]*codec) error {
	t := c.t
	if t.Elem().Kind() == reflect.Uint8 {
		if _, _, ok := marshalers(t.Elem()); !ok {
			buildBytesCodec(c)
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
		v.Set(decodeSlice(d, elem, t, n))
	}
	return nil
}

// mapEntryOverhead is what a map entry takes beyond its key and value,
// about (its control byte and the room a map keeps free), for charge.
const mapEntryOverhead = 8

// eagerAlloc is how much memory a decoder may allocate for a slice or map
// before its elements arrive, beyond eagerFactor bytes per byte left in the
// message.
const (
	eagerAlloc  = 64 << 10
	eagerFactor = 8
)

// fitsEagerly reports whether n elements of size bytes each may be
// allocated at once: a count is checked only against the bytes left (at
// one byte an element at the least), and one element may take far more memory than
// its bytes on the wire, so a hostile count must not buy a large
// allocation up front.
func fitsEagerly(d *decoder, n int, size uintptr) bool {
	return uint64(n)*uint64(size) <= eagerAlloc+eagerFactor*uint64(d.remaining())
}

// decodeSlice reads n elements of slice type t, allocating as they arrive
// (doubling) when n is too large to allocate at once: memory grows with
// the elements actually decoded, so with the bytes actually received.
// Each growth is charged for what it adds: the slice it replaces is
// garbage, so the budget bounds what the value holds (the copy in between
// holds half as much again for a moment), as for a slice allocated at
// once; charging every allocation whole had a value refused that was
// decoded within the budget (200,000 nil rows of a [][]int).
func decodeSlice(d *decoder, elem *codec, t reflect.Type, n int) reflect.Value {
	size := t.Elem().Size()
	if fitsEagerly(d, n, size) {
		if !d.chargeElems(n, t.Elem()) {
			return reflect.Zero(t)
		}
		s := reflect.MakeSlice(t, n, n)
		decodeElems(d, elem, s)
		return s
	}
	c := min(n, max(1, eagerAlloc/int(max(size, 1))))
	if !d.chargeElems(c, t.Elem()) {
		return reflect.Zero(t)
	}
	s := reflect.MakeSlice(t, c, c)
	for i := 0; i < n && d.err == nil; i++ {
		if i == s.Len() {
			nc := min(n, 2*s.Len())
			if !d.chargeElems(nc-s.Len(), t.Elem()) {
				break
			}
			ns := reflect.MakeSlice(t, nc, nc)
			reflect.Copy(ns, s)
			s = ns
		}
		elem.dec(d, s.Index(i))
	}
	return s
}

// buildBytesCodec handles slices of bytes as one block.
func buildBytesCodec(c *codec) {
	t := c.t
	c.enc = func(e *encoder, v reflect.Value) error {
		if v.IsNil() {
			e.uvarint(0)
			return nil
		}
		b := v.Bytes()
		e.uvarint(uint64(len(b)) + 1)
		e.rawBytes(b)
		return e.full()
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
		if shared, ok := d.alias(b); ok {
			v.SetBytes(shared) // t's element is uint8: SetBytes takes any such slice
			return
		}
		s := reflect.MakeSlice(t, n, n)
		copy(s.Bytes(), b)
		v.Set(s)
	}
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
		if err := e.full(); err != nil {
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
			if err := e.full(); err != nil {
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
		hint := n
		entry := t.Key().Size() + t.Elem().Size() + mapEntryOverhead
		if !fitsEagerly(d, n, entry) {
			hint = 0 // the map grows as the entries arrive
		}
		if !d.chargeN(hint, entry) {
			return
		}
		m := reflect.MakeMapWithSize(t, hint)
		k := reflect.New(t.Key()).Elem()
		x := reflect.New(t.Elem()).Elem()
		for i := 0; i < n && d.err == nil; i++ {
			if i >= hint && !d.chargeN(1, entry) {
				return
			}
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
		if d.refs != nil {
			if p := d.refs.structPlan(t); p != nil { // the peer lays t out otherwise
				p.decode(d, v, t)
				return
			}
		}
		if n := d.uvarint(); n != nf && d.err == nil {
			d.fail(fmt.Errorf("the peer sent %s with %d fields, this side has %d (are both sides built from the same contract?)", t, n, nf))
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
