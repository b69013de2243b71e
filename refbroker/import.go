package refbroker

import (
	"fmt"
	"reflect"
	"runtime"
	"weak"
)

// Imports: the peer's objects this side holds proxies for. One live Ref,
// so one proxy, per remote object; the table counts the sends received so
// that a release names exactly what this side had decoded (release.go).

// importEntry is this side's record of one peer export.
type importEntry struct {
	ref   weak.Pointer[Ref] // the live Ref, if any
	gen   uint64            // the generation of that Ref
	count uint64            // sends received and not yet released
}

// importTable holds the imports by the peer's export ID. Its methods
// assume the connection's mutex (see state).
type importTable struct {
	gen               uint64 // the last Ref generation given out
	byID              map[uint64]*importEntry
	created, released uint64 // cumulative, for Stats
}

func (t *importTable) init() { t.byID = make(map[uint64]*importEntry) }

// lookup returns the live Ref for id, counting one more send of it, or nil.
func (t *importTable) lookup(id uint64) *Ref {
	e := t.byID[id]
	if e == nil {
		return nil
	}
	r := e.ref.Value()
	if r != nil {
		e.count++
	}
	return r
}

// publish makes r, complete but for its generation, the live Ref for its
// ID, counting one send. Only now can other goroutines find it.
func (t *importTable) publish(r *Ref) {
	t.gen++
	r.gen = t.gen
	e := t.byID[r.id]
	if e == nil {
		e = &importEntry{}
		t.byID[r.id] = e
		t.created++
	}
	e.ref = weak.Make(r)
	e.gen = r.gen
	e.count++
}

// drop forgets import id if gen is still its current Ref, and returns the
// release of every send received.
func (t *importTable) drop(id, gen uint64) (release, bool) {
	e := t.byID[id]
	if e == nil || e.gen != gen {
		return release{}, false
	}
	delete(t.byID, id)
	t.released++
	return release{id: id, count: e.count}, true
}

func (t *importTable) clear() { t.byID = make(map[uint64]*importEntry) }

// readRef reads a reference in a position of static type t into v.
func (c *Conn) readRef(d *decoder, v reflect.Value, t reflect.Type) {
	switch tag := d.byte1(); tag {
	case refNil:
		v.SetZero()
	case refMine:
		id, tid := d.uvarint(), d.uvarint()
		if d.err != nil {
			return
		}
		if err := c.checkPeerType(tid, t); err != nil {
			d.fail(err)
			return
		}
		r, err := c.importRef(id, t)
		if err != nil {
			d.fail(err)
			return
		}
		pv, err := r.value()
		if err != nil {
			d.fail(err)
			return
		}
		v.Set(pv)
	case refHome:
		id := d.uvarint()
		if d.err != nil {
			return
		}
		obj, err := c.homeExport(id, t)
		if err != nil {
			d.fail(err)
			return
		}
		v.Set(obj)
	default:
		if d.err == nil {
			d.fail(malformed("bad reference tag %d at byte %d", tag, d.off-1))
		}
	}
}

// importRef returns the Ref for the peer's export id, creating it if no
// live one exists, and counts one more send of it.
func (c *Conn) importRef(id uint64, static reflect.Type) (*Ref, error) {
	var r *Ref
	closed := false
	c.locked(func(s *state) {
		if closed = s.closed; !closed {
			r = s.imports.lookup(id)
		}
	})
	if closed {
		return nil, ErrDisconnected
	}
	if r == nil {
		// Build the Ref whole before anyone can see it.
		methods, err := methodsFor(static)
		if err != nil {
			return nil, err
		}
		fresh := &Ref{conn: c, id: id, static: static, methods: methods}
		full := false
		c.locked(func(s *state) {
			if closed = s.closed; closed {
				return
			}
			if r = s.imports.lookup(id); r == nil { // nobody was faster
				if full = len(s.imports.byID) >= c.maxImps; full {
					return
				}
				s.imports.publish(fresh)
				r = fresh
			}
		})
		if closed {
			return nil, ErrDisconnected
		}
		if full {
			return nil, fmt.Errorf("this side already holds %d of the other side's objects, its limit (Options.MaxImports); drop some (they are released as they are collected), or raise the limit", c.maxImps)
		}
		if r == fresh {
			runtime.AddCleanup(r, c.refCollected, cleanupArg{id: id, gen: r.gen})
			return r, nil
		}
	}
	if r.static != static {
		return nil, fmt.Errorf("reference #%d arrived as %s, earlier as %s (are both sides built from the same contract?)", id, static, r.static)
	}
	return r, nil
}

// cleanupArg identifies a collected Ref without holding it.
type cleanupArg struct{ id, gen uint64 }

// refCollected runs after a Ref became unreachable. It must not block.
func (c *Conn) refCollected(a cleanupArg) {
	c.dropImport(a.id, a.gen)
}

// dropImport forgets the import id if gen is still its current Ref, and
// queues a release of every send received so far.
func (c *Conn) dropImport(id, gen uint64) {
	queued := false
	c.locked(func(s *state) {
		if s.closed {
			return
		}
		if r, ok := s.imports.drop(id, gen); ok {
			s.releases.queue(r)
			queued = true
		}
	})
	if queued {
		c.wakeFlusher()
	}
}
