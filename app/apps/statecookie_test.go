package apps

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

// TestStateCookiesCannotBeTossedBySiblingApps: app origins under one apps
// domain are one site, and an app's content is not trusted: a page (or an
// upstream's Set-Cookie) on evil.apps.example can set a cookie with
// Domain=apps.example, which the browser then sends to sales.apps.example.
// A __Secure- cookie may carry a Domain; a __Host- one may not. The
// sign-in state is what stops a browser being signed in to someone else's
// session (login CSRF), so over https it must be a __Host- cookie, and a
// callback must not take a state from any cookie a sibling could set.
func TestStateCookiesCannotBeTossedBySiblingApps(t *testing.T) {
	h, s := newHTTPSHandler(t, "https://gatehouse.example")
	ctx := context.Background()
	for _, a := range []db.App{{Slug: "sales", Upstream: "http://127.0.0.1:9", Title: "Sales"},
		{Slug: "tools", Upstream: "http://127.0.0.1:9", Title: "Tools", ExternalURL: "https://tools.example/grafana/"}} {
		if _, err := s.CreateApp(ctx, db.Actor{Email: "test"}, a); err != nil {
			t.Fatal(err)
		}
	}
	serve := func(r *http.Request) *http.Response {
		w := httptest.NewRecorder()
		h.Wrap(http.NotFoundHandler(), h).ServeHTTP(w, r)
		return w.Result()
	}
	// Every state cookie Gatehouse sets, on an app's own origin (top
	// level and in a frame) and on a host a team's proxy serves.
	starts := map[string]*http.Request{
		"app origin":   httptest.NewRequest("GET", "https://sales.apps.example/x", nil),
		"app in frame": httptest.NewRequest("GET", "https://sales.apps.example/x", nil),
		"proxy host":   httptest.NewRequest("GET", "https://tools.example/.gatehouse/start?app=tools&next=https://tools.example/grafana/", nil),
	}
	starts["app in frame"].Header.Set("Sec-Fetch-Dest", "iframe")
	for name, r := range starts {
		res := serve(r)
		var state *http.Cookie
		for _, c := range res.Cookies() {
			if strings.Contains(c.Name, "state") {
				state = c
			}
		}
		if state == nil || !strings.HasPrefix(state.Name, "__Host-") || state.Path != "/" || state.Domain != "" || !state.Secure {
			t.Errorf("%s: state cookie %+v, want a __Host- cookie (Secure, Path /, no Domain)", name, state)
		}
	}
	// A state only in cookies a sibling origin could have set is refused
	// before the code is even looked at.
	for _, tc := range []struct{ name, url string }{
		{"app origin", "https://sales.apps.example/.gatehouse/callback?code=c&next=%2F&state=tossedtossedtossedtosse"},
		{"proxy host", "https://tools.example/.gatehouse/callback?app=tools&code=c&next=%2F&state=tossedtossedtossedtosse"},
	} {
		r := httptest.NewRequest("GET", tc.url, nil)
		for _, n := range []string{"__Secure-gatehouse_app_state", "__Secure-gatehouse_app_framed_state", "gatehouse_app_state"} {
			r.AddCookie(&http.Cookie{Name: n, Value: "tossedtossedtossedtosse"})
		}
		res := serve(r)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "not asked for by this browser") {
			t.Errorf("%s: callback with a tossed state: %d %q, want 400 \"not asked for by this browser\"", tc.name, res.StatusCode, body)
		}
	}
}

// newHTTPSHandler serves apps under apps.example for base (https) over a
// fresh SQLite store, with one admin viewer holding session cookie "good".
func newHTTPSHandler(t *testing.T, base string) (*Handler, *db.Store) {
	t.Helper()
	ctx := context.Background()
	s, err := db.Open(ctx, db.Config{DataDir: filepath.Join(t.TempDir(), "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	reg := dashboards.NewRegistry()
	reg.FollowApps(s)
	h, err := New(ctx, Config{Domain: "apps.example", BaseURL: base, Store: s, Registry: reg,
		Gate: oneViewer{Viewer{User: db.User{ID: 1, Email: "root@example.com", IsAdmin: true, IsActive: true}, SessionHash: "h"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h, s
}

// TestSocketOriginComparedAsAnOrigin: a base URL spelled with its default
// port (https://gatehouse.example:443) gives app origins the browser
// writes without it; the WebSocket Origin check compares origins, not
// strings, and still refuses every other one.
func TestSocketOriginComparedAsAnOrigin(t *testing.T) {
	h, s := newHTTPSHandler(t, "https://gatehouse.example:443")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "upstream") }))
	defer up.Close()
	if _, err := s.CreateApp(context.Background(), db.Actor{Email: "test"}, db.App{Slug: "sales", Upstream: up.URL, Title: "Sales"}); err != nil {
		t.Fatal(err)
	}
	for origin, refused := range map[string]bool{
		"https://sales.apps.example":      false,
		"https://sales.apps.example:443":  false,
		"https://evil.apps.example":       true,
		"https://sales.apps.example:8443": true,
		"http://sales.apps.example":       true,
		"null":                            true,
		"":                                true,
		"https://sales.apps.example.evil": true,
	} {
		r := httptest.NewRequest("GET", "https://sales.apps.example/ws", nil)
		r.AddCookie(&http.Cookie{Name: "__Host-gatehouse_app", Value: h.seal("sales", "good")})
		r.Header.Set("Connection", "Upgrade")
		r.Header.Set("Upgrade", "websocket")
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		w := httptest.NewRecorder()
		h.Wrap(http.NotFoundHandler(), h).ServeHTTP(w, r)
		got := w.Code == http.StatusForbidden && strings.Contains(w.Body.String(), "opened by another site")
		if got != refused {
			t.Errorf("Origin %q: %d %.80q, want refused %v", origin, w.Code, w.Body.String(), refused)
		}
	}
}
