package db

// UnsafeRune reports whether r must never reach a terminal or a log reader
// raw: the C1 controls (a terminal may read U+009B as CSI), the line and
// paragraph separators, and the bidi embeddings, overrides and isolates
// that reorder what follows them on screen. The command line's text output,
// the JSON audit records and access file exports all write these as
// escapes.
func UnsafeRune(r rune) bool {
	return r >= 0x80 && r <= 0x9f || r == 0x2028 || r == 0x2029 || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

// invisibleRune reports whether r is a format character that shows as
// nothing or reorders text: the zero-width space, joiners and word joiner,
// the byte order mark (U+FEFF, also the zero-width no-break space) and the
// bidi marks. Names that people tell apart by eye must not contain them.
func invisibleRune(r rune) bool {
	return r >= 0x200b && r <= 0x200f || r == 0x2060 || r == 0xfeff || r == 0x061c
}
