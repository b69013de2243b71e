package refbroker

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
)

// Exports: our objects the peer holds references to. An object is entered
// when it is first sent, counted once per send, and dropped when the peer
// has released every send (release.go).

// export is one of our objects that the peer holds.
type export struct {
	val     reflect.Value  // the object: an interface value or a func
	recv    reflect.Value  // what calls go to: val, or its wire adapter
	static  reflect.Type   // the type it was sent as; nil for a root
	methods *ifacePlan     // what the reference grants
	count   uint64         // sends not yet released by the peer
	key     exportKey      // identity in byKey; zero if not deduplicated
	after   afterReply     // recv's, if it lends buffers (builtin.go)
	serial  []*serialCalls // groups of recv's methods that run one at a time, if any (builtin.go)
}

// serialCalls makes the calls of a group of an export's methods run one
// at a time (wireAdapter.serial).
type serialCalls struct {
	mu      sync.Mutex
	methods []string
}

// serialize waits for method's turn on x, if its calls run one at a time,
// and returns what ends the turn (nil if there is none to end).
func (x *export) serialize(method string) func() {
	for _, g := range x.serial {
		if slices.Contains(g.methods, method) {
			g.mu.Lock()
			return g.mu.Unlock
		}
	}
	return nil
}

// exportKey identifies an object exported as a static type, so sending it
// again reuses the export.
type exportKey struct {
	obj any // the comparable dynamic value, or a func's closure address
	t   reflect.Type
}

// exportTable holds our exports by ID and by identity. Its methods assume
// the connection's mutex (see state).
type exportTable struct {
	next             uint64 // the last export ID given out
	byID             map[uint64]*export
	byKey            map[exportKey]uint64
	created, dropped uint64 // cumulative, for Stats
}

func (t *exportTable) init() {
	t.byID = make(map[uint64]*export)
	t.byKey = make(map[exportKey]uint64)
}

// add enters x, complete, whose key has no export yet (resend), and
// returns its ID.
func (t *exportTable) add(x *export) uint64 {
	t.next++
	t.byID[t.next] = x
	t.created++
	if x.key.t != nil {
		t.byKey[x.key] = t.next
	}
	return t.next
}

// resend counts one more send of the export with key, if there is one.
func (t *exportTable) resend(key exportKey) (uint64, bool) {
	if key.t == nil {
		return 0, false
	}
	id, ok := t.byKey[key]
	if ok {
		t.byID[id].count++
	}
	return id, ok
}

// dropSends subtracts count sends from export id and drops it at zero.
// It reports false, changing nothing, if the export does not exist or has
// fewer sends.
func (t *exportTable) dropSends(id, count uint64) bool {
	x := t.byID[id]
	if x == nil || count > x.count {
		return false
	}
	x.count -= count
	if x.count == 0 {
		delete(t.byID, id)
		if x.key.t != nil {
			delete(t.byKey, x.key)
		}
		t.dropped++
	}
	return true
}

// clear empties the table and returns what it held.
func (t *exportTable) clear() map[uint64]*export {
	left := t.byID
	t.byID, t.byKey = make(map[uint64]*export), make(map[exportKey]uint64)
	return left
}

// addExport enters x into the export table, or counts one more send of the
// export with the same key (entered meanwhile), and returns its ID. A new
// export past Options.MaxExports is refused.
func (c *Conn) addExport(x *export) (uint64, error) {
	var id uint64
	full := false
	c.locked(func(s *state) {
		if resent, ok := s.exports.resend(x.key); ok {
			id = resent
			return
		}
		if full = len(s.exports.byID) >= c.maxExps; !full {
			id = s.exports.add(x)
		}
	})
	if full {
		return 0, fmt.Errorf("the other side already holds %d of this side's objects, the limit (Options.MaxExports); it must release some (its proxies are released as they are collected), or raise the limit", c.maxExps)
	}
	return id, nil
}

// export returns our export id, or nil.
func (c *Conn) export(id uint64) *export {
	var x *export
	c.locked(func(s *state) { x = s.exports.byID[id] })
	return x
}

