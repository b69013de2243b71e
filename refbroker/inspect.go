package refbroker

import (
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Inspection lets a tool list the objects a peer serves and call their
// methods with JSON arguments, without a Go contract: the serving side
// does the reflection. It reaches only the root objects the peer serves
// (Options.Roots), and only their exported methods, and only with data
// encoding/json can decode: a parameter of interface or func type cannot be
// given, and funcs or interfaces inside data stay nil.

// ObjectInfo describes a root object a peer serves.
type ObjectInfo struct {
	Name    string       // the name it is served under
	Type    string       // its concrete Go type
	Methods []MethodInfo // its exported methods, by name
}

// MethodInfo is one method of an ObjectInfo.
type MethodInfo struct {
	Name      string // "Get"
	Signature string // "func(string) ([]byte, error)"
}

// Ping makes a round trip to the peer: nil once the peer has read a
// request and answered it (its side of the connection is alive and
// reading, however many calls it runs), ErrDisconnected if the
// connection has ended. Without a context, it is bounded by
// Options.CallTimeout, if set. The request is a ping, which the peer's
// reader answers at once, without running anything; to a peer of a
// refplug from before it (its hello does not announce it), a Describe,
// whose answer is dropped (a refusal because the peer runs all the calls
// its MaxConcurrentCalls allows is an answer too).
func (c *Conn) Ping() error {
	ctx, cancel := c.noContext()
	defer cancel()
	return c.PingContext(ctx)
}

// PingContext is Ping that returns ctx's error if ctx ends before the peer
// answers: a peer that is stopped, or whose side no longer reads, holds
// the caller no longer than ctx.
func (c *Conn) PingContext(ctx context.Context) error {
	var err error
	if c.peerReads(featPing) {
		err = c.roundTrip(ctx, "Ping", nil, nil, nil, func(e *encoder, seq uint64) error {
			e.byte1(msgPing)
			e.uvarint(seq)
			return nil
		})
	} else {
		_, err = c.describeRoots(ctx)
	}
	var refused *rejectedCall
	if errors.As(err, &refused) {
		// The peer read the request and refused it (it runs as many calls
		// as Options.MaxConcurrentCalls allows): it is alive, only busy.
		return nil
	}
	if errors.Is(err, ErrDisconnected) {
		return c.disconnected("Ping")
	}
	return gaveUp(ctx, "Ping", err)
}

// Describe lists the root objects the peer serves, with their methods.
func (c *Conn) Describe() ([]ObjectInfo, error) {
	ctx, cancel := c.noContext()
	defer cancel()
	return c.DescribeContext(ctx)
}

// DescribeContext is Describe that returns ctx's error if ctx ends before
// the peer answers.
func (c *Conn) DescribeContext(ctx context.Context) ([]ObjectInfo, error) {
	infos, err := c.describeRoots(ctx)
	return infos, gaveUp(ctx, "Describe", err)
}

func (c *Conn) describeRoots(ctx context.Context) ([]ObjectInfo, error) {
	rc, err := codecFor(reflect.TypeFor[[]ObjectInfo]())
	if err != nil {
		return nil, err
	}
	var out []ObjectInfo
	err = c.roundTrip(ctx, "Describe", []*codec{rc}, []reflect.Value{reflect.ValueOf(&out).Elem()}, nil,
		func(e *encoder, seq uint64) error {
			e.byte1(msgDescribe)
			e.uvarint(seq)
			return nil
		})
	if err != nil {
		return nil, err
	}
	// What the peer says is shown as it is (an inspector prints it): Go's
	// names and signatures are printable text.
	for _, o := range out {
		texts := []string{o.Name, o.Type}
		for _, m := range o.Methods {
			texts = append(texts, m.Name, m.Signature)
		}
		for _, s := range texts {
			if !printableText([]byte(s)) {
				return nil, fmt.Errorf("refbroker: Describe: the other side described its object %s with %q, which holds control or bidirectional formatting characters, or bytes that are not UTF-8", shown(o.Name), s)
			}
		}
	}
	return out, nil
}

// CallJSON calls method of the root object the peer serves as object, with
// one JSON value per parameter (a context.Context parameter is left out and
// is supplied; a variadic parameter is one JSON array), and returns one
// JSON value per result other than a final error, which it returns as the
// error. A result of an interface type with methods (an object, which only
// Go can call) is shown as {"object": its interface, "type": its value's
// type, "methods": the interface's methods}, an error that is not the last
// result as its text.
func (c *Conn) CallJSON(object, method string, args ...json.RawMessage) ([]json.RawMessage, error) {
	ctx, cancel := c.noContext()
	defer cancel()
	return c.CallJSONContext(ctx, object, method, args...)
}

// CallJSONContext is CallJSON that returns ctx's error if ctx ends before
// the method returns; the method's context.Context parameter, if it has
// one, ends then too, with the same reason (Err and context.Cause).
func (c *Conn) CallJSONContext(ctx context.Context, object, method string, args ...json.RawMessage) ([]json.RawMessage, error) {
	res, err := c.callJSON(ctx, object, method, args)
	return res, gaveUp(ctx, "CallJSON of "+object+"."+method, err)
}

func (c *Conn) callJSON(ctx context.Context, object, method string, args []json.RawMessage) ([]json.RawMessage, error) {
	rc, err := codecFor(reflect.TypeFor[[]string]())
	if err != nil {
		return nil, err
	}
	for _, n := range [...]struct{ what, name string }{{"object", object}, {"method", method}} {
		if p := nameProblem(n.name); p != "" {
			return nil, fmt.Errorf("refbroker: CallJSON(%q, %q): the %s's name %s", object, method, n.what, p)
		}
	}
	var out []string
	name := fmt.Sprintf("%s.%s", object, method)
	if err := c.awaitCallAfter(ctx, name); err != nil {
		return nil, err
	}
	err = c.roundTrip(ctx, name, []*codec{rc}, []reflect.Value{reflect.ValueOf(&out).Elem()}, nil,
		func(e *encoder, seq uint64) error {
			e.byte1(msgCallJSON)
			e.uvarint(seq)
			e.string(object)
			e.string(method)
			e.uvarint(uint64(len(args)))
			for _, a := range args {
				e.bytes(a)
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	res := make([]json.RawMessage, len(out))
	for i, s := range out {
		res[i] = json.RawMessage(s)
	}
	return res, nil
}

// answerPing answers the peer's ping seq: a return with no results.
func (c *Conn) answerPing(seq uint64) { c.answerAtOnce(seq, statusOK, nil) }

// serveDescribe answers a Describe.
func (c *Conn) serveDescribe(seq uint64) {
	names := slices.Sorted(maps.Keys(c.roots))
	infos := make([]ObjectInfo, 0, len(names))
	for _, n := range names {
		v := reflect.ValueOf(c.roots[n])
		info := ObjectInfo{Name: n, Type: v.Type().String()}
		for i := range v.NumMethod() {
			info.Methods = append(info.Methods, MethodInfo{Name: v.Type().Method(i).Name, Signature: goSignature(v.Method(i).Type())})
		}
		infos = append(infos, info)
	}
	c.replyValue(seq, reflect.ValueOf(infos))
}

// CheckServable reports why obj, served as a root object, would offer
// its host nothing to call: it has no exported methods, so no interface
// can be dispensed from it. Typically it is a value, not a pointer, of a
// type whose methods have pointer receivers, so only a pointer to it has
// them (the method set Go gives a value): the error says so. Or it is
// data, a func or a channel, which crosses as what a method returns or
// takes, not as a root. plugin.Serve refuses such an object with this
// error; nil (no object) and anything with methods give nil.
func CheckServable(obj any) error {
	v := reflect.ValueOf(obj)
	if !v.IsValid() {
		return nil
	}
	t := v.Type()
	if t.NumMethod() > 0 {
		return nil
	}
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
		if pt := reflect.PointerTo(t); pt.NumMethod() > 0 {
			return fmt.Errorf("%s has no methods: its methods (%s) have pointer receivers, so only a pointer to it has them (hint: serve &value, a %s)", t, methodNames(pt), pt)
		}
	}
	return fmt.Errorf("%s has no methods, so nothing can be dispensed from it: a host dispenses a root as an interface and calls its methods (hint: serve an object whose methods return or take this %s)", t, kindWord(t))
}

// kindWord names what a value of t is, for CheckServable's hint.
func kindWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Func:
		return "func"
	case reflect.Chan:
		return "channel (or a func in its place: channels cannot cross)"
	}
	return "value"
}

// methodNames lists t's exported methods, in order, for an error.
func methodNames(t reflect.Type) string {
	names := make([]string, t.NumMethod())
	for i := range names {
		names[i] = t.Method(i).Name
	}
	return strings.Join(names, ", ")
}

// serveCallJSON runs a CallJSON; ctx is the method's context, if it takes
// one.
func (c *Conn) serveCallJSON(ctx *callCtx, seq uint64, object, method string, args [][]byte) {
	if !c.serveGate.wait(context.Background(), c.done) { // Options.ServeAfter
		return // the connection ended first
	}
	obj, ok := c.roots[object]
	if !ok || obj == nil {
		c.replyFailed(seq, fmt.Errorf("refbroker: no object named %q is served here (served: %q)", object, slices.Sorted(maps.Keys(c.roots))))
		return
	}
	v := reflect.ValueOf(obj)
	mt, ok := v.Type().MethodByName(method)
	if !ok || !mt.IsExported() {
		c.replyFailed(seq, fmt.Errorf("refbroker: %s (%s) has no method %s (its methods: %s)", object, v.Type(), method, methodNames(v.Type())))
		return
	}
	fn := v.Method(mt.Index)
	ft := fn.Type()
	full := fmt.Sprintf("%s.%s", object, method)
	var in []reflect.Value
	first := 0
	if ft.NumIn() > 0 && ft.In(0) == contextType {
		var mctx context.Context = ctx
		in = append(in, reflect.ValueOf(&mctx).Elem())
		first = 1
	}
	// Arguments are numbered as given, the context (supplied here) not
	// counted.
	if want := ft.NumIn() - first; len(args) != want {
		note := ""
		if first == 1 {
			note = "; its context is supplied"
		}
		c.replyFailed(seq, fmt.Errorf("refbroker: %s takes %s (%s%s), got %d", full, plural(want, "argument"), goSignature(ft), note, len(args)))
		return
	}
	for i := range ft.NumOut() {
		if ot := ft.Out(i); !(i == ft.NumOut()-1 && ot == errorType) && !jsonable(ot, map[reflect.Type]bool{}) {
			c.replyFailed(seq, fmt.Errorf("refbroker: %s: result %d (%s) cannot be shown as JSON (it holds a func, channel or complex number); the method was not called", full, i+1, ot))
			return
		}
	}
	for i, a := range args {
		pt := ft.In(first + i)
		if k := classify(pt); k == kindInterface || k == kindFunc || k == kindUnsupported {
			c.replyFailed(seq, fmt.Errorf("refbroker: %s: argument %d (%s) cannot be given as JSON", full, i+1, pt))
			return
		}
		p := reflect.New(pt)
		if err := unmarshalArg(a, p); err != nil {
			c.replyFailed(seq, fmt.Errorf("refbroker: %s: argument %d (%s): %v", full, i+1, pt, err))
			return
		}
		in = append(in, p.Elem())
	}
	outs, err := c.safeCall(full, fn, in, ft.IsVariadic())
	if err != nil {
		c.replyFailed(seq, err)
		return
	}
	var texts []string
	for i, o := range outs {
		if i == len(outs)-1 && ft.Out(i) == errorType {
			if !o.IsNil() {
				c.replyFailed(seq, o.Interface().(error))
				return
			}
			break
		}
		b, err := marshalResult(ft.Out(i), o)
		if err != nil {
			c.replyFailed(seq, fmt.Errorf("refbroker: %s: result %d (%s) cannot be shown as JSON: %v", full, i+1, ft.Out(i), err))
			return
		}
		texts = append(texts, string(b))
	}
	c.replyValue(seq, reflect.ValueOf(texts))
}

// objectResult is how CallJSON shows an object a method returns (a
// result of an interface type with methods): it can be called only from
// Go, through a proxy, so what it is and what it offers, not the fields of
// the value behind it.
type objectResult struct {
	Object  string   `json:"object"`  // the interface it is returned as
	Type    string   `json:"type"`    // the value's own type
	Methods []string `json:"methods"` // the interface's methods
}

// marshalResult marshals what CallJSON shows of a result o of declared
// type t; a panic in the value's own MarshalJSON (or an error result's
// Error) is an error, not the end of the serving process.
func marshalResult(t reflect.Type, o reflect.Value) (b []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return json.Marshal(jsonResult(t, o))
}

// jsonResult is what CallJSON marshals for a result o of declared type t:
// an object as an objectResult, an error (not the last result) as its
// text, anything else as it is; nil for a nil interface.
func jsonResult(t reflect.Type, o reflect.Value) any {
	if t.Kind() != reflect.Interface || t.NumMethod() == 0 {
		return o.Interface()
	}
	if o.IsNil() {
		return nil
	}
	if t == errorType {
		return o.Interface().(error).Error()
	}
	r := objectResult{Object: t.String(), Type: o.Elem().Type().String()}
	for i := range t.NumMethod() {
		r.Methods = append(r.Methods, t.Method(i).Name)
	}
	return r
}

var durationType = reflect.TypeFor[time.Duration]()

// unmarshalArg decodes one JSON argument into *p. A time.Duration may also
// be given as a string Go can parse ("1.5s").
func unmarshalArg(a []byte, p reflect.Value) error {
	err := json.Unmarshal(a, p.Interface())
	if err != nil && p.Elem().Type() == durationType {
		var s string
		if json.Unmarshal(a, &s) == nil {
			d, perr := time.ParseDuration(s)
			if perr != nil {
				return perr
			}
			p.Elem().SetInt(int64(d))
			return nil
		}
	}
	return err
}

// jsonable reports whether encoding/json can encode values of t: not a
// func, channel or complex number anywhere in it, unless a marshaller
// takes over. (An interface is decided by its value, later.)
func jsonable(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return true
	}
	seen[t] = true
	if t.Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(jsonMarshalerType) ||
		t.Implements(textMarshalerType) || reflect.PointerTo(t).Implements(textMarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.Func, reflect.Chan, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer:
		return false
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return jsonable(t.Elem(), seen)
	case reflect.Map:
		return jsonable(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && f.Tag.Get("json") != "-" && !jsonable(f.Type, seen) {
				return false
			}
		}
	}
	return true
}

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// goSignature is t's signature as Go source writes it ([]byte, not
// []uint8: reflect cannot tell the two apart, and byte is what APIs mean).
func goSignature(t reflect.Type) string {
	return strings.ReplaceAll(t.String(), "[]uint8", "[]byte")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
