package refbroker

import (
	"reflect"
	"strings"
)

// Errors cross by value. The wire form is a tree:
//
//	0                         nil
//	1 key                     a registered sentinel, by its key
//	2 text n child*n          any other error: its text and the errors it wraps
//
// The receiver rebuilds registered sentinels as the very same values and
// everything else as *remoteError, whose Unwrap returns the children, so
// errors.Is(err, sentinel) holds across the boundary.

const (
	errTagNil      byte = 0
	errTagSentinel byte = 1
	errTagRemote   byte = 2
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
	v.Set(reflect.ValueOf(&err).Elem())
}

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
		if d.err != nil {
			return nil
		}
		return &remoteError{msg: msg, wrapped: kids}
	default:
		d.fail(malformed("bad error tag %d at byte %d", tag, d.off-1))
		return nil
	}
}
