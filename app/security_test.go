package app

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"gatehouse/app/dashboards"
	"gatehouse/db"
	"gatehouse/internal/testutil"
)

func TestCrossOriginPostsAreRefused(t *testing.T) {
	ta := newTestApp(t)
	admin := ta.createUser(t, "admin@example.com", true)
	c := ta.login(t, "admin@example.com")
	for _, tc := range []struct {
		name    string
		headers map[string]string
	}{
		{"sec-fetch-site cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"sec-fetch-site same-site", map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"foreign origin", map[string]string{"Origin": "https://evil.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A logout and a password change: both would change server state.
			for _, path := range []string{"/logout", "/account/password"} {
				form := url.Values{"current": {testPassword}, "new": {"evil evil evil evil"}, "confirm": {"evil evil evil evil"}}
				req, _ := http.NewRequest("POST", ta.Server.URL+path, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for k, v := range tc.headers {
					req.Header.Set(k, v)
				}
				res, _ := ta.do(t, c, req)
				if res.StatusCode != http.StatusForbidden {
					t.Errorf("%s: status %d, want 403", path, res.StatusCode)
				}
			}
			if res, _ := ta.get(t, c, "/", false); res.StatusCode != http.StatusOK {
				t.Errorf("the cross-site logout logged the user out: %d", res.StatusCode)
			}
			u, _ := ta.store.UserByID(context.Background(), admin.ID)
			if u.PasswordHash != admin.PasswordHash {
				t.Error("the cross-site password change went through")
			}
		})
	}
	// The same request from the same origin works.
	req, _ := http.NewRequest("POST", ta.Server.URL+"/logout", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if res, _ := ta.do(t, c, req); res.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin logout: %d", res.StatusCode)
	}
}

func TestSecurityHeadersOnHTMLResponses(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "ann@example.com", false)
	c := ta.login(t, "ann@example.com")
	for _, tc := range []struct {
		path string
		c    *http.Client
	}{{"/login", ta.client()}, {"/", c}, {"/account", c}, {"/nope", c}, {"/dashboards/access", c}} {
		res, _ := ta.get(t, tc.c, tc.path, false)
		h := res.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", tc.path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP allows unsafe-*: %q", tc.path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" {
			t.Errorf("%s: nosniff %q referrer %q", tc.path, h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"))
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", tc.path, h.Get("Cache-Control"))
		}
		if h.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS over plain http", tc.path)
		}
	}
}

// TestNoInlineScriptOrStyle keeps the pages compatible with the CSP: no
// inline <script>, <style>, style= or on*= attributes anywhere.
func TestNoInlineScriptOrStyle(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "admin@example.com", true)
	c := ta.login(t, "admin@example.com")
	for _, path := range []string{"/", "/account", "/dashboards/access", "/dashboards/access/panels/overview", "/dashboards/access/panels/logins"} {
		_, body := ta.get(t, c, path, false)
		assertNoInlineCode(t, path, body)
	}
	_, body := ta.get(t, ta.client(), "/login", false)
	assertNoInlineCode(t, "/login", body)
}

func assertNoInlineCode(t *testing.T, where, body string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if n.Data == "style" {
			t.Errorf("%s: inline <style>", where)
		}
		for _, a := range n.Attr {
			if a.Key == "style" || strings.HasPrefix(a.Key, "on") || strings.HasPrefix(a.Key, "hx-on") {
				t.Errorf("%s: <%s %s=…> is inline code or style", where, n.Data, a.Key)
			}
			if (a.Key == "href" || a.Key == "src" || a.Key == "action") && strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:") {
				t.Errorf("%s: javascript: URL in <%s>", where, n.Data)
			}
		}
		if n.Data == "script" {
			src := ""
			for _, a := range n.Attr {
				if a.Key == "src" {
					src = a.Val
				}
			}
			if src == "" || !strings.HasPrefix(src, "/assets/") {
				t.Errorf("%s: <script> without a same-origin src", where)
			}
		}
	}
}

// xssPayloads are strings that must render as text wherever they appear.
var xssPayloads = []string{
	`<script>alert(1)</script>`,
	`" hx-get="/admin" hx-trigger="load`,
	`<img src=x onerror=alert(1)>`,
	`javascript:alert(1)`,
	`'><svg onload=alert(1)>`,
}

// assertNoInjection parses body and fails on any element or attribute a payload could have injected.
func assertNoInjection(t *testing.T, where, body string) {
	t.Helper()
	assertNoInlineCode(t, where, body)
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if n.Data == "img" || (n.Data == "svg" && slices.ContainsFunc(n.Attr, func(a html.Attribute) bool { return a.Key == "onload" })) {
			t.Errorf("%s: injected <%s>", where, n.Data)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "hx-") && strings.Contains(a.Val, "/admin") && a.Key == "hx-get" && n.Data != "input" && !strings.HasPrefix(a.Val, "/admin/") {
				t.Errorf("%s: injected %s=%q on <%s>", where, a.Key, a.Val, n.Data)
			}
			if a.Key == "hx-trigger" && a.Val == "load" && n.Data != "div" {
				t.Errorf("%s: injected hx-trigger on <%s>", where, n.Data)
			}
		}
	}
}

