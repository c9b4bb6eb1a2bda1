package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"

	"gatehouse/app/dashboards"
	"gatehouse/components/charts"
	"gatehouse/db"
	"gatehouse/internal/testutil"
)

// TestDenialsEscapeGroupNames: the reasons on the denial page, the denied
// panel fragment and the explainer name groups; a group named like markup
// shows as text in each.
func TestDenialsEscapeGroupNames(t *testing.T) {
	const grantName, leadName = `<img src=x onerror=alert(1)>`, `<script>alert(2)</script>`
	ctx := context.Background()
	ta := newTestApp(t, func(_ *Config, r *dashboards.Registry) {
		data := func(context.Context, dashboards.Query) (templ.Component, error) { return charts.Empty("data"), nil }
		r.MustRegister(&dashboards.Dashboard{Slug: "xss", Title: "XSS board", Panels: []*dashboards.Panel{
			{ID: "open", Title: "Open", Data: data},
			{ID: "lead", Title: "Lead", RequireGroup: leadName, Data: data},
		}})
	})
	a := db.Actor{Email: "test"}
	grant, err := ta.store.CreateGroup(ctx, a, grantName, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ta.store.CreateGroup(ctx, a, leadName, ""); err != nil {
		t.Fatal(err)
	}
	if err := ta.store.AddGrant(ctx, a, "xss", grant.ID); err != nil {
		t.Fatal(err)
	}
	ta.createUser(t, "outsider@example.com", false)
	member := ta.createUser(t, "member@example.com", false)
	expired := ta.createUser(t, "expired@example.com", false)
	ta.createUser(t, "admin@example.com", true)
	if err := ta.store.AddMember(ctx, a, grant.ID, member.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := ta.store.AddMember(ctx, a, grant.ID, expired.ID, ta.Clock.Now().Add(time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	outsider, memberC, expiredC := ta.login(t, "outsider@example.com"), ta.login(t, "member@example.com"), ta.login(t, "expired@example.com")
	ta.Clock.Advance(2 * time.Hour)
	escapedGrant, escapedLead := "&lt;img src=x onerror=alert(1)&gt;", "&lt;script&gt;alert(2)&lt;/script&gt;"
	for _, tc := range []struct {
		name   string
		c      *http.Client
		path   string
		htmx   bool
		status int
		want   string
	}{
		{"denial page", outsider, "/dashboards/xss", false, 403, escapedGrant},
		{"denied panel", outsider, "/dashboards/xss/panels/open", true, 403, escapedGrant},
		{"expired membership page", expiredC, "/dashboards/xss", false, 403, escapedGrant},
		{"panel for another group", memberC, "/dashboards/xss/panels/lead", true, 403, escapedLead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := ta.get(t, tc.c, tc.path, tc.htmx)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if !strings.Contains(body, tc.want) {
				t.Errorf("the group name is not shown escaped (%s):\n%s", tc.want, body)
			}
			assertNoInjection(t, tc.name, body)
			if strings.Contains(body, "<script>alert") {
				t.Error("raw <script> in the body")
			}
		})
	}
	admin := ta.login(t, "admin@example.com")
	_, body := ta.get(t, admin, "/admin/explain?"+url.Values{"user": {"outsider@example.com"}, "dashboard": {"xss"}}.Encode(), false)
	if !strings.Contains(body, escapedGrant) {
		t.Errorf("the explainer does not name the granting group escaped:\n%s", body)
	}
	assertNoInjection(t, "explainer", body)
}

// TestGoodLoginResetsTheFailureCount: four failures, a success, one more
// failure: the account is not throttled (the success wiped the slate).
func TestGoodLoginResetsTheFailureCount(t *testing.T) {
	ta := newTestApp(t) // 5 failures lock the account
	ta.createUser(t, "ann@example.com", false)
	fail := func() int {
		res, _ := ta.post(t, ta.client(), "/login", url.Values{"email": {"ann@example.com"}, "password": {"wrong password"}})
		return res.StatusCode
	}
	for i := 0; i < 4; i++ {
		if s := fail(); s != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, s)
		}
	}
	ta.Clock.Advance(time.Second)
	ta.login(t, "ann@example.com")
	ta.Clock.Advance(time.Second)
	if s := fail(); s != http.StatusUnauthorized {
		t.Errorf("one failure after a good login: %d, want 401 (not throttled)", s)
	}
	// And the count does climb again: four more make five since the login.
	for i := 0; i < 4; i++ {
		fail()
	}
	if s := fail(); s != http.StatusTooManyRequests {
		t.Errorf("sixth failure since the good login: %d, want 429", s)
	}
}

// TestSignupIsThrottledPerIP: with --allow-signup, one client IP creates at
// most SignupsPerIP accounts an hour (a burst of 30 no longer all pass); the
// refused ones create nothing.
func TestSignupIsThrottledPerIP(t *testing.T) {
	ta := newTestApp(t, func(c *Config, _ *dashboards.Registry) { c.AllowSignup = true; c.SignupsPerIP = 3 })
	for i := 0; i < 3; i++ {
		if res, body := ta.post(t, ta.client(), "/signup", signupForm(fmt.Sprintf("s%d@example.com", i), testPassword)); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-up %d: %d\n%s", i+1, res.StatusCode, body)
		}
	}
	res, body := ta.post(t, ta.client(), "/signup", signupForm("s3@example.com", testPassword))
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many accounts were created from your network") {
		t.Errorf("fourth sign-up in an hour: %d Retry-After %q, want 429", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if _, err := ta.store.UserByEmail(context.Background(), "s3@example.com"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("the throttled sign-up created the account: %v", err)
	}
	ta.Clock.Advance(time.Hour + time.Second)
	if res, _ := ta.post(t, ta.client(), "/signup", signupForm("s3@example.com", testPassword)); res.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-up after the hour: %d", res.StatusCode)
	}
}

// TestGoErrorAnswersCarrySecurityHeaders: the 431 and 400 answers net/http
// writes itself (before any handler) carry the security headers too, and
// handler answers are unchanged.
func TestGoErrorAnswersCarrySecurityHeaders(t *testing.T) {
	ta := newTestApp(t)
	srv := &http.Server{Handler: ta.Routes(), MaxHeaderBytes: 32 << 10}
	ln := testutil.ListenLocal(t)
	go srv.Serve(ta.guardListener(ln))
	defer srv.Close()
	raw := func(req string) (*http.Response, string) {
		t.Helper()
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"headers too large", "GET /login HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", 431},
		{"missing Host", "GET /login HTTP/1.1\r\n\r\n", 400},
		{"malformed Host", "GET /login HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"bad header line", "GET /login HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := raw(tc.req)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", res.StatusCode, tc.status, body)
			}
			h := res.Header
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Security-Policy") != contentSecurityPolicy ||
				h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" {
				t.Errorf("Go's own %d lacks the security headers: %v", tc.status, h)
			}
		})
	}
	res, body := raw("GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if res.StatusCode != 200 || len(res.Header.Values("Content-Security-Policy")) != 1 || !strings.Contains(body, "Log in") {
		t.Errorf("a normal request through the guarded listener: %d, CSP %v", res.StatusCode, res.Header.Values("Content-Security-Policy"))
	}
}
