package refbroker

import (
	"fmt"
	"reflect"
	"strings"
)

// Errors cross by value. The wire form is a tree:
//
//	0                                   nil
//	1 key                               a registered sentinel, by its key
//	2 text n child*n m key*m            any other error: its text, the errors
//	                                    it wraps, and the registered
//	                                    sentinels errors.Is matches it with
//	3 name text m key*m bytes(value)    an error of a type registered with
//	                                    RegisterType, as that type's value
//
// The receiver rebuilds registered sentinels as the very same values,
// registered error types as values of that type (so errors.As finds them),
// and everything else as *remoteError, whose Unwrap returns the children
// and whose Is answers for the sentinels the sender listed: errors.Is
// holds on both sides alike, even for an error whose own Is method made
// the match (an *fs.PathError wrapping ENOENT is fs.ErrNotExist). A
// registered error type unknown to the receiver arrives as a remoteError.

const (
	errTagNil      byte = 0
	errTagSentinel byte = 1
	errTagRemote   byte = 2
	errTagData     byte = 3
)

// maxErrorDepth bounds how deep a wrapped chain is carried; deeper causes
// are cut (their text survives in the message of the outer error).
const maxErrorDepth = 32

func encodeErrorValue(e *encoder, v reflect.Value) error {
	if v.IsNil() {
		e.byte1(errTagNil)
		return nil
	}
	encodeError(e, v.Interface().(error), 0)
	return nil
}

func encodeError(e *encoder, err error, depth int) {
	if err == nil {
		e.byte1(errTagNil)
		return
	}
	if key, ok := sentinelKey(err); ok {
		e.byte1(errTagSentinel)
		e.string(key)
		return
	}
	if name, ok := registeredName(reflect.TypeOf(err)); ok && e.refs != nil {
		encodeErrorData(e, err, name)
		return
	}
	e.byte1(errTagRemote)
	e.string(err.Error())
	var kids []error
	if depth < maxErrorDepth {
		kids = unwrapped(err)
	}
	e.uvarint(uint64(len(kids)))
	for _, k := range kids {
		encodeError(e, k, depth+1)
	}
	home := ""
	if e.refs != nil {
		home = e.refs.homeKey(err)
	}
	writeMatches(e, err, home)
}

// encodeErrorData writes an error of a registered type as its value, in a
// block of its own, so that a receiver that does not know the type can
// skip it and keep the text.
func encodeErrorData(e *encoder, err error, name string) {
	t := reflect.TypeOf(err)
	dc, cerr := codecFor(t)
	if cerr == nil {
		cerr = e.refs.describe(e.ctx, t)
	}
	if cerr != nil {
		panic(cerr) // becomes the call's error (codec.encode)
	}
	e.byte1(errTagData)
	e.string(name)
	e.string(err.Error())
	writeMatches(e, err, "")
	mark := len(e.buf)
	e.uvarint(0) // the block's length, patched below
	start := len(e.buf)
	if !e.enter() {
		panic(depthError(t))
	}
	defer e.leave()
	e.inline++ // the block is copied out of buf below
	defer func() { e.inline-- }()
	if verr := dc.enc(e, reflect.ValueOf(err)); verr != nil {
		panic(verr)
	}
	block := append([]byte(nil), e.buf[start:]...)
	e.buf = e.buf[:mark]
	e.bytes(block)
}

// writeMatches writes the keys of the registered sentinels err matches
// with errors.Is, but is not, and home, the key err comes home with
// (errhome.go), unless it is "".
func writeMatches(e *encoder, err error, home string) {
	keys := matchingSentinels(err)
	if home != "" {
		keys = append(keys, home)
	}
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.string(k)
	}
}

// readMatches reads what writeMatches wrote, keeping the sentinels this
// side knows, and the number the error comes with (errhome.go): the
// sender's (sent), or this side's own (back).
func readMatches(d *decoder) (is []error, sent, back uint64) {
	n := d.length(1)
	for i := 0; i < n && d.err == nil; i++ {
		key := d.string()
		if s, ok := sentinelByKey(key); ok {
			is = append(is, s)
		} else if num, isBack := errorKey(key); num != 0 && isBack {
			back = num
		} else if num != 0 {
			sent = num
		}
	}
	return is, sent, back
}

