package cli

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"gatehouse/db"
)

// termEscape makes a value safe to print as one field of one line in a
// terminal: every control character (C0 including tab, CR and LF, DEL, C1),
// the Unicode line and paragraph separators and the bidirectional overrides
// are written as Go escapes (\n, \x1b, \u202e), so that what the database holds (an
// email typed into the login form, an audit detail) can neither move the
// cursor, recolour the screen nor forge a line. Invalid UTF-8 bytes become
// \xNN too.
func termEscape(s string) string {
	if !needsTermEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsTermEscape(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || unsafeRune(r) {
			return true
		}
		i += size
	}
	return false
}

// unsafeRune: C1 controls (a terminal may read U+009B as CSI), line and
// paragraph separators, and the bidi embeddings, overrides and isolates
// that reorder what follows them on screen (db.UnsafeRune, shared with the
// JSON audit records and access file exports).
func unsafeRune(r rune) bool { return db.UnsafeRune(r) }

// termWriter guards a terminal from whatever reaches it: the command line
// writes its own output through it, so a value printed without termEscape
// still cannot carry ESC, CR or another control character other than the
// line breaks and tabs the output is made of.
type termWriter struct{ w io.Writer }

func (t termWriter) Write(p []byte) (int, error) {
	clean := true
	for _, c := range p {
		if c < 0x20 && c != '\n' && c != '\t' || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return t.w.Write(p)
	}
	var b strings.Builder
	for _, c := range p {
		if c < 0x20 && c != '\n' && c != '\t' || c == 0x7f {
			fmt.Fprintf(&b, `\x%02x`, c)
			continue
		}
		b.WriteByte(c)
	}
	if _, err := io.WriteString(t.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}