func TestUserContentRendersAsText(t *testing.T) {
	ctx := context.Background()
	calls := &dataCalls{}
	ta := newTestApp(t, withTestDashboard(calls))
	viewer := ta.createUser(t, "viewer@example.com", false)
	ta.createUser(t, "admin@example.com", true)
	for i, p := range xssPayloads {
		g, err := ta.store.CreateGroup(ctx, db.Actor{}, p, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := ta.store.AddMember(ctx, db.Actor{}, g.ID, viewer.ID, ta.Clock.Now().Add(time.Duration(i+1)*time.Hour).UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
	if err := ta.store.UpdateUserName(ctx, db.Actor{}, viewer.ID, strings.Join(xssPayloads, " ")); err != nil {
		t.Fatal(err)
	}
	c := ta.login(t, "viewer@example.com")
	// One waiting request per dashboard: one payload each.
	for i, slug := range []string{"test", "access"} {
		if res, body := ta.post(t, c, "/dashboards/"+slug+"/request", url.Values{"message": {xssPayloads[i]}}); res.StatusCode >= 400 {
			t.Fatalf("request for %s: %d %s", slug, res.StatusCode, body)
		}
	}
	_, home := ta.get(t, c, "/", false)
	if !strings.Contains(home, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatal("the payload does not appear escaped on the home page (test would not detect injection)")
	}
	assertNoInjection(t, "/", home)
	_, account := ta.get(t, c, "/account", false)
	assertNoInjection(t, "/account", account)
	admin := ta.login(t, "admin@example.com")
	_, panel := ta.get(t, admin, "/dashboards/access/panels/requests", true)
	// The message shows, escaped: the assertion below would otherwise pass on an empty panel.
	if !strings.Contains(panel, "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>") || !strings.Contains(panel, "<td>&#34; hx-get=&#34;/admin&#34; hx-trigger=&#34;load</td>") {
		t.Errorf("the request message is not shown, escaped, in the requests panel:\n%s", panel)
	}
	assertNoInjection(t, "requests panel", panel)
	_, groups := ta.get(t, admin, "/dashboards/access/panels/groups", true)
	assertNoInjection(t, "groups panel", groups)
}

func TestBadRequestsGetClearAnswers(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "ann@example.com", false)
	c := ta.login(t, "ann@example.com")
	send := func(method, path, contentType string, body io.Reader, hdr map[string]string) (*http.Response, string) {
		req, err := http.NewRequest(method, ta.Server.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		return ta.do(t, c, req)
	}
	form := "application/x-www-form-urlencoded"
	big := strings.NewReader("message=" + strings.Repeat("a", 2<<20))
	for _, tc := range []struct {
		name   string
		res    func() (*http.Response, string)
		status int
	}{
		{"oversize body", func() (*http.Response, string) { return send("POST", "/login", form, big, nil) }, 413},
		{"oversize chunked body", func() (*http.Response, string) {
			return send("POST", "/account/password", form, io.MultiReader(strings.NewReader("current="), strings.NewReader(strings.Repeat("b", 1<<20))), nil)
		}, 413},
		{"oversize JSON body", func() (*http.Response, string) {
			res, body := send("POST", "/account/security/passkeys/begin", "application/json",
				strings.NewReader(`{"name":"`+strings.Repeat("a", 2<<20)+`"}`), nil)
			// The passkeys script reads a JSON error, not an HTML page.
			if !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") || !strings.Contains(body, `"error":"The request is larger than Gatehouse accepts."`) {
				t.Errorf("oversize JSON: %s %q", res.Header.Get("Content-Type"), body)
			}
			return res, body
		}, 413},
		{"malformed form", func() (*http.Response, string) {
			return send("POST", "/login", form, strings.NewReader("email=%zz&password=%"), nil)
		}, 400},
		{"invalid utf-8 login", func() (*http.Response, string) {
			return send("POST", "/login", form, strings.NewReader("email=%ff%fe@example.com&password=%ff%ff"), nil)
		}, 400}, // browsers send UTF-8: anything else is refused before it reaches the database
		{"unknown method", func() (*http.Response, string) { return send("DELETE", "/login", "", nil, nil) }, 405},
		{"PUT on a GET route", func() (*http.Response, string) { return send("PUT", "/", "", nil, nil) }, 405},
		{"asset traversal", func() (*http.Response, string) { return send("GET", "/assets/..%2f..%2fgo.mod", "", nil, nil) }, 404},
		{"asset unknown", func() (*http.Response, string) { return send("GET", "/assets/css/nope.css", "", nil, nil) }, 404},
		{"asset dir", func() (*http.Response, string) { return send("GET", "/assets/css/", "", nil, nil) }, 404},
		{"unknown path", func() (*http.Response, string) { return send("GET", "/wp-admin.php", "", nil, nil) }, 404},
		{"odd cookie", func() (*http.Response, string) {
			return send("GET", "/login", "", nil, map[string]string{"Cookie": `gatehouse_session="unterminated; =; ;;gatehouse_session=MTIz|||fake|sig; other=%%%`})
		}, 200},
		{"huge query", func() (*http.Response, string) {
			return send("GET", "/login?next=/"+strings.Repeat("x", 10000), "", nil, nil)
		}, 303}, // logged in: sent on to "/" (an over-long next is not trusted)
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := tc.res()
			if res.StatusCode != tc.status {
				t.Errorf("status %d, want %d", res.StatusCode, tc.status)
			}
			if strings.Contains(body, "goroutine ") || strings.Contains(body, ".go:") {
				t.Error("the response leaks a stack trace")
			}
		})
	}
	if res, _ := send("DELETE", "/login", "", nil, nil); res.Header.Get("Allow") == "" {
		t.Error("405 without an Allow header")
	}
}

