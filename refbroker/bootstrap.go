package refbroker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// Bootstrap: Dispense asks the peer for a root object it serves by name,
// listing the methods it wants with their signatures; the serving side
// checks its object has them and answers with a reference that grants
// exactly those methods.

// Dispense asks the peer for the root object it serves under name, as the
// interface type T. T must be an interface with a registered proxy; every
// type reachable from its methods must be able to cross. The peer checks
// that its object has every method of T with the same signature.
func Dispense[T any](c *Conn, name string) (T, error) {
	ctx, cancel := c.noContext()
	defer cancel()
	return DispenseContext[T](ctx, c, name)
}

// DispenseContext is Dispense that gives up when ctx ends before the peer
// answers, returning ctx's error: a peer that is stopped, or will not
// answer, holds the caller no longer than ctx. An answer that comes later
// is received and its reference released.
func DispenseContext[T any](ctx context.Context, c *Conn, name string) (T, error) {
	v, err := dispense[T](ctx, c, name)
	return v, gaveUp(ctx, fmt.Sprintf("Dispense(%q)", name), err)
}

func dispense[T any](ctx context.Context, c *Conn, name string) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Interface || classify(t) != kindInterface {
		return zero, fmt.Errorf("refbroker: Dispense[%s](%q): %s is not an interface type with methods", t, name, t)
	}
	switch problems := contractProblems(t); len(problems) {
	case 0:
	case 1:
		return zero, fmt.Errorf("refbroker: Dispense[%s](%q): %s", t, name, problems[0])
	default:
		return zero, fmt.Errorf("refbroker: Dispense[%s](%q): %d problems: %s", t, name, len(problems), strings.Join(problems, "; "))
	}
	rc, err := codecFor(t)
	if err != nil {
		return zero, fmt.Errorf("refbroker: Dispense[%s](%q): %w", t, name, err)
	}
	// The peer checks its structs' layouts against these (and answers
	// with its own) before it answers.
	if err := c.describe(ctx, t); err != nil {
		if errors.Is(err, ErrDisconnected) {
			return zero, c.disconnected(fmt.Sprintf("Dispense(%q)", name))
		}
		return zero, err
	}
	var out T
	outs := []reflect.Value{reflect.ValueOf(&out).Elem()}
	err = c.roundTrip(ctx, fmt.Sprintf("Dispense(%q)", name), []*codec{rc}, outs, nil, func(e *encoder, seq uint64) error {
		e.byte1(msgBootstrap)
		e.uvarint(seq)
		e.string(name)
		e.string(t.String())
		e.uvarint(uint64(t.NumMethod()))
		for i := range t.NumMethod() {
			m := t.Method(i)
			e.string(m.Name)
			e.string(m.Type.String())
		}
		return nil
	})
	if err != nil {
		return zero, err
	}
	return out, nil
}

// bootstrapReq is a Dispense from the peer.
type bootstrapReq struct {
	seq   uint64
	name  string      // the root object asked for
	iface string      // the interface it is asked as
	want  [][2]string // (method, signature) pairs
}

// readBootstrap reads a bootstrap message after its type byte. Its names
// are bounded (maxName): the interface's goes into the name of each
// method granted, and all of them into the errors.
func readBootstrap(d *decoder) (*bootstrapReq, error) {
	req := &bootstrapReq{seq: d.uvarint(), name: d.name("a Dispense names an object"), iface: d.name("a Dispense names an interface")}
	n := d.length(2)
	for i := 0; i < n && d.err == nil; i++ {
		req.want = append(req.want, [2]string{d.name("a Dispense names a method"), d.string()})
	}
	if d.err != nil {
		return nil, d.err
	}
	return req, nil
}

// serveBootstrap answers a Dispense: a reference to the root object, or
// every way the object does not fit what was asked.
func (c *Conn) serveBootstrap(req *bootstrapReq) {
	obj, ok := c.roots[req.name]
	if !ok || obj == nil {
		names := slices.Sorted(maps.Keys(c.roots))
		c.replyFailed(req.seq, fmt.Errorf("refbroker: no object named %q is served here (served: %q)", req.name, names))
		return
	}
	v := reflect.ValueOf(obj)
	methods, problems := rootMethods(v, req.iface, req.want)
	// Describe the structs these methods carry, and check them against
	// the dispensing side's, so that one answer lists every difference.
	types := make([]reflect.Type, 0, len(methods.methods))
	for _, m := range methods.methods {
		types = append(types, m.plan.t)
	}
	if err := c.describe(context.Background(), types...); err != nil {
		return // the connection is gone
	}
	problems = append(problems, c.layoutMismatches(types)...)
	if len(problems) > 0 {
		c.replyFailed(req.seq, fmt.Errorf("refbroker: object %q (%s) does not implement %s: %s", req.name, v.Type(), req.iface, strings.Join(problems, "; ")))
		return
	}
	id, err := c.addExport(&export{val: v, recv: v, methods: methods, count: 1})
	if err != nil {
		c.replyFailed(req.seq, fmt.Errorf("refbroker: Dispense(%q): %w", req.name, err))
		return
	}
	e := c.newEncoder()
	e.byte1(msgReturn)
	e.uvarint(req.seq)
	e.byte1(statusOK)
	e.byte1(refMine)
	e.uvarint(id)
	e.uvarint(0) // the root's type was checked by the bootstrap itself
	_ = c.send(e)
}
