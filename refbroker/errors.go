package refbroker

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrDisconnected is returned by every call on a proxy whose connection is
	// gone: the plugin exited or crashed, or the client was closed. Calls
	// pending when the connection ends fail with it, and so does every later
	// call. Test for it with errors.Is.
	ErrDisconnected = errors.New("refbroker: disconnected")

	// ErrReleased is returned by a call on a proxy whose remote object was
	// dropped with Release.
	ErrReleased = errors.New("refbroker: released")

	// ErrMessageTooLarge is matched (errors.Is) by the error of a call
	// whose message, or whose return, exceeds Options.MaxMessageSize: the
	// sender's, which stops it before it is sent, or the receiver's, which
	// skips it unread. A call refused so did not run; a return refused so
	// is of a call that did.
	ErrMessageTooLarge = errors.New("refbroker: message too large")

	// errMalformed marks a message from the peer that could not be decoded.
	// It has no prefix: it is always wrapped by what it failed.
	errMalformed = errors.New("malformed message from peer")
)

// malformed reports a decoding failure of peer input.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// remoteError is an error that crossed from the other side. It keeps the
// message text, the chain of wrapped errors, and the registered sentinels
// the sender's errors.Is matched it with, so errors.Is answers alike on
// the receiving side.
type remoteError struct {
	msg     string
	wrapped []error
	is      []error
	num     uint64 // the peer's number for it, to send it back as its own (errhome.go); 0: none
	from    uint64 // the serial of the connection it came from
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.wrapped }

func (e *remoteError) Is(target error) bool {
	for _, s := range e.is {
		if s == target {
			return true
		}
	}
	return false
}

// callError is a broker failure of one call: the sentinel it matches, the
// method, and what happened.
type callError struct {
	method   string
	sentinel error
	cause    error
}

func (e *callError) Error() string {
	msg := "refbroker: " + e.method + ": " + strings.TrimPrefix(e.sentinel.Error(), "refbroker: ")
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg
}

func (e *callError) Unwrap() error { return e.sentinel }

// sentinelError matches a sentinel with errors.Is but says what happened
// in its own words, without the package prefix, for an error that is
// wrapped further.
type sentinelError struct {
	msg      string
	sentinel error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.sentinel }

// rejectedCall is the error of a call the peer rejected before reading
// its arguments (statusRejected): the method did not run. It says what
// the peer's error says and matches what that matches.
type rejectedCall struct{ err error }

func (e *rejectedCall) Error() string { return e.err.Error() }
func (e *rejectedCall) Unwrap() error { return e.err }

// tooLarge is an error of a message over a size limit (ErrMessageTooLarge).
type tooLarge struct{ msg string }

func (e *tooLarge) Error() string        { return e.msg }
func (e *tooLarge) Is(target error) bool { return target == ErrMessageTooLarge }
