package refbroker

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
	"weak"
)

// Ref is a reference to an object on the other side of a connection. Typed
// proxies embed a *Ref and forward each method through Invoke; a reference
// that arrived in a position of type any is handed out as a *Ref itself.
//
// A Ref grants exactly the methods of the static interface type it crossed
// as. It stays valid until Release is called on it or on its proxy, or until
// the proxy is garbage collected; the remote object lives at least as long.
type Ref struct {
	conn     *Conn
	id       uint64       // the peer's export ID
	gen      uint64       // which import of id this is (see importTable)
	static   reflect.Type // the type it crossed as
	methods  *ifacePlan   // what it grants; empty for any
	released atomic.Bool
	fnPtr    uintptr // for a func proxy: its closure's address

	once  sync.Once
	proxy reflect.Value // the value handed out: a typed proxy, a func or the Ref
	perr  error
}

// ref gives the broker the *Ref behind any proxy that embeds one. The method
// is unexported, so only values built around a real Ref have it.
func (r *Ref) ref() *Ref { return r }

type refHolder interface{ ref() *Ref }

// String describes the reference for logs and messages.
func (r *Ref) String() string {
	if r == nil {
		return "refbroker.Ref(nil)"
	}
	return fmt.Sprintf("refbroker.Ref(%s #%d)", r.static, r.id)
}

// Invoke calls method on the remote object. args are the method's
// parameters in order (a context.Context first if the method takes one; a
// variadic parameter as one slice). results are pointers to the method's
// results other than a final error, in order. Invoke returns the remote
// method's error result, or an error from the broker: ErrDisconnected,
// ErrReleased, the caller's context error, a panic in the remote method, or
// a mismatch between the arguments and the method.
func (r *Ref) Invoke(method string, args []any, results ...any) error {
	if r == nil {
		return fmt.Errorf("refbroker: Invoke(%q) on a nil *Ref", method)
	}
	m := r.methods.methods[method]
	if m == nil {
		return fmt.Errorf("refbroker: %s has no method %s (the reference crossed as %s)", r.static, method, r.static)
	}
	fp := m.plan
	if len(args) != fp.t.NumIn() {
		return fmt.Errorf("refbroker: %s: got %d arguments, want %d (%s)", m.full, len(args), fp.t.NumIn(), fp.t)
	}
	var ctx context.Context
	vals := make([]reflect.Value, 0, len(fp.in))
	for i, a := range args {
		pt := fp.t.In(i)
		if i == 0 && fp.ctx {
			if a != nil {
				c, ok := a.(context.Context)
				if !ok {
					return fmt.Errorf("refbroker: %s: argument 1 is %T, want context.Context", m.full, a)
				}
				ctx = c
			}
			continue
		}
		if a == nil {
			vals = append(vals, reflect.Zero(pt))
			continue
		}
		v := reflect.ValueOf(a)
		if v.Type() != pt {
			if !v.Type().AssignableTo(pt) {
				return fmt.Errorf("refbroker: %s: argument %d is %T, want %s", m.full, i+1, a, pt)
			}
			nv := reflect.New(pt).Elem()
			nv.Set(v)
			v = nv
		}
		vals = append(vals, v)
	}
	nOut := fp.t.NumOut()
	nRes := nOut
	if fp.errOut {
		nRes--
	}
	if len(results) != nRes {
		return fmt.Errorf("refbroker: %s: got %d result pointers, want %d (%s)", m.full, len(results), nRes, fp.t)
	}
	outs := make([]reflect.Value, nOut)
	for i := range nRes {
		p := reflect.ValueOf(results[i])
		if p.Kind() != reflect.Pointer || p.IsNil() || p.Type().Elem() != fp.t.Out(i) {
			return fmt.Errorf("refbroker: %s: result %d is %T, want *%s", m.full, i+1, results[i], fp.t.Out(i))
		}
		outs[i] = p.Elem()
	}
	var errResult error
	if fp.errOut {
		outs[nOut-1] = reflect.ValueOf(&errResult).Elem()
	}
	if err := r.call(ctx, m, vals, outs); err != nil {
		return err
	}
	return errResult
}

