package app

import (
	"net/http"
	"strings"
	"testing"
)

// cookieValueCases are Cookie header lines (several lines are joined by
// "\n" here) with the session cookie and its neighbours in every form
// net/http treats specially.
var cookieValueCases = []string{
	"",
	"gatehouse_session=abc",
	"a=1; gatehouse_session=abc; b=2",
	"  gatehouse_session = abc ;",
	"gatehouse_session=\"abc\"",
	"gatehouse_session=\"",
	"gatehouse_session=\"\"",
	"gatehouse_session=a\"b; gatehouse_session=second",
	"gatehouse_session=a b",
	"gatehouse_session= abc",
	"gatehouse_session=a\\b; gatehouse_session=ok",
	"gatehouse_session=a,b",
	"gatehouse_session=\x7f; gatehouse_session=ok",
	"gatehouse_session=caf\u00e9; gatehouse_session=ok",
	"gatehouse_session",
	"gatehouse_session=",
	"gatehouse_session=a=b",
	"Gatehouse_session=upper; gatehouse_session=lower",
	"gatehouse_sessionx=1; xgatehouse_session=2",
	";;; ; gatehouse_session=abc;;",
	"\tgatehouse_session=abc\t",
	"other=1\ngatehouse_session=from-second-line",
	"gatehouse_session=first\ngatehouse_session=second",
	"gatehouse_session=\"bad\\\"\"; gatehouse_session=ok",
	"__Host-gatehouse_session=host; gatehouse_session=plain",
	strings.Repeat("a=1; ", 2999) + "gatehouse_session=at-the-limit",
	strings.Repeat("a=1; ", 3000) + "gatehouse_session=over-the-limit",
}

func checkCookieValue(t *testing.T, lines, name string) {
	t.Helper()
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	if lines != "" {
		r.Header["Cookie"] = strings.Split(lines, "\n")
	}
	got, ok := cookieValue(r, name)
	c, err := r.Cookie(name)
	if (err == nil) != ok || (ok && c.Value != got) {
		want := "no cookie"
		if err == nil {
			want = "value " + c.Value
		}
		t.Fatalf("%.80q, cookie %q: cookieValue gives %q, %v; r.Cookie gives %s", lines, name, got, ok, want)
	}
}

// TestCookieValueIsRCookie: the session cookie's value, found without
// r.Cookie, is what r.Cookie finds, in every form of Cookie header.
func TestCookieValueIsRCookie(t *testing.T) {
	for _, lines := range cookieValueCases {
		for _, name := range []string{"gatehouse_session", "__Host-gatehouse_session", "a", "b"} {
			checkCookieValue(t, lines, name)
		}
	}
}

func FuzzCookieValue(f *testing.F) {
	for _, c := range cookieValueCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, lines string) {
		checkCookieValue(t, lines, "gatehouse_session")
	})
}
