// Package contract is the test contract shared by refplug's tests and the
// test plugins built from testdata/. It exercises every rule of what
// crosses how; Service is implemented by NewService, served both in-process
// (refbroker tests) and from a real plugin process (host tests).
package contract

import (
	"context"
	"errors"
	"time"

	"github.com/refplug/refplug/refbroker"
)

// ErrNotFound is a sentinel the tests check with errors.Is on the far side.
var ErrNotFound = errors.New("contract: not found")

// Point is plain data.
type Point struct{ X, Y int }

// Doc is by-value data with references inside it.
type Doc struct {
	ID     string
	Tags   []string
	Meta   map[string]int
	Loc    *Point
	When   time.Time
	Body   []byte
	Grid   [2][2]float64
	Parts  []Point
	Extra  any
	Nested *Doc
	OnSave func(id string) error // a func at depth
	Sink   Sink                  // an interface at depth
	hidden int                   // unexported: does not cross
}

// SetHidden sets the unexported field (to check it does not cross).
func (d *Doc) SetHidden(v int) { d.hidden = v }

// Hidden reads the unexported field.
func (d *Doc) Hidden() int { return d.hidden }

// Sink receives strings.
type Sink interface {
	Put(s string) error
}

// Thing is an object with a name.
type Thing interface {
	Name() string
}

// Counter is an object returned by the plugin, whose methods return more
// objects.
type Counter interface {
	Add(n int) (int, error)
	Child(name string) (Counter, error)
	Label() (string, error)
}

// Host is implemented on the host side, for re-entrant calls.
type Host interface {
	Ping(depth int) (int, error)
}

// Service is the root object the test plugin serves as "svc".
type Service interface {
	Echo(d Doc) (Doc, error)
	Sum(xs ...int) (int, error)
	Lookup(key string) (string, error)
	Apply(fn func(int) int, n int) (int, error)
	ApplyN(fn func(int) int, times int) (int, error)
	Fanout(sinks []Sink, byName map[string]Sink, msg string) error
	CallFields(d Doc) error
	NewCounter(name string) (Counter, error)
	IsMine(c Counter) (bool, error)
	Keep(t Thing) (bool, error)
	Kept() (Thing, error)
	Same(t Thing) (Thing, error)
	EchoAny(v any) (any, error)
	Wait(ctx context.Context, started func()) error
	Deadline(ctx context.Context) (time.Duration, bool, error)
	Cancelled() (int, error)
	Hang(ctx context.Context) error
	Unhang() error
	Panic(msg string) (int, error)
	Bounce(h Host, depth int) (int, error)
	Narrow(t Thing) (string, error)
	Observe(fn func(string)) error
	Exit(code int) error
	// Pid is the serving process's ID.
	Pid() (int, error)
	// Health reports the serving side's goroutine count (after letting the
	// garbage collector run) and its connection's counts.
	Health() (Health, error)
}

// Health is the serving side's view of itself.
type Health struct {
	Goroutines int
	Stats      refbroker.Stats
}

// BadService cannot cross: a channel parameter.
type BadService interface {
	Watch(c chan int) error
}

// Unregistered has no proxy registered.
type Unregistered interface {
	Do() error
}

// UsesUnregistered reaches an interface without a proxy.
type UsesUnregistered interface {
	Get() (Unregistered, error)
}

// Mismatched has a method whose signature differs from Service's.
type Mismatched interface {
	Echo(d Doc, extra int) (Doc, error)
	Missing() error
}

func init() {
	refbroker.RegisterError(ErrNotFound)
	refbroker.RegisterType(Point{})
	refbroker.RegisterInterface[Sink](func(r *refbroker.Ref) Sink { return sinkProxy{r} })
	refbroker.RegisterInterface[Thing](func(r *refbroker.Ref) Thing { return thingProxy{r} })
	refbroker.RegisterInterface[Counter](func(r *refbroker.Ref) Counter { return counterProxy{r} })
	refbroker.RegisterInterface[Host](func(r *refbroker.Ref) Host { return hostProxy{r} })
	refbroker.RegisterInterface[Service](func(r *refbroker.Ref) Service { return serviceProxy{r} })
	refbroker.RegisterInterface[BadService](func(r *refbroker.Ref) BadService { return nil })
	refbroker.RegisterInterface[UsesUnregistered](func(r *refbroker.Ref) UsesUnregistered { return nil })
	refbroker.RegisterInterface[Mismatched](func(r *refbroker.Ref) Mismatched { return mismatchedProxy{r} })
}

type sinkProxy struct{ *refbroker.Ref }

func (p sinkProxy) Put(s string) error { return p.Invoke("Put", []any{s}) }

type thingProxy struct{ *refbroker.Ref }

func (p thingProxy) Name() string {
	var s string
	if err := p.Invoke("Name", nil, &s); err != nil {
		return "error: " + err.Error()
	}
	return s
}

type counterProxy struct{ *refbroker.Ref }

