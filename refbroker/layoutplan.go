package refbroker

import (
	"fmt"
	"reflect"
	"strings"
)

// structPlan decodes a struct sent with a layout other than this side's:
// by field name (see layout.go).
type structPlan struct {
	conn  *Conn
	err   error  // the layouts are incompatible: decoding fails with err
	nPeer uint64 // the sender's field count
	steps []fieldStep
	// ownOnly is how many bytes of the receiver's struct no field of the
	// sender's fills (its own fields, and padding): zero values, which
	// cost the sender nothing (decoder.chargeElems).
	ownOnly uint64
}

// fieldStep handles one of the sender's fields, in the sender's order.
type fieldStep struct {
	name  string
	index int // the receiver's field (reflect index); -1: skip it
	dec   func(d *decoder, v reflect.Value)
	skip  *wireType // the sender's wire type, to skip it
}

// newStructPlan builds the plan for decoding the peer's layout into the
// struct type own.
func newStructPlan(c *Conn, own reflect.Type, peer *structLayout) *structPlan {
	p := &structPlan{conn: c, nPeer: uint64(len(peer.fields))}
	ownL := layoutOf(own)
	if problems, _ := layoutProblems(ownL, peer, c.sides); len(problems) > 0 {
		p.err = incompatibleError(ownL.name, problems)
		return p
	}
	byName := map[string]int{}
	for i := range own.NumField() {
		if f := own.Field(i); f.IsExported() {
			byName[f.Name] = i
		}
	}
	p.ownOnly = uint64(own.Size())
	for _, g := range peer.fields {
		i, ok := byName[g.name]
		if !ok {
			p.steps = append(p.steps, fieldStep{name: g.name, index: -1, skip: g.wire})
			continue
		}
		f := own.Field(i)
		p.ownOnly -= uint64(f.Type.Size())
		fc, err := codecFor(f.Type)
		if err != nil { // cannot happen: own is a type this side decodes
			p.err = err
			return p
		}
		step := fieldStep{name: g.name, index: i, dec: fc.dec}
		if ow := wireTypeOf(f.Type); isFloat(ow.kind) && ow.kind != g.wire.kind {
			step.dec = floatFrom(g.wire.kind)
		}
		p.steps = append(p.steps, step)
	}
	return p
}

// incompatibleError says two layouts of a struct cannot be read into each
// other, listing every field that differs.
func incompatibleError(name string, problems []string) error {
	return fmt.Errorf("the two sides' %s are incompatible: %s (are both sides built from compatible versions of the contract?)", name, strings.Join(problems, "; "))
}

// floatFrom reads a float sent as the other float kind.
func floatFrom(sent wireKind) func(d *decoder, v reflect.Value) {
	return func(d *decoder, v reflect.Value) {
		var f float64
		if sent == wFloat32 {
			f = float64(d.float32())
		} else {
			f = d.float64()
		}
		if d.err == nil && v.OverflowFloat(f) {
			d.fail(fmt.Errorf("%v overflows %s", f, v.Type()))
			return
		}
		v.SetFloat(f)
	}
}

func (p *structPlan) decode(d *decoder, v reflect.Value, t reflect.Type) {
	if p.err != nil {
		d.fail(p.err)
		return
	}
	if n := d.uvarint(); n != p.nPeer && d.err == nil {
		d.fail(malformed("%s sent with %d fields, described with %d", t, n, p.nPeer))
		return
	}
	if !d.enter() {
		return
	}
	defer d.leave()
	for _, s := range p.steps {
		if d.err != nil {
			return
		}
		if s.index < 0 {
			p.conn.skip(d, s.skip)
			continue
		}
		s.dec(d, v.Field(s.index))
		if d.err != nil {
			d.err = fmt.Errorf("field %s.%s: %w", t, s.name, d.err)
		}
	}
}

// skip reads past a value laid out as w, which this side has no place
// for. A reference in it is counted and released at once, so the sender
// does not keep the object for nothing.
func (c *Conn) skip(d *decoder, w *wireType) {
	if d.err != nil {
		return
	}
	switch w.kind {
	case wBool:
		d.byte1()
	case wInt:
		d.varint()
	case wUint:
		d.uvarint()
	case wFloat32:
		d.take(4)
	case wFloat64:
		d.take(8)
	case wComplex:
		d.take(16)
	case wString, wMarshal:
		d.bytes()
	case wBytes:
		if n, isNil := d.nilOrLength(1); !isNil {
			d.take(n)
		}
	case wError:
		decodeError(d, 0)
	case wRef:
		c.skipRef(d)
	case wAny:
		var x any
		decodeAny(d, reflect.ValueOf(&x).Elem())
		if r, ok := x.(*Ref); ok {
			Release(r)
		}
	case wPointer:
		switch d.byte1() {
		case 0:
		case 1:
			if d.enter() {
				c.skip(d, w.elem)
				d.leave()
			}
		default:
			d.fail(malformed("bad pointer tag at byte %d", d.off-1))
		}
	case wSlice, wArray, wMap:
		n, minSize := w.n, 1
		if w.kind == wMap {
			minSize = 2
		}
		if w.kind != wArray {
			var isNil bool
			if n, isNil = d.nilOrLength(minSize); isNil {
				return
			}
		} else if w.elem.empty() {
			return // nothing of it is on the wire
		} else if n > d.remaining() {
			d.fail(malformed("an array of %d elements at byte %d exceeds the message", n, d.off))
			return
		}
		if !d.enter() {
			return
		}
		defer d.leave()
		for i := 0; i < n && d.err == nil; i++ {
			if w.kind == wMap {
				c.skip(d, w.key)
			}
			c.skip(d, w.elem)
		}
	case wStruct:
		var l *structLayout
		c.locked(func(s *state) { l = s.layouts.peer[w.name] })
		if l == nil {
			d.fail(malformed("a value of %s, which the peer never described", w.name))
			return
		}
		if n := d.uvarint(); n != uint64(len(l.fields)) && d.err == nil {
			d.fail(malformed("%s sent with %d fields, described with %d", w.name, n, len(l.fields)))
			return
		}
		if !d.enter() {
			return
		}
		defer d.leave()
		for _, f := range l.fields {
			c.skip(d, f.wire)
		}
	default:
		d.fail(malformed("bad wire kind %d", w.kind))
	}
}

// skipRef reads past a reference: one of ours coming home changes
// nothing; one of the peer's is counted as received and its release
// queued at once.
func (c *Conn) skipRef(d *decoder) {
	switch tag := d.byte1(); tag {
	case refNil:
	case refHome:
		d.uvarint()
	case refMine:
		id := d.uvarint()
		d.uvarint() // its type ID
		if d.err != nil {
			return
		}
		queued := false
		c.locked(func(s *state) {
			if s.closed {
				return
			}
			if s.imports.lookup(id) == nil { // no proxy here: give the send back now
				s.releases.queue(release{id: id, count: 1})
				queued = true
			}
		})
		if queued {
			c.wakeFlusher()
		}
	default:
		if d.err == nil {
			d.fail(malformed("bad reference tag %d at byte %d", tag, d.off-1))
		}
	}
}
