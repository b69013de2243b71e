package refbroker

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// Nested references carry their sender's static type, so version skew
// between the two sides' contracts is caught when a reference arrives,
// not on some later call. The first time a connection sends a reference of
// an interface or func type, it sends a type-info message first: a type ID,
// the type's name and its methods' signatures. Every reference after that
// carries the ID. The receiver checks each (sender type, own type) pair
// once and caches the answer: every method of its own type must exist in
// the sender's with the same signature; extra methods on the sender's side
// are fine (an older receiver, a newer sender). Type ID 0 means unchecked:
// any, and the root of a Dispense (checked by the bootstrap).

// maxPeerTypes bounds the types a peer may announce, so a hostile one
// cannot grow the table without end. Real programs have far fewer
// interface and func types that cross.
const maxPeerTypes = 1 << 16

// typeSig is a type's method signatures, by method name ("" for a func).
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

// typeID returns the ID under which references of static type t are sent,
// sending the type-info message the first time. The message is queued
// before the caller's, so the peer always learns an ID before its use.
func (c *Conn) typeID(t reflect.Type) (uint64, error) {
	if k := classify(t); k != kindInterface && k != kindFunc {
		return 0, nil
	}
	c.lk.Lock()
	id, ok := c.lk.sentTypes[t]
	c.lk.Unlock()
	if ok {
		return id, nil
	}
	c.announceMu.Lock()
	defer c.announceMu.Unlock()
	c.lk.Lock()
	if id, ok := c.lk.sentTypes[t]; ok {
		c.lk.Unlock()
		return id, nil
	}
	c.lk.nextTypeID++
	id = c.lk.nextTypeID
	c.lk.Unlock()

	s := sigOf(t)
	e := c.newEncoder()
	e.byte1(msgTypeInfo)
	e.uvarint(id)
	e.string(s.name)
	names := slices.Sorted(maps.Keys(s.sigs))
	e.uvarint(uint64(len(names)))
	for _, n := range names {
		e.string(n)
		e.string(s.sigs[n])
	}
	if err := c.send(e); err != nil {
		return 0, err
	}
	c.lk.Lock()
	c.lk.sentTypes[t] = id
	c.lk.Unlock()
	return id, nil
}

// learnPeerType records a type-info message.
func (c *Conn) learnPeerType(d *decoder) error {
	id := d.uvarint()
	s := &typeSig{name: d.string(), sigs: map[string]string{}}
	n := d.length(2)
	for i := 0; i < n && d.err == nil; i++ {
		name, sig := d.string(), d.string()
		s.sigs[name] = sig
	}
	if d.err != nil {
		return d.err
	}
	if id == 0 {
		return malformed("type info for type ID 0")
	}
	c.lk.Lock()
	defer c.lk.Unlock()
	if len(c.lk.peerTypes) >= maxPeerTypes {
		return malformed("more than %d types announced", maxPeerTypes)
	}
	c.lk.peerTypes[id] = s
	return nil
}

type typePair struct {
	peer uint64
	own  reflect.Type
}

// checkPeerType checks that a reference the peer sent as its type tid can
// stand for this side's type t.
func (c *Conn) checkPeerType(tid uint64, t reflect.Type) error {
	if tid == 0 {
		return nil
	}
	key := typePair{tid, t}
	c.lk.Lock()
	defer c.lk.Unlock()
	if err, ok := c.lk.checkedTypes[key]; ok {
		return err
	}
	peer := c.lk.peerTypes[tid]
	if peer == nil {
		return malformed("reference of unknown type ID %d", tid)
	}
	var problems []string
	own := sigOf(t)
	for _, n := range slices.Sorted(maps.Keys(own.sigs)) {
		theirs, ok := peer.sigs[n]
		label := n
		if n == "" {
			label = "the func"
		}
		switch {
		case !ok:
			problems = append(problems, "missing method "+label)
		case theirs != own.sigs[n]:
			problems = append(problems, fmt.Sprintf("%s is %s there, %s here", label, theirs, own.sigs[n]))
		}
	}
	var err error
	if len(problems) > 0 {
		err = fmt.Errorf("refbroker: a reference to the other side's %s arrived as %s, which it does not fit: %s (are both sides built from the same contract?)",
			peer.name, t, strings.Join(problems, "; "))
	}
	c.lk.checkedTypes[key] = err
	return err
}
