package app

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"gatehouse/db"
)

// inputKeys are the query and form fields any Gatehouse route reads; the
// route tests below put the same value in all of them.
var inputKeys = []string{"q", "gq", "actor", "action", "from", "to", "user", "dashboard", "group", "page", "msg", "next",
	"token", "out", "changed", "email", "password", "name", "description", "message", "note", "decision", "group_id",
	"user_id", "expires", "clear", "current", "new", "confirm", "grant", "member", "back", "was_name", "was_description",
	"admin", "active", "inactive"}

// routeInputFixture is an admin session over a database with one group and
// one user, so that routes with ids reach their handlers.
type routeInputFixture struct {
	ta      *testApp
	c       *http.Client
	ids     map[string]string
	targets []string
}

func newRouteInputFixture(t testing.TB) *routeInputFixture {
	ta := newTestApp(t)
	ta.createUser(t, "admin@example.com", true)
	u := ta.createUser(t, "ann@example.com", false)
	g, err := ta.store.CreateGroup(t.Context(), db.Actor{}, "sales", "")
	if err != nil {
		t.Fatal(err)
	}
	f := &routeInputFixture{ta: ta, c: ta.login(t, "admin@example.com"), ids: map[string]string{
		"{id}": strconv.FormatInt(g.ID, 10), "{user}": strconv.FormatInt(u.ID, 10), "{group}": strconv.FormatInt(g.ID, 10),
		"{slug}": "access", "{panel}": "overview", "{session}": "1", "{$}": "",
	}}
	for _, p := range routePatterns(t) {
		if !strings.HasPrefix(p, "GET /") && !strings.HasPrefix(p, "POST /") ||
			strings.HasSuffix(p, "/logout") || strings.HasSuffix(p, "/password") {
			continue // would end the admin's session or change its password
		}
		f.targets = append(f.targets, p)
	}
	return f
}

// send requests every route with v in every query field, and every POST
// route with v in every form field too; it returns the statuses by route.
func (f *routeInputFixture) send(t testing.TB, v string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, p := range f.targets {
		method, path, _ := strings.Cut(p, " ")
		if strings.HasPrefix(path, "/admin/users/{id}") {
			path = strings.Replace(path, "{id}", f.ids["{user}"], 1)
		}
		for k, id := range f.ids {
			path = strings.ReplaceAll(path, k, id)
		}
		vals := url.Values{}
		for _, k := range inputKeys {
			vals.Set(k, v)
		}
		req, err := http.NewRequest(method, f.ta.Server.URL+path+"?"+vals.Encode(), nil)
		if method == http.MethodPost {
			req, err = http.NewRequest(method, f.ta.Server.URL+path, strings.NewReader(vals.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(p, "/events") {
			// An event stream does not end: its status and headers are the answer.
			res, err := f.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if got[p] = res.StatusCode; res.StatusCode >= 500 {
				t.Errorf("%s with %q everywhere: %d", p, v, res.StatusCode)
			}
			continue
		}
		res, body := f.ta.do(t, f.c, req)
		got[p] = res.StatusCode
		if res.StatusCode >= 500 {
			t.Errorf("%s with %q everywhere: %d\n%s", p, v, res.StatusCode, body)
		}
	}
	return got
}

// TestBadCharactersGet400OnEveryRoute: a NUL byte or invalid UTF-8 in any
// query or form field of any route, or another control character in a
// path or query, is answered 400 with a plain message, never 500, and
// changes nothing. Other control characters in forms are the handlers' to
// refuse (422 naming the field): never a 5xx.
func TestBadCharactersGet400OnEveryRoute(t *testing.T) {
	f := newRouteInputFixture(t)
	before := f.ta.countAudit(t, db.ActionLoginFailed, "")
	for _, bad := range []string{"\x00", "a\x00b", "\xff\xfe"} {
		for p, status := range f.send(t, bad) {
			if status != http.StatusBadRequest {
				t.Errorf("%s with %q: status %d, want 400", p, bad, status)
			}
		}
	}
	if n := f.ta.countAudit(t, db.ActionLoginFailed, ""); n != before {
		t.Errorf("refused logins were recorded: %d rows", n-before)
	}
	for _, bad := range []string{"\x1b[31mred", "a\u0085b", "\x01", "\x7f"} {
		for p, status := range f.send(t, bad) { // send fails on any 5xx
			if strings.HasPrefix(p, "GET ") && status != http.StatusBadRequest {
				t.Errorf("%s with %q in the query: status %d, want 400", p, bad, status)
			}
		}
	}
	// Paths too.
	for _, p := range []string{"/dashboards/a%00b", "/admin/groups/%00", "/assets/%ff"} {
		if res, body := f.ta.get(t, f.c, p, false); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "does not accept") {
			t.Errorf("GET %s: %d, want 400 with a plain message", p, res.StatusCode)
		}
	}
	// The examples from the issue, anonymous too.
	for _, p := range []string{"/admin/users?q=%00", "/admin/audit?actor=%00", "/admin/explain?user=a%00", "/admin/groups?q=%00"} {
		if res, body := f.ta.get(t, f.c, p, false); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "does not accept") {
			t.Errorf("GET %s: %d, want 400 with a plain message", p, res.StatusCode)
		}
	}
	before = f.ta.countAudit(t, db.ActionLoginFailed, "")
	res, body := f.ta.post(t, f.ta.client(), "/login", url.Values{"email": {"\x00"}, "password": {"x"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "does not accept") {
		t.Errorf("POST /login email=NUL: %d, want 400 with a plain message", res.StatusCode)
	}
	if n := f.ta.countAudit(t, db.ActionLoginFailed, ""); n != before {
		t.Errorf("a refused login was recorded: %d rows", n-before)
	}
	if strings.Contains(f.ta.Logs.String(), "level=ERROR") {
		t.Errorf("bad input logged errors:\n%s", f.ta.Logs.String())
	}
}

// TestMultilineFieldsKeepLineBreaks: the check refuses control characters,
// not the line breaks a textarea sends.
func TestMultilineFieldsKeepLineBreaks(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "ann@example.com", false)
	c := ta.login(t, "ann@example.com")
	if res, body := ta.post(t, c, "/dashboards/access/request", url.Values{"message": {"line one\r\nline two\tand a tab"}}); res.StatusCode >= 400 {
		t.Errorf("request with line breaks: %d %s", res.StatusCode, body)
	}
}

// FuzzRouteInput: whatever a client puts in the query or form fields of any
// route, Gatehouse never answers 5xx. `go test` runs the seeds; run
// `go test -fuzz FuzzRouteInput ./app` to search further.
func FuzzRouteInput(f *testing.F) {
	for _, s := range []string{"", "\x00", "\xff", "\x1b]8;;x\x07", "'; DROP TABLE users; --", "!", "%", "%%00", "\\", "?",
		"ünïcödé", "😀", strings.Repeat("a", 5000), "2026-13-45", "-1", "9223372036854775808", "on", "off", "approve", "deny",
		"\x01", "\x7f", "\r\n", "a\u0085b", "/\\evil", "javascript:alert(1)", "<img src=x onerror=alert(1)>", "a@b.c", "\"quoted\"@example.com"} {
		f.Add(s)
	}
	fx := newRouteInputFixture(f)
	f.Fuzz(func(t *testing.T, v string) {
		got := fx.send(t, v)
		if !utf8.ValidString(v) {
			for p, status := range got {
				if status != http.StatusBadRequest {
					t.Errorf("%s with invalid UTF-8: %d, want 400", p, status)
				}
			}
		}
	})
}
