// Package textsafe writes text a peer chose (a plugin's stderr, its
// errors) so that it can be shown on a terminal or in a log: control
// characters and bytes that are not UTF-8 become Go escapes (\x1b, \x00,
// \xff), so that the text can neither drive the terminal nor start a line
// of its own.
package textsafe

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape returns s with its control characters, but those in keep, and
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
		case !unicode.IsControl(r) || strings.ContainsRune(keep, r):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}