// writeRef writes v, a value in a position of static type t (an interface
// with methods, a func, or any), by reference: home if it is a proxy of
// the peer's, else as an export of ours.
func (c *Conn) writeRef(e *encoder, v reflect.Value, t reflect.Type) error {
	if v.IsNil() {
		e.byte1(refNil)
		return nil
	}
	if r := refOf(v); r != nil && r.conn == c {
		if r.released.Load() {
			return &sentinelError{msg: r.String() + " was released, so it cannot be sent back", sentinel: ErrReleased}
		}
		e.byte1(refHome)
		e.uvarint(r.id)
		e.home = append(e.home, r) // a release must not overtake this message
		return nil
	}
	// Sending an object again reuses its export: look it up before
	// building a new one.
	var key exportKey
	if v.Kind() == reflect.Func {
		key = exportKey{obj: funcIdentity(v), t: t}
	} else if dyn := v.Elem(); dyn.Comparable() {
		key = exportKey{obj: dyn.Interface(), t: t}
	}
	id, ok := uint64(0), false
	c.locked(func(s *state) { id, ok = s.exports.resend(key) })
	if !ok {
		x, err := newExport(v, t, key, c.chunk())
		if err != nil {
			return err
		}
		if id, err = c.addExport(x); err != nil {
			return err
		}
	}
	tid, err := c.typeID(e.ctx, t)
	if err != nil {
		c.unsend([]uint64{id})
		return err
	}
	e.sent = append(e.sent, id)
	e.byte1(refMine)
	e.uvarint(id)
	e.uvarint(tid)
	return nil
}

// newExport builds the export of v sent as static type t on a connection
// whose messages carry chunk bytes of a read at most (Conn.chunk).
func newExport(v reflect.Value, t reflect.Type, key exportKey, chunk int) (*export, error) {
	methods, err := methodsFor(t)
	if err != nil {
		return nil, err
	}
	x := &export{static: t, methods: methods, count: 1, key: key}
	if v.Kind() == reflect.Func {
		x.val = v
	} else {
		x.val = reflect.New(t).Elem()
		x.val.Set(v)
	}
	x.recv = x.val
	if a, ok := adapters[t]; ok {
		x.recv = a.wrap(x.val, chunk)
		x.after, _ = x.recv.Interface().(afterReply)
		for _, methods := range a.serial {
			x.serial = append(x.serial, &serialCalls{methods: methods})
		}
	}
	return x, nil
}

// homeExport returns the object of our export id, which the peer sent
// back, for a position of static type t, if the export's grant allows it
// there (see grants).
func (c *Conn) homeExport(id uint64, t reflect.Type) (reflect.Value, error) {
	x := c.export(id)
	if x == nil {
		return reflect.Value{}, fmt.Errorf("the peer sent back reference #%d, which is not exported here (released, or never sent)", id)
	}
	if !x.grants(t) {
		return reflect.Value{}, fmt.Errorf("the peer sent back reference #%d, granted as %s, where %s is expected: a reference comes home only where its grant covers every method (hint: send it back at the type it was sent as)", id, x.grantName(), t)
	}
	obj := x.val
	if obj.Kind() == reflect.Interface {
		obj = obj.Elem()
	}
	if !obj.Type().AssignableTo(t) {
		return reflect.Value{}, fmt.Errorf("the peer sent back reference #%d (%s) where %s is expected", id, obj.Type(), t)
	}
	return obj, nil
}

// grants reports whether x may come home in a position of static type t.
// The peer must not widen what it was given by sending a reference back
// at another type: this side's code would then call, on its own object,
// methods the peer was never granted. So a reference comes home as an
// interface only if every method of it is among those granted, with the
// same signature; as a func only at the type it was sent as; and as any
// only if it was sent as any (an any would let this side's code assert any
// method of the object).
func (x *export) grants(t reflect.Type) bool {
	switch classify(t) {
	case kindAny:
		return x.static == anyType
	case kindFunc:
		return x.static == t
	case kindInterface:
		if x.static != nil && classify(x.static) != kindInterface {
			return false
		}
		for i := range t.NumMethod() {
			m := t.Method(i)
			if sig, ok := x.grantedSig(m.Name); !ok || sig != m.Type.String() {
				return false
			}
		}
		return true
	}
	return false
}

// grantedSig returns the signature of the granted method name.
func (x *export) grantedSig(name string) (string, bool) {
	if x.static != nil { // the interface it was sent as (not its wire adapter)
		sig, ok := sigOf(x.static).sigs[name]
		return sig, ok
	}
	m, ok := x.methods.methods[name] // a root: the methods the bootstrap asked for
	if !ok {
		return "", false
	}
	return m.plan.t.String(), true
}

// grantName names x's grant in messages.
func (x *export) grantName() string {
	if x.static != nil {
		return x.static.String()
	}
	return "the root " + x.methods.t.String()
}
