package apps

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

// oneViewer is a Gate that knows one session cookie.
type oneViewer struct{ v Viewer }

func (g oneViewer) Viewer(_ context.Context, cookie string) (Viewer, bool, error) {
	return g.v, cookie == "good", nil
}

// newTestHandler serves apps over a fresh SQLite store, with one admin
// viewer holding the session cookie "good".
func newTestHandler(t *testing.T, timeout time.Duration) (*Handler, *db.Store) {
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
	admin := db.User{ID: 1, Email: "root@example.com", IsAdmin: true, IsActive: true}
	h, err := New(ctx, Config{Domain: "localhost", BaseURL: "http://127.0.0.1:8080", Store: s, Registry: reg,
		Gate: oneViewer{Viewer{User: admin, SessionHash: "h"}}, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h, s
}

// get sends GET path to app slug's host through h with the app cookie.
func get(h *Handler, slug, path string) *http.Response {
	r := httptest.NewRequest("GET", "http://"+slug+".localhost:8080"+path, nil)
	r.AddCookie(&http.Cookie{Name: "gatehouse_app", Value: h.seal(slug, "good")})
	w := httptest.NewRecorder()
	h.Wrap(http.NotFoundHandler(), h).ServeHTTP(w, r)
	return w.Result()
}

func TestUpstreamDownAndSlow(t *testing.T) {
	h, s := newTestHandler(t, 100*time.Millisecond)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := "http://" + ln.Addr().String()
	ln.Close()
	ctx := context.Background()
	for _, a := range []db.App{{Slug: "slow", Upstream: slow.URL, Title: "Slow app"}, {Slug: "down", Upstream: down, Title: "Down app"}} {
		if _, err := s.CreateApp(ctx, db.Actor{Email: "test"}, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		slug   string
		status int
		words  string
	}{
		{"slow", http.StatusGatewayTimeout, "Slow app did not answer in time"},
		{"down", http.StatusBadGateway, "Gatehouse could not reach Down app"},
	} {
		res := get(h, tc.slug, "/")
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != tc.status || !strings.Contains(string(body), tc.words) {
			t.Errorf("%s: %d %q, want %d with %q", tc.slug, res.StatusCode, body, tc.status, tc.words)
		}
	}
}

func TestAppSlug(t *testing.T) {
	h, _ := newTestHandler(t, 0)
	for host, want := range map[string]string{
		"sales.localhost:8080": "sales",
		"sales.localhost.":     "sales",
		"SALES.localhost":      "sales",
		"127.0.0.1:8080":       "",
		"localhost:8080":       "",
		"a.b.localhost":        "",
		"sales.localhost.evil": "",
		"salesXlocalhost":      "",
	} {
		if got, _ := h.AppSlug(host); got != want {
			t.Errorf("AppSlug(%q) = %q, want %q", host, got, want)
		}
	}
	// Every host under the apps domain is the apps handler's (404 for no
	// app); Gatehouse's own host and others go to the main routes.
	main := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for host, want := range map[string]int{"a.b.localhost": 404, "nope.localhost.:8080": 404, "127.0.0.1:8080": 418, "localhost:8080": 418, "example.com": 418} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = host
		h.Wrap(main, h).ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %s: %d, want %d", host, w.Code, want)
		}
	}
	for next, want := range map[string]string{"/a?b=1": "/a?b=1", "//evil.example": "/", "/\\evil": "/", "https://evil.example/": "/", "": "/",
		"/./\\evil.example": "/", "/a/..\\evil": "/", "/a\tb": "/", "/a\x7fb": "/", "/a%5Cb": "/a%5Cb"} {
		if got := LocalPath(next); got != want {
			t.Errorf("LocalPath(%q) = %q, want %q", next, got, want)
		}
	}
}

func TestDefaultDomain(t *testing.T) {
	for base, want := range map[string]string{
		"http://127.0.0.1:8080":          "localhost",
		"http://localhost:8080":          "localhost",
		"http://[::1]:8080":              "localhost",
		"https://gatehouse.corp.example": "",
		"http://10.0.0.5:8080":           "",
	} {
		if got := DefaultDomain(base); got != want {
			t.Errorf("DefaultDomain(%q) = %q, want %q", base, got, want)
		}
	}
	if got := Origin("https://gatehouse.corp.example", "apps.corp.example", "sales"); got != "https://sales.apps.corp.example" {
		t.Errorf("Origin: %q", got)
	}
}