func (r *Ref) call(ctx context.Context, m *methodPlan, args, outs []reflect.Value) error {
	if r.released.Load() {
		return &callError{method: m.full, sentinel: ErrReleased}
	}
	err := r.conn.call(ctx, r.id, m, args, outs)
	// Until the call has returned, r must not be collected: its cleanup
	// would send a release that could overtake the call on the wire.
	runtime.KeepAlive(r)
	return err
}

// value returns what the receiver of this reference is handed: the typed
// proxy, a func of the exact type, or the Ref itself for any. It is built
// once, outside any lock, since a proxy constructor is user code.
func (r *Ref) value() (reflect.Value, error) {
	r.once.Do(func() {
		switch classify(r.static) {
		case kindFunc:
			r.proxy = r.makeFunc()
		case kindInterface:
			newProxy, ok := proxyFor(r.static)
			if !ok {
				r.perr = fmt.Errorf("refbroker: no proxy registered for interface %s (hint: call refbroker.RegisterInterface[%s] in an init func of the package that declares it)", r.static, r.static)
				return
			}
			r.proxy = newProxy(r)
			if r.proxy.IsNil() {
				r.perr = fmt.Errorf("refbroker: the proxy constructor for %s returned nil", r.static)
			}
		default:
			r.proxy = reflect.ValueOf(r)
		}
	})
	return r.proxy, r.perr
}

// makeFunc builds a func of the reference's exact type that calls the
// remote func. A failure is returned through a final error result; a func
// without one returns zero values and the failure is logged.
func (r *Ref) makeFunc() reflect.Value {
	ft := r.static
	m := r.methods.methods[""]
	fn := reflect.MakeFunc(ft, func(in []reflect.Value) []reflect.Value {
		var ctx context.Context
		args := in
		if m.plan.ctx {
			ctx, _ = in[0].Interface().(context.Context)
			args = in[1:]
		}
		outs := make([]reflect.Value, ft.NumOut())
		for i := range outs {
			outs[i] = reflect.New(ft.Out(i)).Elem()
		}
		if err := r.call(ctx, m, args, outs); err != nil {
			for _, o := range outs {
				o.SetZero()
			}
			switch {
			case m.plan.errOut:
				outs[len(outs)-1].Set(reflect.ValueOf(&err).Elem())
			case errors.Is(err, ErrDisconnected) || errors.Is(err, ErrReleased):
				// Expected once the other side is gone or done with it.
				r.conn.log.Debug("call through a func reference failed; it returns zero values", "func", ft.String(), "error", err)
			default:
				r.conn.log.Error("call through a func reference failed; the func has no error result, so it returns zero values",
					"func", ft.String(), "error", err)
			}
		}
		return outs
	})
	r.fnPtr = funcIdentity(fn)
	w := weak.Make(r)
	funcProxies.Store(r.fnPtr, w)
	runtime.AddCleanup(r, func(addr uintptr) { funcProxies.CompareAndDelete(addr, w) }, r.fnPtr)
	return fn
}

// funcProxies maps the closure address of every live func proxy to its
// Ref, so a func coming home, or passed to Release, is recognised. An entry
// is only believed when its weak pointer is alive and names the same
// address: the proxy is held by its Ref, so while the Ref lives the address
// cannot be reused.
var funcProxies sync.Map // uintptr -> weak.Pointer[Ref]

// funcIdentity returns the address of the closure behind a func value. Two
// func values are the same func exactly when these are equal.
func funcIdentity(v reflect.Value) uintptr {
	f := v.Interface()
	return uintptr((*[2]unsafe.Pointer)(unsafe.Pointer(&f))[1])
}

