package refbroker

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// Type info: nested references carry their sender's static type, so
// version skew between the two sides' contracts is caught when a
// reference arrives, not on some later call. The first time a connection
// sends a reference of an interface or func type, it sends a type-info
// message first: a type ID, the type's name and its methods' signatures.
// Every reference after that carries the ID. The receiver checks each
// (sender type, own type) pair once and caches the answer: every method of
// its own type must exist in the sender's with the same signature; extra
// methods on the sender's side are fine (an older receiver, a newer
// sender). Type ID 0 means unchecked: any, and the root of a Dispense
// (checked by the bootstrap).

// maxPeerTypes, maxPeerTypeBytes and maxPeerTypeParts bound the types a
// peer may announce, the bytes of their descriptions and their parts
// (methods, structs, fields, the nodes of fields' wire types: each takes
// this side tens of bytes for a few of the peer's), so a hostile peer
// cannot grow the tables without end; a peer that passes any ends the
// connection. Real programs have far fewer interface and func types that
// cross, with descriptions of a few hundred bytes each.
const (
	maxPeerTypes     = 1 << 16
	maxPeerTypeBytes = 4 << 20
	maxPeerTypeParts = 1 << 18
)

// typeParts counts the parts of a description being read against what is
// left of maxPeerTypeParts; start is where the description began.
type typeParts struct{ start, left, used int }

// take counts one part, and fails d if there is no room for it; it
// reports false once d has failed.
func (p *typeParts) take(d *decoder) bool {
	if d.err != nil {
		return false
	}
	if p.used >= p.left {
		d.fail(malformed("type descriptions of more than %d parts (methods, structs, fields) announced", maxPeerTypeParts))
		return false
	}
	p.used++
	return true
}

// beginDescription starts reading a type description (the rest of d): it
// fails with a protocol error if its bytes would take the peer past
// maxPeerTypeBytes, and otherwise returns the counter for its parts, with
// what is left of the peer's allowance. The bytes are checked before the
// description is parsed: parsed, a description takes tens of times its
// bytes (a method's two strings, a map entry), so a 64 MiB one past the
// limit would cost gigabytes before a count after parsing refused it.
func (c *Conn) beginDescription(d *decoder) (*typeParts, error) {
	p := &typeParts{start: d.off}
	var err error
	c.locked(func(s *state) {
		if s.types.kept+d.remaining() > maxPeerTypeBytes {
			err = malformed("type descriptions of more than %d bytes announced", maxPeerTypeBytes)
			return
		}
		p.left = maxPeerTypeParts - s.types.parts
	})
	return p, err
}

// keep counts a description read whole (p, ending at d's offset) into the
// peer's allowance.
func (t *typeTable) keep(p *typeParts, d *decoder) {
	t.kept += d.off - p.start
	t.parts += p.used
}

type typePair struct {
	peer uint64
	own  reflect.Type
}

// typeTable holds the types described both ways. Its methods assume the
// connection's mutex (see state).
type typeTable struct {
	next    uint64                  // the last type ID given out
	sent    map[reflect.Type]uint64 // our static types the peer knows, by ID
	peer    map[uint64]*typeSig     // the peer's static types, by its IDs
	kept    int                     // bytes of the peer's descriptions announced
	parts   int                     // parts of them (typeParts)
	checked map[typePair]error      // (peer type, our type) checks done
}

func (t *typeTable) init() {
	t.sent = make(map[reflect.Type]uint64)
	t.peer = make(map[uint64]*typeSig)
	t.checked = make(map[typePair]error)
}

// typeID returns the ID under which references of static type t are sent,
// sending the type-info message the first time. The message is queued
// before the caller's, so the peer always learns an ID before its use; if
// ctx (nil: none) ends while it waits for room, it is not sent, and the
// type keeps no ID.
func (c *Conn) typeID(ctx context.Context, t reflect.Type) (uint64, error) {
	if k := classify(t); k != kindInterface && k != kindFunc {
		return 0, nil
	}
	id, ok := uint64(0), false
	c.locked(func(s *state) { id, ok = s.types.sent[t] })
	if ok {
		return id, nil
	}
	if err := c.announceMu.lock(ctx, c.done); err != nil {
		return 0, err
	}
	defer c.announceMu.unlock()
	c.locked(func(s *state) {
		if id, ok = s.types.sent[t]; !ok {
			s.types.next++
			id = s.types.next
		}
	})
	if ok {
		return id, nil
	}
	if err := c.describe(ctx, t); err != nil { // the structs its methods carry
		return 0, err
	}
	sig := sigOf(t)
	e := c.newEncoder()
	e.byte1(msgTypeInfo)
	e.uvarint(id)
	e.string(sig.name)
	names := slices.Sorted(maps.Keys(sig.sigs))
	e.uvarint(uint64(len(names)))
	for _, n := range names {
		e.string(n)
		e.string(sig.sigs[n])
	}
	if err := c.send(e); err != nil {
		return 0, err
	}
	c.locked(func(s *state) { s.types.sent[t] = id })
	return id, nil
}

// learnPeerType records a type-info message.
func (c *Conn) learnPeerType(d *decoder) error {
	parts, err := c.beginDescription(d)
	if err != nil {
		return err
	}
	id := d.uvarint()
	sig := &typeSig{name: d.text("a type's name"), sigs: map[string]string{}}
	n := d.length(2)
	for i := 0; i < n && parts.take(d); i++ {
		name, s := d.text("a method's name"), d.text("a method's signature")
		sig.sigs[name] = s
	}
	if d.err != nil {
		return d.err
	}
	if id == 0 {
		return malformed("type info for type ID 0")
	}
	c.locked(func(s *state) {
		if len(s.types.peer) >= maxPeerTypes {
			err = malformed("more than %d types announced", maxPeerTypes)
			return
		}
		s.types.keep(parts, d)
		s.types.peer[id] = sig
	})
	return err
}

// checkPeerType checks that a reference the peer sent as its type tid can
// stand for this side's type t.
func (c *Conn) checkPeerType(tid uint64, t reflect.Type) error {
	if tid == 0 {
		return nil
	}
	key := typePair{tid, t}
	var (
		peer    *typeSig
		err     error
		checked bool
	)
	c.locked(func(s *state) {
		if err, checked = s.types.checked[key]; !checked {
			peer = s.types.peer[tid]
		}
	})
	if checked {
		return err
	}
	if peer == nil {
		return malformed("reference of unknown type ID %d", tid)
	}
	err = peerMismatch(peer, t)
	c.locked(func(s *state) { s.types.checked[key] = err })
	return err
}

// peerMismatch says how the peer's type fails to stand for t, or nil.
func peerMismatch(peer *typeSig, t reflect.Type) error {
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
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("a reference to the other side's %s arrived as %s, which it does not fit: %s (are both sides built from the same contract?)",
		peer.name, t, strings.Join(problems, "; "))
}
