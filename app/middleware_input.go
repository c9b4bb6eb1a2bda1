package app

import (
	"gatehouse/db"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// badInputMessage is the one sentence a request with unusable characters gets.
const badInputMessage = "The request contains characters Gatehouse does not accept (a NUL byte, a control character or invalid UTF-8). Nothing was changed."

// checkInput answers 400 before any handler (or query) runs when the path
// or the query string carries a NUL byte, another control character or
// invalid UTF-8, or a POSTed form carries a NUL byte or invalid UTF-8: such
// input has no meaning in Gatehouse, and must never reach the database.
// It parses every POST's form here (413 when too large, 400 when
// malformed), so no handler acts on a request it would refuse. It also
// makes the User-Agent valid UTF-8, since sessions store it.
func (a *App) checkInput(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !db.CleanText(r.URL.Path, true) || !cleanQuery(r.URL.RawQuery) {
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
		if !db.CleanText(k, true) {
			return false
		}
		for _, s := range vs {
			if !db.CleanText(s, true) {
				return false
			}
		}
	}
	return true
}

// cleanForm reports whether every key and value of a parsed form is valid
// UTF-8 without NUL bytes: no browser sends anything else, and neither can
// be stored. Other control characters are left to the handlers, whose
// validation names the field (a name "must not contain control
// characters"); what they store is escaped wherever it is shown.
func cleanForm(v url.Values) bool {
	for k, vs := range v {
		if !db.CleanText(k, true) {
			return false
		}
		for _, s := range vs {
			if !db.CleanText(s, false) {
				return false
			}
		}
	}
	return true
}