func TestHugeHeadersAreRefusedByTheServer(t *testing.T) {
	// The real server (http.Server with MaxHeaderBytes) answers 431.
	srv := &http.Server{Handler: newTestApp(t).Routes(), MaxHeaderBytes: 32 << 10}
	ln := testutil.ListenLocal(t)
	go srv.Serve(ln)
	defer srv.Close()
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/login", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 256<<10))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d, want 431", res.StatusCode)
	}
}

func TestPanicsBecomePlain500(t *testing.T) {
	ta := newTestApp(t, func(_ *Config, r *dashboards.Registry) {
		r.MustRegister(&dashboards.Dashboard{Slug: "boom", Title: "Boom", Panels: []*dashboards.Panel{{ID: "p", Title: "P",
			Data: func(context.Context, dashboards.Query) (tc templComponent, err error) {
				panic("secret internal detail")
			}}}})
	})
	ta.createUser(t, "admin@example.com", true)
	c := ta.login(t, "admin@example.com")
	res, body := ta.get(t, c, "/dashboards/boom/panels/p", true)
	if res.StatusCode != 500 || strings.Contains(body, "secret internal detail") || strings.Contains(body, "goroutine") {
		t.Errorf("panic answer: %d %q", res.StatusCode, body)
	}
	if !strings.Contains(ta.Logs.String(), "secret internal detail") {
		t.Error("the panic was not logged")
	}
	// The log line names the request the way the response does, so an
	// operator can find it from what the person reports.
	id := res.Header.Get("X-Request-Id")
	if len(id) != 16 || !strings.Contains(ta.Logs.String(), "request_id="+id) {
		t.Errorf("X-Request-Id %q is not the panic's request_id in the log:\n%s", id, ta.Logs.String())
	}
	if !strings.Contains(ta.Logs.String(), "msg=request id="+id+" method=GET path=/dashboards/boom/panels/p status=500") {
		t.Errorf("the request line of the panicking request is missing:\n%s", ta.Logs.String())
	}
	res2, _ := ta.get(t, c, "/dashboards/boom/panels/p", true)
	if other := res2.Header.Get("X-Request-Id"); other == id || len(other) != 16 {
		t.Errorf("two requests got ids %q and %q", id, other)
	}
}

func TestUnavailableDatabaseAnswers503(t *testing.T) {
	ta := newTestApp(t)
	if ta.store.Dialect != db.SQLite {
		t.Skip("makes the database read-only with SQLite's PRAGMA query_only; on PostgreSQL, TestPostgresOutageAnswers503AndRecovers covers the 503s")
	}
	ta.createUser(t, "ann@example.com", false)
	c := ta.login(t, "ann@example.com")
	ta.store.DB.SetMaxOpenConns(1)
	if _, err := ta.store.DB.Exec("PRAGMA query_only = 1"); err != nil {
		t.Fatal(err)
	}
	for _, htmx := range []bool{false, true} {
		req, _ := http.NewRequest("POST", ta.Server.URL+"/dashboards/access/request", strings.NewReader("message=hi"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if htmx {
			req.Header.Set("HX-Request", "true")
		}
		res, body := ta.do(t, c, req)
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
			t.Errorf("htmx=%v: %d Retry-After %q, want 503 with Retry-After", htmx, res.StatusCode, res.Header.Get("Retry-After"))
		}
		if !strings.Contains(body, "read-only") || strings.Contains(body, "SQLITE") {
			t.Errorf("htmx=%v: unclear message: %s", htmx, body)
		}
		if htmx == strings.Contains(body, "<html") {
			t.Errorf("htmx=%v: wrong shape (full page for htmx or fragment for a page)", htmx)
		}
	}
}
