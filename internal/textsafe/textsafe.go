// Package textsafe writes text a peer chose (a plugin's stderr, its
// errors) so that it can be shown on a terminal or in a log: control
// characters, bidirectional formatting characters and bytes that are not
// UTF-8 become Go escapes (\x1b, \x00, \u202e, \xff), so that the text
// can neither drive the terminal, nor start a line of its own, nor make
// what follows it read in another order than it was written (the "Trojan
// Source" reordering of a line).
package textsafe

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Unsafe reports whether r is not to be shown as it is: a control
// character (C0, DEL, C1), a bidirectional formatting character (U+061C,
// U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), or the line or
// paragraph separator (U+2028, U+2029), which some viewers take as a
// line's end.
func Unsafe(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029'
}

// Escape returns s with its control characters (Unsafe), but those in keep, and
// its bytes that are not UTF-8 written as Go escapes. With limit > 0 it
// returns only about the first limit bytes of s (up to three more, to end
// at a character), "…" marking the cut.
func Escape(s string, limit int, keep string) string {
	var b strings.Builder
	for i, r := range s {
		if limit > 0 && i >= limit {
			b.WriteString("…")
			break
		}
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !Unsafe(r) || strings.ContainsRune(keep, r):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}
