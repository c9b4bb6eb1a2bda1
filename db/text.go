package db

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// UnsafeRune reports whether r must never reach a terminal or a log reader
// raw: the C1 controls (a terminal may read U+009B as CSI), the line and
// paragraph separators, and the bidi embeddings, overrides and isolates
// that reorder what follows them on screen. The command line's text output,
// the JSON audit records and access file exports all write these as
// escapes.
func UnsafeRune(r rune) bool {
	return r >= 0x80 && r <= 0x9f || r == 0x2028 || r == 0x2029 || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

// zeroWidthRune reports whether r shows as nothing: the zero-width space,
// non-joiner and joiner, the word joiner and the byte order mark (U+FEFF,
// also the zero-width no-break space).
func zeroWidthRune(r rune) bool {
	return r >= 0x200b && r <= 0x200d || r == 0x2060 || r == 0xfeff
}

// bidiRune reports whether r is a bidi control: the embeddings, overrides
// and isolates that reorder the text after them, and the invisible
// direction marks (LRM, RLM, ALM).
func bidiRune(r rune) bool {
	return r == 0x200e || r == 0x200f || r == 0x061c || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

// EscapeUnsafe writes the UnsafeRune runes in b, which encoding/json and
// the YAML encoder leave raw, as \u escapes (\u202E). It is for JSON lines
// and YAML written with every such string double-quoted: outside strings
// both are ASCII there, so each rune sits in a string, where the escape
// reads back as the same rune. The output stays valid and decodes to the
// same values, and a terminal or log viewer showing it cannot be made to
// reorder or recolour it.
func EscapeUnsafe(b []byte) []byte {
	if !bytes.ContainsFunc(b, UnsafeRune) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if UnsafeRune(r) {
			out = fmt.Appendf(out, `\u%04X`, r)
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}
