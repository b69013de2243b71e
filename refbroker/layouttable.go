package refbroker

import (
	"context"
	"reflect"
)

// layoutTable holds the struct layouts described both ways. Its methods
// assume the connection's mutex (see state).
type layoutTable struct {
	sent map[string]*structLayout // ours, described to the peer, by name
	peer map[string]*structLayout // the peer's, by name
}

func (t *layoutTable) init() {
	t.sent = make(map[string]*structLayout)
	t.peer = make(map[string]*structLayout)
}

// maxPeerLayouts bounds the struct types a peer may describe (their bytes
// count towards maxPeerTypeBytes with the interface types').
const maxPeerLayouts = 1 << 16

// describe sends the layouts of the struct types reachable from types
// that the peer has not been sent yet, before the message being built, and
// notes whether any differs from the peer's. If ctx (nil: none) ends while
// the message waits for room, it is not sent, and the layouts count as
// not sent.
func (c *Conn) describe(ctx context.Context, types ...reflect.Type) error {
	var fresh []*structLayout
	seen := map[reflect.Type]bool{}
	for _, t := range types {
		if _, done := c.described.Load(t); done {
			continue
		}
		for _, st := range structsIn(t) {
			if !seen[st] {
				seen[st] = true
				fresh = append(fresh, layoutOf(st))
			}
		}
	}
	if len(fresh) == 0 {
		c.markDescribed(types)
		return nil
	}
	// One describer at a time, so the peer has a layout before its use.
	if err := c.describeMu.lock(ctx, c.done); err != nil {
		return err
	}
	defer c.describeMu.unlock()
	differ := false
	c.locked(func(s *state) {
		n := 0
		for _, l := range fresh {
			if s.layouts.sent[l.name] != nil {
				continue
			}
			s.layouts.sent[l.name] = l
			if p := s.layouts.peer[l.name]; p != nil && !p.equal(l) {
				differ = true
			}
			fresh[n] = l
			n++
		}
		fresh = fresh[:n]
	})
	if differ {
		c.layoutsDiffer.Store(true)
	}
	if len(fresh) == 0 {
		c.markDescribed(types)
		return nil
	}
	e := c.newEncoder()
	e.byte1(msgLayouts)
	e.uvarint(uint64(len(fresh)))
	for _, l := range fresh {
		e.string(l.name)
		e.uvarint(uint64(len(l.fields)))
		for _, f := range l.fields {
			e.string(f.name)
			e.string(f.goType)
			f.wire.write(e)
		}
	}
	queued, err := c.sendCtx(e, ctx, waitForRoom)
	if !queued {
		c.locked(func(s *state) {
			for _, l := range fresh {
				delete(s.layouts.sent, l.name)
			}
		})
	}
	if err != nil {
		return err
	}
	c.markDescribed(types)
	return nil
}

// markDescribed notes that the layouts reachable from types were sent, so
// describe is one lookup for them from now on.
func (c *Conn) markDescribed(types []reflect.Type) {
	for _, t := range types {
		c.described.Store(t, true)
	}
}

// learnLayouts records a layouts message.
func (c *Conn) learnLayouts(d *decoder) error {
	parts, err := c.beginDescription(d)
	if err != nil {
		return err
	}
	n := d.length(2)
	got := make([]*structLayout, 0, n)
	for i := 0; i < n && parts.take(d); i++ {
		l := &structLayout{name: d.text("a struct's name")}
		nf := d.length(3)
		for j := 0; j < nf && parts.take(d); j++ {
			l.fields = append(l.fields, fieldLayout{name: d.text("a field's name"), goType: d.text("a field's type"), wire: readWireType(d, 0, parts)})
		}
		got = append(got, l)
	}
	if d.err != nil {
		return d.err
	}
	differ := false
	c.locked(func(s *state) {
		if len(s.layouts.peer)+len(got) > maxPeerLayouts {
			err = malformed("more than %d struct types described", maxPeerLayouts)
			return
		}
		s.types.keep(parts, d)
		for _, l := range got {
			s.layouts.peer[l.name] = l
			if own := s.layouts.sent[l.name]; own != nil && !own.equal(l) {
				differ = true
			}
		}
	})
	if differ {
		c.layoutsDiffer.Store(true)
	}
	return err
}

// structPlan returns how to decode a struct of type t sent by the peer:
// nil to decode it positionally, as both sides lay it out alike (always,
// unless some layout differs on this connection).
func (c *Conn) structPlan(t reflect.Type) *structPlan {
	if !c.layoutsDiffer.Load() {
		return nil
	}
	if p, ok := c.plans.Load(t); ok {
		return p.(*structPlan)
	}
	var peer *structLayout
	c.locked(func(s *state) { peer = s.layouts.peer[t.String()] })
	var p *structPlan
	if peer != nil && !peer.equal(layoutOf(t)) {
		p = newStructPlan(c, t, peer)
	}
	actual, _ := c.plans.LoadOrStore(t, p)
	return actual.(*structPlan)
}

// checkLayouts notes whether the peer lays out the structs reachable from
// t, a type that arrived in an any, otherwise than this side, which may
// not have described them.
func (c *Conn) checkLayouts(t reflect.Type) {
	structs := structsIn(t)
	if len(structs) == 0 || c.layoutsDiffer.Load() {
		return
	}
	differ := false
	c.locked(func(s *state) {
		for _, st := range structs {
			if p := s.layouts.peer[st.String()]; p != nil && !p.equal(layoutOf(st)) {
				differ = true
			}
		}
	})
	if differ {
		c.layoutsDiffer.Store(true)
	}
}

// layoutMismatches lists, for the structs reachable from types that the
// peer has described too, every field the two sides lay out
// incompatibly; compatible differences are logged at debug level.
func (c *Conn) layoutMismatches(types []reflect.Type) []string {
	var problems, changes []string
	seen := map[reflect.Type]bool{}
	for _, t := range types {
		for _, st := range structsIn(t) {
			if seen[st] {
				continue
			}
			seen[st] = true
			var peer *structLayout
			c.locked(func(s *state) { peer = s.layouts.peer[st.String()] })
			if peer == nil {
				continue
			}
			p, ch := layoutProblems(layoutOf(st), peer, c.sides)
			problems = append(problems, p...)
			changes = append(changes, ch...)
		}
	}
	if len(changes) > 0 {
		c.log.Debug("the two sides' structs differ compatibly", "changes", changes)
	}
	return problems
}
