package refbroker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"
)

// registry holds the process-wide registrations. They are made from init
// functions and read on every call, so reads take the read lock only.
type registrations struct {
	sync.RWMutex
	// proxies maps an interface type to the constructor of its proxy.
	proxies map[reflect.Type]func(*Ref) reflect.Value
	// sentinels maps a sentinel's wire key to the sentinel; sentinelKeys is
	// the reverse, for comparable error values.
	sentinels    map[string]error
	sentinelKeys map[any]string
	// types maps a wire name to a type that travels by value inside `any`;
	// typeNames is the reverse.
	types     map[string]reflect.Type
	typeNames map[reflect.Type]string
	// failures maps an error type to how a failed call builds one.
	failures map[reflect.Type]func(error) reflect.Value
	// generated marks the types registered by RegisterTypes (refgen's), whose
	// names an explicit registration may replace.
	generated map[reflect.Type]bool
}

// registry is initialised with the package's variables, before any init
// function registers anything.
var registry = &registrations{
	proxies:      make(map[reflect.Type]func(*Ref) reflect.Value),
	sentinels:    make(map[string]error),
	sentinelKeys: make(map[any]string),
	types:        make(map[string]reflect.Type),
	typeNames:    make(map[reflect.Type]string),
	failures:     make(map[reflect.Type]func(error) reflect.Value),
	generated:    make(map[reflect.Type]bool),
}

func init() {
	for _, err := range []error{
		context.Canceled, context.DeadlineExceeded, errors.ErrUnsupported,
		io.EOF, io.ErrUnexpectedEOF, io.ErrClosedPipe, io.ErrShortWrite, io.ErrShortBuffer, io.ErrNoProgress,
		fs.ErrNotExist, fs.ErrExist, fs.ErrPermission, fs.ErrClosed, fs.ErrInvalid, fs.SkipDir, fs.SkipAll,
		os.ErrDeadlineExceeded, os.ErrNoDeadline, os.ErrProcessDone, net.ErrClosed, bufio.ErrTooLong,
		http.ErrServerClosed, http.ErrHandlerTimeout, http.ErrAbortHandler, http.ErrBodyNotAllowed,
		http.ErrBodyReadAfterClose, http.ErrContentLength, http.ErrHijacked, http.ErrMissingFile, http.ErrNoCookie,
		ErrDisconnected, ErrReleased, ErrMessageTooLarge,
	} {
		RegisterError(err)
	}
	for _, v := range []any{
		false, "", 0, int8(0), int16(0), int32(0), int64(0),
		uint(0), uint8(0), uint16(0), uint32(0), uint64(0), uintptr(0),
		float32(0), float64(0), complex64(0), complex128(0),
		[]byte(nil), []string(nil), []any(nil), map[string]any(nil),
		[]int(nil), []int64(nil), []float64(nil), []bool(nil),
		map[string]string(nil), map[string]int(nil), json.RawMessage(nil),
		time.Time{}, time.Duration(0),
	} {
		RegisterType(v)
	}
}

