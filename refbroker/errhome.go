package refbroker

import (
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
)

// Errors coming home. An error crosses by value, so an error of this side
// that the peer sends back — a callback's errStop that the plugin's Walk
// returns wrapped, an error given as an argument and returned — would
// come back as a copy, and errors.Is(err, errStop) would fail unless
// errStop were registered. So each error this side sends (as a tag 2 node:
// not a registered sentinel or type) is numbered in a small table of the
// connection's, and its number travels among the node's sentinel keys as
// "#sent:N". The peer keeps the number on the remoteError it builds and,
// when it sends that error (wrapped or not) on the same connection, sends
// it as "#back:N"; back here, a node carrying "#back:N" of an error still
// in the table is that very error again, chain and all. A peer of an
// older refplug ignores both keys (they are no sentinels it knows) and
// sends none back.
//
// The table keeps the last sentErrors errors sent (an error sent again
// keeps its number), so an error comes home as itself if it is back
// before sentErrors other errors have gone out; later, it comes back as a
// copy, as before. A remoteError keeps the serial of the connection it
// came from and sends its number only there: on another connection the
// number would name another side's error.

// sentErrors is how many errors sent the table keeps.
const sentErrors = 64

// The prefixes of the keys that number errors. No sentinel key (a type
// name, then ':') starts with '#'.
const (
	keySent = "#sent:" // an error of the sender's, numbered there
	keyBack = "#back:" // an error of the receiver's, coming back
)

// maxErrorKey bounds the numbering keys read.
const maxErrorKey = len(keySent) + 20

// connSerials numbers connections, for remoteError.from.
var connSerials atomic.Uint64

// errorTable is the errors this side sent last, by number. Its methods
// assume the connection's mutex (see state); they compare error values
// with == (never their methods: no user code).
type errorTable struct {
	last  uint64 // the number of the last error numbered
	slots [sentErrors]struct {
		n   uint64
		err error
	}
}

// number returns err's number, numbering it if it has none.
func (t *errorTable) number(err error) uint64 {
	if reflect.TypeOf(err).Comparable() {
		for i := range t.slots {
			if s := &t.slots[i]; s.n != 0 && sameError(s.err, err) {
				return s.n
			}
		}
	}
	t.last++
	s := &t.slots[t.last%sentErrors]
	s.n, s.err = t.last, err
	return t.last
}

// sameError reports whether a == b, false where comparing them would
// panic (a comparable type holding an uncomparable value).
func sameError(a, b error) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

// lookup returns the error numbered n, if the table still has it.
func (t *errorTable) lookup(n uint64) error {
	if s := &t.slots[n%sentErrors]; n != 0 && s.n == n {
		return s.err
	}
	return nil
}

// homeKey returns the key err is sent with, so that it comes home as
// itself: "#sent:N", its number here, or, for the peer's own error,
// "#back:N" with the peer's number; "" for none.
func (c *Conn) homeKey(err error) string {
	if r, ok := err.(*remoteError); ok && r.from == c.serial {
		if r.num == 0 {
			return ""
		}
		return keyBack + strconv.FormatUint(r.num, 10)
	}
	var n uint64
	c.locked(func(s *state) { n = s.errors.number(err) })
	return keySent + strconv.FormatUint(n, 10)
}

// homeError returns the error of this side that number n names, if it is
// still in the table.
func (c *Conn) homeError(n uint64) error {
	var home error
	c.locked(func(s *state) { home = s.errors.lookup(n) })
	return home
}

// connSerial is the number of the connection decoding, for a remoteError
// to remember where it came from.
func (c *Conn) connSerial() uint64 { return c.serial }

// errorKey parses a numbering key: the number, and whether it names an
// error of the receiver's (back) or of the sender's; n is 0 if key is not
// one.
func errorKey(key string) (n uint64, back bool) {
	if len(key) > maxErrorKey {
		return 0, false
	}
	rest, back := strings.CutPrefix(key, keyBack)
	if !back {
		var sent bool
		if rest, sent = strings.CutPrefix(key, keySent); !sent {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, back
}