// refOf returns the Ref behind v if v is a proxy (typed, func or *Ref).
func refOf(v reflect.Value) *Ref {
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return refOf(v.Elem())
	case reflect.Func:
		if v.IsNil() {
			return nil
		}
		addr := funcIdentity(v)
		w, ok := funcProxies.Load(addr)
		if !ok {
			return nil
		}
		if r := w.(weak.Pointer[Ref]).Value(); r != nil && r.fnPtr == addr {
			return r
		}
		return nil
	}
	if !v.CanInterface() {
		return nil
	}
	if h, ok := v.Interface().(refHolder); ok {
		return h.ref()
	}
	return nil
}

// Release drops the remote object behind v now, instead of when v is
// garbage collected. v is a proxy handed out by the broker: a typed proxy,
// a func, or a *Ref. Later calls through it return ErrReleased. Releasing
// twice is a no-op.
func Release(v any) error {
	if v == nil {
		return fmt.Errorf("refbroker: Release(nil)")
	}
	r := refOf(reflect.ValueOf(v))
	if r == nil {
		return fmt.Errorf("refbroker: Release: %T is not a proxy for a remote object", v)
	}
	if r.released.CompareAndSwap(false, true) {
		r.conn.dropImport(r.id, r.gen)
	}
	return nil
}

// importEntry is this side's record of one peer export.
type importEntry struct {
	ref   weak.Pointer[Ref] // the live Ref, if any
	gen   uint64            // the generation of that Ref
	count uint64            // sends received and not yet released
}

// cleanupArg identifies a collected Ref without holding it.
type cleanupArg struct{ id, gen uint64 }

// importRef returns the Ref for the peer's export id, creating it if no
// live one exists, and counts one more send of it.
func (c *Conn) importRef(id uint64, static reflect.Type) (*Ref, error) {
	c.lk.Lock()
	e := c.lk.imports[id]
	if e != nil {
		if r := e.ref.Value(); r != nil {
			e.count++
			c.lk.Unlock()
			if r.static != static {
				return nil, fmt.Errorf("refbroker: reference #%d arrived as %s, earlier as %s (are both sides built from the same contract?)", id, static, r.static)
			}
			return r, nil
		}
	}
	if c.lk.closed {
		c.lk.Unlock()
		return nil, ErrDisconnected
	}
	c.lk.gen++
	r := &Ref{conn: c, id: id, gen: c.lk.gen, static: static}
	if e == nil {
		e = &importEntry{}
		c.lk.imports[id] = e
	}
	e.ref = weak.Make(r)
	e.gen = r.gen
	e.count++
	c.lk.Unlock()
	c.importsCreated.Add(1)

	var err error
	switch classify(static) {
	case kindFunc:
		r.methods, err = funcMethods(static)
	case kindInterface:
		r.methods, err = ifacePlanFor(static)
	default:
		r.methods = &ifacePlan{t: static}
	}
	if err != nil {
		return nil, err
	}
	runtime.AddCleanup(r, c.refCollected, cleanupArg{id: id, gen: r.gen})
	return r, nil
}

// refCollected runs after a Ref became unreachable. It must not block.
func (c *Conn) refCollected(a cleanupArg) {
	c.dropImport(a.id, a.gen)
}

// dropImport forgets the import id if gen is still its current Ref, and
// queues a release of every send received so far.
func (c *Conn) dropImport(id, gen uint64) {
	c.lk.Lock()
	e := c.lk.imports[id]
	if c.lk.closed || e == nil || e.gen != gen {
		c.lk.Unlock()
		return
	}
	delete(c.lk.imports, id)
	c.lk.releases = append(c.lk.releases, release{id: id, count: e.count})
	c.lk.Unlock()
	c.importsReleased.Add(1)
	select {
	case c.releaseReady <- struct{}{}:
	default:
	}
}

// release is one entry of a release message.
type release struct{ id, count uint64 }