// unwrapped returns the errors err wraps.
func unwrapped(err error) (kids []error) {
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		if k := u.Unwrap(); k != nil {
			kids = []error{k}
		}
	case interface{ Unwrap() []error }:
		for _, k := range u.Unwrap() {
			if k != nil {
				kids = append(kids, k)
			}
		}
	}
	return kids
}

func decodeErrorValue(d *decoder, v reflect.Value) {
	err := decodeError(d, 0)
	if d.err != nil {
		return
	}
	if err == nil {
		v.SetZero()
		return
	}
	setError(v, err)
}

// setError sets v, an error, to err. (Apart from decodeErrorValue, so that
// err's escaping here does not cost a nil error an allocation there.)
func setError(v reflect.Value, err error) { v.Set(reflect.ValueOf(&err).Elem()) }

func decodeError(d *decoder, depth int) error {
	if depth > maxErrorDepth {
		d.fail(malformed("error chain deeper than %d", maxErrorDepth))
		return nil
	}
	switch tag := d.byte1(); tag {
	case errTagNil:
		return nil
	case errTagSentinel:
		key := d.string()
		if d.err != nil {
			return nil
		}
		if s, ok := sentinelByKey(key); ok {
			return s
		}
		// A sentinel this side does not know: keep its text.
		_, text, _ := strings.Cut(key, ":")
		return &remoteError{msg: text}
	case errTagRemote:
		msg := d.string()
		n := d.length(1)
		var kids []error
		for i := 0; i < n && d.err == nil; i++ {
			if k := decodeError(d, depth+1); k != nil {
				kids = append(kids, k)
			}
		}
		is, sent, back := readMatches(d)
		if d.err != nil {
			return nil
		}
		if d.refs == nil {
			return &remoteError{msg: msg, wrapped: kids, is: is}
		}
		if back != 0 {
			if err := d.refs.homeError(back); err != nil {
				return err // an error of ours, back
			}
		}
		return &remoteError{msg: msg, wrapped: kids, is: is, num: sent, from: d.refs.connSerial()}
	case errTagData:
		return decodeErrorData(d)
	default:
		d.fail(malformed("bad error tag %d at byte %d", tag, d.off-1))
		return nil
	}
}

// decodeErrorData reads an error of a registered type: the value itself if
// the type is registered here too, else a remoteError with its text.
func decodeErrorData(d *decoder) error {
	name, text := d.string(), d.string()
	is, _, _ := readMatches(d)
	block := d.bytes()
	if d.err != nil {
		return nil
	}
	t, ok := registeredType(name)
	if !ok || !t.Implements(errorType) {
		return &remoteError{msg: text, is: is}
	}
	dc, err := codecFor(t)
	if err != nil {
		d.fail(err)
		return nil
	}
	if d.refs != nil {
		d.refs.checkLayouts(t)
	}
	if !d.enter() || !d.charge(uint64(t.Size())) {
		return nil
	}
	defer d.leave()
	// The block is part of the message: it decodes on what is left of
	// the message's memory budget.
	sub := &decoder{buf: block, refs: d.refs, depth: d.depth, budget: max(d.left(), 1)}
	v := reflect.New(t).Elem()
	dc.dec(sub, v)
	d.spent += min(sub.spent, d.left())
	if sub.err == nil && sub.remaining() != 0 {
		sub.fail(malformed("%d bytes left after an error of type %s", sub.remaining(), name))
	}
	if sub.err != nil {
		d.fail(fmt.Errorf("decoding an error of type %s: %w", name, sub.err))
		return nil
	}
	if v.Kind() == reflect.Pointer && v.IsNil() {
		return &remoteError{msg: text, is: is}
	}
	return v.Interface().(error)
}
