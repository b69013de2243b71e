package refbroker

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/refplug/refplug/internal/textsafe"
)

// Text the peer gives as a name or a signature (requests, type
// descriptions, layouts) reaches this side's errors, logs and an
// inspector's terminal as it is, so it must be printable text; and names
// this side sends are checked alike, since the peer would end the
// connection over one that is not.

// nameProblem says why s cannot be sent as a name in a request (the peer
// would take the message as malformed and end the connection: name), or
// returns "".
func nameProblem(s string) string {
	switch {
	case len(s) > maxName:
		return fmt.Sprintf("is %d bytes; at most %d", len(s), maxName)
	case !printableText([]byte(s)):
		return "holds control or bidirectional formatting characters, or bytes that are not UTF-8"
	}
	return ""
}

// text reads a string of a type description: a name or a signature, which
// goes into this side's errors and Describe's answer as it is. One that
// is not printable text is malformed, what saying what it is.
func (d *decoder) text(what string) string { return d.printable(what, d.bytes()) }

func (d *decoder) printable(what string, b []byte) string {
	if d.err == nil && !printableText(b) {
		d.fail(malformed("%s: %q holds control or bidirectional formatting characters, or bytes that are not UTF-8", what, b[:min(len(b), 200)]))
		return ""
	}
	return string(b)
}

// shown is s as an error may show it: as it is if it is printable text
// (printableText), else quoted, its control characters escaped.
func shown(s string) string {
	if printableText([]byte(s)) {
		return s
	}
	return strconv.Quote(s)
}

// printableText reports whether b is UTF-8 without control or
// bidirectional formatting characters (textsafe.Unsafe), as Go's names
// and type strings are: what the peer gives as one reaches this side's
// errors, logs and terminals (an inspector's), where control characters
// could drive the terminal or start a line of their own, and a
// bidirectional override make a signature read otherwise than it is.
func printableText(b []byte) bool {
	for len(b) > 0 {
		if c := b[0]; c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			b = b[1:]
			continue
		}
		r, n := utf8.DecodeRune(b)
		if (r == utf8.RuneError && n == 1) || textsafe.Unsafe(r) {
			return false
		}
		b = b[n:]
	}
	return true
}