// RegisterInterface registers the proxy constructor for the interface type T.
// When a reference to a remote object arrives in a position of type T, the
// broker calls newProxy with the reference and hands out what it returns.
//
// Call it from an init function of the package that declares T, so both
// sides of a connection have it. It panics if T is not an interface type, if
// newProxy is nil, or if T is registered twice.
func RegisterInterface[T any](newProxy func(*Ref) T) {
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Interface {
		panic(fmt.Sprintf("refbroker: RegisterInterface[%s]: %s is not an interface type", t, t))
	}
	if newProxy == nil {
		panic(fmt.Sprintf("refbroker: RegisterInterface[%s]: newProxy is nil", t))
	}
	if t == errorType || t == contextType || t.NumMethod() == 0 {
		panic(fmt.Sprintf("refbroker: RegisterInterface[%s]: %s crosses by the broker's own rules and takes no proxy", t, t))
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.proxies[t]; dup {
		panic(fmt.Sprintf("refbroker: RegisterInterface[%s]: registered twice", t))
	}
	registry.proxies[t] = func(r *Ref) reflect.Value {
		p := newProxy(r)
		return reflect.ValueOf(&p).Elem()
	}
}

// RegisterFailure registers how a failed call builds a value of the error
// type T, for methods and funcs whose last result is a T rather than an
// error (as Mattermost's API returns *model.AppError): when such a call
// fails before a result arrives (the peer is gone, the method panicked, an
// argument could not be sent), the caller gets build(err) there, never a
// nil that reads as success. Dispense refuses a contract with such a
// method whose T has no failure registered. Register it on the calling
// side (both sides, for callbacks). It panics if T is an interface type,
// does not implement error, or build is nil; registering again replaces.
func RegisterFailure[T error](build func(err error) T) {
	t := reflect.TypeFor[T]()
	if t.Kind() == reflect.Interface {
		panic(fmt.Sprintf("refbroker: RegisterFailure[%s]: an interface type needs none (failures are returned as errors)", t))
	}
	if build == nil {
		panic(fmt.Sprintf("refbroker: RegisterFailure[%s]: build is nil", t))
	}
	registry.Lock()
	defer registry.Unlock()
	registry.failures[t] = func(err error) reflect.Value { return reflect.ValueOf(build(err)) }
}

// failureFor returns how a failed call builds a value of t, if registered.
func failureFor(t reflect.Type) (func(error) reflect.Value, bool) {
	registry.RLock()
	defer registry.RUnlock()
	f, ok := registry.failures[t]
	return f, ok
}

func hasFailure(t reflect.Type) bool {
	_, ok := failureFor(t)
	return ok
}

// implementsProxied reports whether t implements an interface with a
// registered proxy other than fmt.Stringer.
func implementsProxied(t reflect.Type) bool {
	registry.RLock()
	defer registry.RUnlock()
	for iface := range registry.proxies {
		if iface != stringerType && t.Implements(iface) {
			return true
		}
	}
	return false
}

var stringerType = reflect.TypeFor[fmt.Stringer]()

// proxyFor returns the proxy constructor registered for t.
func proxyFor(t reflect.Type) (func(*Ref) reflect.Value, bool) {
	registry.RLock()
	defer registry.RUnlock()
	f, ok := registry.proxies[t]
	return f, ok
}

// RegisterError registers a sentinel error so that errors.Is(err, sentinel)
// holds on the other side for errors that are, or wrap, sentinel. Both sides
// must register it (an init function of the package that declares it does
// that). Sentinels are matched by dynamic type and message, so two distinct
// sentinels with the same type and text cannot both be registered: that
// panics, as does a nil error. Registering the same sentinel again is a
// no-op.
//
// An error of this side that comes back to it needs no registration: it
// is the very error again (see the package doc). Registered already:
// context.Canceled and DeadlineExceeded; errors.ErrUnsupported; io.EOF,
// ErrUnexpectedEOF, ErrClosedPipe, ErrShortWrite, ErrShortBuffer and
// ErrNoProgress; the io/fs sentinels (ErrNotExist, ErrExist,
// ErrPermission, ErrClosed, ErrInvalid, SkipDir, SkipAll);
// os.ErrDeadlineExceeded, ErrNoDeadline and ErrProcessDone; net.ErrClosed;
// bufio.ErrTooLong; net/http's ErrServerClosed, ErrHandlerTimeout,
// ErrAbortHandler, ErrBodyNotAllowed, ErrBodyReadAfterClose,
// ErrContentLength, ErrHijacked, ErrMissingFile and ErrNoCookie; and this
// package's ErrDisconnected, ErrReleased and ErrMessageTooLarge.
func RegisterError(err error) {
	if err == nil {
		panic("refbroker: RegisterError(nil)")
	}
	key := fmt.Sprintf("%T:%s", err, err.Error())
	registry.Lock()
	defer registry.Unlock()
	if old, ok := registry.sentinels[key]; ok {
		if reflect.TypeOf(err).Comparable() && old == err {
			return
		}
		panic(fmt.Sprintf("refbroker: RegisterError(%q): another sentinel of type %T has the same text", err.Error(), err))
	}
	if !reflect.TypeOf(err).Comparable() {
		panic(fmt.Sprintf("refbroker: RegisterError(%q): %T is not comparable, so it cannot be a sentinel", err.Error(), err))
	}
	registry.sentinels[key] = err
	registry.sentinelKeys[err] = key
}

// sentinelKey returns the wire key of err if err is a registered sentinel.
func sentinelKey(err error) (key string, ok bool) {
	if !reflect.TypeOf(err).Comparable() {
		return "", false
	}
	// A value of a comparable type may still hold an uncomparable one (an
	// error field holding a struct with a slice): hashing it panics, and
	// such an error is no sentinel.
	defer func() {
		if recover() != nil {
			key, ok = "", false
		}
	}()
	registry.RLock()
	defer registry.RUnlock()
	k, ok := registry.sentinelKeys[err]
	return k, ok
}

// matchingSentinels returns the keys of the registered sentinels that
// errors.Is matches err with, err itself not being one.
func matchingSentinels(err error) []string {
	registry.RLock()
	defer registry.RUnlock()
	var keys []string
	for key, s := range registry.sentinels {
		if errors.Is(err, s) {
			keys = append(keys, key)
		}
	}
	return keys
}

func sentinelByKey(key string) (error, bool) {
	registry.RLock()
	defer registry.RUnlock()
	err, ok := registry.sentinels[key]
	return err, ok
}

// RegisterType registers the dynamic type of v as one that travels by value
// when it appears in a position of type any (as gob.Register does for gob).
// A value of an unregistered data type in such a position is refused
// (see the package doc). Basic types, []byte, []string, []any,
// map[string]any, []int, []int64, []float64, []bool, map[string]string,
// map[string]int, json.RawMessage, time.Time and time.Duration are
// registered already. An error type registered here crosses as itself
// wherever an error crosses. Registering a type
// twice is a no-op; RegisterType panics if the type cannot cross by value or
// if another type already has its name.
func RegisterType(v any) {
	if v == nil {
		panic("refbroker: RegisterType(nil)")
	}
	registerType(typeName(reflect.TypeOf(v)), v)
}

// RegisterTypes registers each value's type as RegisterType does, but
// skips, rather than panics on, one that cannot cross by value or whose
// name another type has: it is what code generated by refgen calls for
// the data types of the packages a contract reaches, where one odd type
// must not stop a program from starting. Such a type, met in an any, is
// refused with a hint then.
func RegisterTypes(values ...any) {
	for _, v := range values {
		if v == nil {
			continue
		}
		t := reflect.TypeOf(v)
		if _, err := codecFor(t); err != nil || classify(t) != kindValue {
			continue
		}
		name := typeName(t)
		registry.RLock()
		old, taken := registry.types[name]
		_, has := registry.typeNames[t]
		registry.RUnlock()
		if (taken && old != t) || has {
			continue
		}
		registerTypeAs(name, v, true)
	}
}

// RegisterTypeName is RegisterType under a name of the caller's choosing,
// as gob.RegisterName: both sides must use the same name, which need not
// change when the type's package path does (a module's major version, a
// moved package). The name must be unique in the process.
func RegisterTypeName(name string, v any) {
	if v == nil {
		panic("refbroker: RegisterTypeName(nil)")
	}
	registerType(name, v)
}

func registerType(name string, v any) {
	registerTypeAs(name, v, false)
}

// registerTypeAs registers v's type under name; generated says the
// registration is refgen's (RegisterTypes), which an explicit one
// (RegisterType, RegisterTypeName) replaces: a contract's author may
// choose a stable name for a type refgen registered under its path.
func registerTypeAs(name string, v any, generated bool) {
	t := reflect.TypeOf(v)
	if _, err := codecFor(t); err != nil {
		panic(fmt.Sprintf("refbroker: RegisterType(%s): %v", t, err))
	}
	if k := classify(t); k != kindValue {
		panic(fmt.Sprintf("refbroker: RegisterType(%s): only concrete data types can be registered", t))
	}
	registry.Lock()
	defer registry.Unlock()
	if old, ok := registry.types[name]; ok {
		if old == t {
			return
		}
		panic(fmt.Sprintf("refbroker: RegisterType(%s): name %q is taken by %s", t, name, old))
	}
	if old, ok := registry.typeNames[t]; ok && old != name {
		if !registry.generated[t] {
			panic(fmt.Sprintf("refbroker: RegisterType(%s): registered already as %q", t, old))
		}
		delete(registry.types, old) // the explicit name replaces refgen's
	}
	registry.types[name] = t
	registry.typeNames[t] = name
	if generated {
		registry.generated[t] = true
	} else {
		delete(registry.generated, t)
	}
}

// typeName is the wire name of a registered type: the package path and name
// for named types, the type's string otherwise.
func typeName(t reflect.Type) string {
	if t.Name() != "" && t.PkgPath() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	if t.Kind() == reflect.Pointer {
		return "*" + typeName(t.Elem())
	}
	return t.String()
}

// registeredName returns the wire name of t if it travels by value in an
// any: a registered type, or a pointer to, slice of, or map of registered
// types (written "*N", "[]N", "map[K]V" around their names), so that
// registering model.Attachment covers []*model.Attachment too.
func registeredName(t reflect.Type) (string, bool) {
	registry.RLock()
	n, ok := registry.typeNames[t]
	registry.RUnlock()
	if ok || t.Name() != "" {
		return n, ok
	}
	switch t.Kind() {
	case reflect.Pointer:
		if n, ok := registeredName(t.Elem()); ok {
			return "*" + n, true
		}
	case reflect.Slice:
		if n, ok := registeredName(t.Elem()); ok {
			return "[]" + n, true
		}
	case reflect.Map:
		k, kok := registeredName(t.Key())
		v, vok := registeredName(t.Elem())
		if kok && vok {
			return "map[" + k + "]" + v, true
		}
	}
	return "", false
}

// maxComposedDepth bounds the nesting of a composed wire name a peer sends.
const maxComposedDepth = 16

// registeredType returns the type a wire name stands for (see
// registeredName).
func registeredType(name string) (reflect.Type, bool) {
	return composedType(name, 0)
}

func composedType(name string, depth int) (reflect.Type, bool) {
	registry.RLock()
	t, ok := registry.types[name]
	registry.RUnlock()
	if ok {
		return t, true
	}
	if depth >= maxComposedDepth {
		return nil, false
	}
	switch {
	case strings.HasPrefix(name, "*"):
		if e, ok := composedType(name[1:], depth+1); ok {
			return reflect.PointerTo(e), true
		}
	case strings.HasPrefix(name, "[]"):
		if e, ok := composedType(name[2:], depth+1); ok {
			return reflect.SliceOf(e), true
		}
	case strings.HasPrefix(name, "map["):
		// The key's name ends at the bracket that closes "map[".
		level := 1
		for i := len("map["); i < len(name); i++ {
			switch name[i] {
			case '[':
				level++
			case ']':
				level--
			}
			if level == 0 {
				k, kok := composedType(name[len("map["):i], depth+1)
				v, vok := composedType(name[i+1:], depth+1)
				if kok && vok && k.Comparable() {
					return reflect.MapOf(k, v), true
				}
				return nil, false
			}
		}
	}
	return nil, false
}
