package app

import (
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// badInputMessage is the one sentence a request with unusable characters gets.
const badInputMessage = "The request contains characters Gatehouse does not accept (a NUL byte, a control character or invalid UTF-8). Nothing was changed."

// checkInput answers 400 before any handler (or query) runs when the path,
// the query string or a POSTed form carries a NUL byte, another control
// character (forms: other than tab and line breaks) or invalid UTF-8: such
// input has no meaning in Gatehouse, and must never reach the database.
// It parses every POST's form here (413 when too large, 400 when
// malformed), so no handler acts on a request it would refuse. It also
// makes the User-Agent valid UTF-8, since sessions store it.
func (a *App) checkInput(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !cleanText(r.URL.Path, false) || !cleanQuery(r.URL.RawQuery) {
			a.errorPage(w, r, http.StatusBadRequest, "Bad request", badInputMessage)
			return
		}
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			if err := r.ParseForm(); err != nil {
				a.formError(w, r, err)
				return
			}
			if !cleanForm(r.PostForm) {
				a.errorPage(w, r, http.StatusBadRequest, "Bad request", badInputMessage)
				return
			}
		}
		if ua := r.Header.Get("User-Agent"); !utf8.ValidString(ua) {
			r.Header.Set("User-Agent", strings.ToValidUTF8(ua, "\uFFFD"))
		}
		next.ServeHTTP(w, r)
	})
}

// cleanQuery reports whether every key and value of a raw query string
// decodes to clean text (see cleanText). A query that does not decode is
// left to the handlers, which read what url.ParseQuery keeps of it.
func cleanQuery(raw string) bool {
	if raw == "" {
		return true
	}
	v, _ := url.ParseQuery(raw)
	for k, vs := range v {
		if !cleanText(k, false) {
			return false
		}
		for _, s := range vs {
			if !cleanText(s, false) {
				return false
			}
		}
	}
	return true
}

// cleanForm reports whether every key and value of a parsed form is clean
// text; multi-line fields (textareas) may hold line breaks and tabs.
func cleanForm(v url.Values) bool {
	for k, vs := range v {
		if !cleanText(k, false) {
			return false
		}
		for _, s := range vs {
			if !cleanText(s, true) {
				return false
			}
		}
	}
	return true
}

// cleanText reports whether s is valid UTF-8 without NUL or other C0/C1
// control characters or DEL; multiline allows tab, CR and LF.
func cleanText(s string, multiline bool) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				if !multiline || (c != '\t' && c != '\n' && c != '\r') {
					return false
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		if r >= 0x80 && r <= 0x9f {
			return false
		}
		i += size
	}
	return true
}
