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
	if p := nameProblem(name); p != "" {
		return zero, fmt.Errorf("refbroker: Dispense[%s](%q): the name %s", t, name, p)
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
	// A built-in interface that crosses with other methods (io.Reader's
	// ReadAtMost: builtin.go) is asked for with those, which its proxy
	// calls.
	wire := t
	if a, ok := adapters[t]; ok {
		wire = a.wire
	}
	want := methodSigs(wire)
	var out T
	outs := []reflect.Value{reflect.ValueOf(&out).Elem()}
	err = c.roundTrip(ctx, fmt.Sprintf("Dispense(%q)", name), []*codec{rc}, outs, nil, func(e *encoder, seq uint64) error {
		e.byte1(msgBootstrap)
		e.uvarint(seq)
		e.string(name)
		e.string(t.String())
		e.uvarint(uint64(len(want)))
		for _, m := range want {
			e.string(m[0])
			e.string(m[1])
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
		req.want = append(req.want, [2]string{d.name("a Dispense names a method"), d.text("a method's signature")})
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
	x, problems := rootExport(v, req, c.chunk())
	// Describe the structs these methods carry, and check them against
	// the dispensing side's, so that one answer lists every difference.
	types := make([]reflect.Type, 0, len(x.methods.methods))
	for _, m := range x.methods.methods {
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
	id, err := c.addExport(x)
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

// rootExport makes the export a Dispense asks for of the root object v,
// with the problems that keep it from being granted, if any: v itself,
// granting the methods asked for; or, asked for as a built-in interface
// that crosses with other methods (builtin.go: an io.Reader is asked for
// with ReadAtMost), v adapted as it would be were it passed at that type:
// one export for every Dispense of it and every send of it at that type,
// so that its calls take turns across them all.
func rootExport(v reflect.Value, req *bootstrapReq, chunk int) (*export, []string) {
	want := req.want
	if t, ok := adaptedNamed[req.iface]; ok && wireAsked(adapters[t].wire, want) {
		if v.Type().Implements(t) {
			var key exportKey
			if v.Comparable() {
				key = exportKey{obj: v.Interface(), t: t}
			}
			x, err := newExport(v, t, key, chunk)
			if err != nil {
				return &export{methods: &ifacePlan{t: t}}, []string{err.Error()}
			}
			return x, nil
		}
		want = methodSigs(t) // name what v lacks of t, not of its wire form
	}
	methods, problems := rootMethods(v, req.iface, want)
	return &export{val: v, recv: v, methods: methods, count: 1}, problems
}

// wireAsked reports whether want, a Dispense's methods, are those of the
// wire interface w, each once, with w's signatures: what a built-in proxy
// asks for.
func wireAsked(w reflect.Type, want [][2]string) bool {
	if len(want) != w.NumMethod() {
		return false
	}
	seen := make(map[string]bool, len(want))
	for _, m := range want {
		wm, ok := w.MethodByName(m[0])
		if !ok || seen[m[0]] || wm.Type.String() != m[1] {
			return false
		}
		seen[m[0]] = true
	}
	return true
}

// methodSigs lists the methods of interface t with their signatures, as a
// Dispense asks for them.
func methodSigs(t reflect.Type) [][2]string {
	sigs := make([][2]string, t.NumMethod())
	for i := range sigs {
		m := t.Method(i)
		sigs[i] = [2]string{m.Name, m.Type.String()}
	}
	return sigs
}