func (p counterProxy) Add(n int) (int, error) {
	var v int
	err := p.Invoke("Add", []any{n}, &v)
	return v, err
}
func (p counterProxy) Child(name string) (Counter, error) {
	var v Counter
	err := p.Invoke("Child", []any{name}, &v)
	return v, err
}
func (p counterProxy) Label() (string, error) {
	var v string
	err := p.Invoke("Label", nil, &v)
	return v, err
}

type hostProxy struct{ *refbroker.Ref }

func (p hostProxy) Ping(depth int) (int, error) {
	var v int
	err := p.Invoke("Ping", []any{depth}, &v)
	return v, err
}

type mismatchedProxy struct{ *refbroker.Ref }

func (p mismatchedProxy) Echo(d Doc, extra int) (Doc, error) {
	var v Doc
	err := p.Invoke("Echo", []any{d, extra}, &v)
	return v, err
}
func (p mismatchedProxy) Missing() error { return p.Invoke("Missing", nil) }

type serviceProxy struct{ *refbroker.Ref }

func (p serviceProxy) Echo(d Doc) (Doc, error) {
	var v Doc
	err := p.Invoke("Echo", []any{d}, &v)
	return v, err
}
func (p serviceProxy) Sum(xs ...int) (int, error) {
	var v int
	err := p.Invoke("Sum", []any{xs}, &v)
	return v, err
}
func (p serviceProxy) Lookup(key string) (string, error) {
	var v string
	err := p.Invoke("Lookup", []any{key}, &v)
	return v, err
}
func (p serviceProxy) Apply(fn func(int) int, n int) (int, error) {
	var v int
	err := p.Invoke("Apply", []any{fn, n}, &v)
	return v, err
}
func (p serviceProxy) ApplyN(fn func(int) int, times int) (int, error) {
	var v int
	err := p.Invoke("ApplyN", []any{fn, times}, &v)
	return v, err
}
func (p serviceProxy) Fanout(sinks []Sink, byName map[string]Sink, msg string) error {
	return p.Invoke("Fanout", []any{sinks, byName, msg})
}
func (p serviceProxy) CallFields(d Doc) error { return p.Invoke("CallFields", []any{d}) }
func (p serviceProxy) NewCounter(name string) (Counter, error) {
	var v Counter
	err := p.Invoke("NewCounter", []any{name}, &v)
	return v, err
}
func (p serviceProxy) IsMine(c Counter) (bool, error) {
	var v bool
	err := p.Invoke("IsMine", []any{c}, &v)
	return v, err
}
func (p serviceProxy) Keep(t Thing) (bool, error) {
	var v bool
	err := p.Invoke("Keep", []any{t}, &v)
	return v, err
}
func (p serviceProxy) Kept() (Thing, error) {
	var v Thing
	err := p.Invoke("Kept", nil, &v)
	return v, err
}
func (p serviceProxy) Same(t Thing) (Thing, error) {
	var v Thing
	err := p.Invoke("Same", []any{t}, &v)
	return v, err
}
func (p serviceProxy) EchoAny(x any) (any, error) {
	var v any
	err := p.Invoke("EchoAny", []any{x}, &v)
	return v, err
}
func (p serviceProxy) Wait(ctx context.Context, started func()) error {
	return p.Invoke("Wait", []any{ctx, started})
}
func (p serviceProxy) Deadline(ctx context.Context) (time.Duration, bool, error) {
	var left time.Duration
	var ok bool
	err := p.Invoke("Deadline", []any{ctx}, &left, &ok)
	return left, ok, err
}
func (p serviceProxy) Cancelled() (int, error) {
	var v int
	err := p.Invoke("Cancelled", nil, &v)
	return v, err
}
func (p serviceProxy) Hang(ctx context.Context) error { return p.Invoke("Hang", []any{ctx}) }
func (p serviceProxy) Unhang() error                  { return p.Invoke("Unhang", nil) }
func (p serviceProxy) Panic(msg string) (int, error) {
	var v int
	err := p.Invoke("Panic", []any{msg}, &v)
	return v, err
}
func (p serviceProxy) Bounce(h Host, depth int) (int, error) {
	var v int
	err := p.Invoke("Bounce", []any{h, depth}, &v)
	return v, err
}
func (p serviceProxy) Narrow(t Thing) (string, error) {
	var v string
	err := p.Invoke("Narrow", []any{t}, &v)
	return v, err
}
func (p serviceProxy) Observe(fn func(string)) error { return p.Invoke("Observe", []any{fn}) }
func (p serviceProxy) Exit(code int) error           { return p.Invoke("Exit", []any{code}) }
func (p serviceProxy) Pid() (int, error) {
	var v int
	err := p.Invoke("Pid", nil, &v)
	return v, err
}
func (p serviceProxy) Health() (Health, error) {
	var v Health
	err := p.Invoke("Health", nil, &v)
	return v, err
}
