package textsafe

import "testing"

func TestEscape(t *testing.T) {
	for _, c := range []struct {
		in, keep string
		limit    int
		want     string
	}{
		{"plain text, ünïcode", "", 0, "plain text, ünïcode"},
		{"\x1b[31mred\x1b[0m\a\x00", "", 0, `\x1b[31mred\x1b[0m\x07\x00`},
		{"bad \xff\xfe utf-8, a real \uFFFD", "", 0, `bad \xff\xfe utf-8, a real ` + "\uFFFD"},
		{"a\tb\nc\r", "\t", 0, "a\tb\\x0ac\\x0d"},
		{"a\tb\nc\r", "\n\t", 0, "a\tb\nc\\x0d"},
		{"next line\u0085", "", 0, `next line\x85`},
		{"0123456789", "", 4, "0123…"},
		{"ééé", "", 3, "éé…"},
		{"fn(\u202eevil\u202c) \u2066x\u2069 \u061c\u200f", "", 0, `fn(\u202eevil\u202c) \u2066x\u2069 \u061c\u200f`},
		{"one\u2028two\u2029", "", 0, `one\u2028two\u2029`},
		{"joined 👩\u200d💻, zero\u200bwidth", "", 0, "joined 👩\u200d💻, zero\u200bwidth"},
	} {
		if got := Escape(c.in, c.limit, c.keep); got != c.want {
			t.Errorf("Escape(%q, %d, %q) = %q; want %q", c.in, c.limit, c.keep, got, c.want)
		}
	}
}
