package apps

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"gatehouse/db"
)

// TestCrossOriginWritesRefused: app origins under one apps domain are one
// site, so a sibling app's page (a notebook's output, another team's
// dashboard) can post a form to this app and the browser sends this app's
// SameSite=Lax cookie along: the upstream would take it as the viewer's
// own action (Node-RED deploying a flow, a notebook running code). A
// state-changing request another origin sent is refused before it is
// forwarded; the app's own pages, and clients that are no browser, pass.
func TestCrossOriginWritesRefused(t *testing.T) {
	h, s := newTestHandler(t, 0)
	var reached atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		_, _ = io.WriteString(w, "upstream")
	}))
	defer up.Close()
	if _, err := s.CreateApp(context.Background(), db.Actor{Email: "test"}, db.App{Slug: "sales", Upstream: up.URL, Title: "Sales"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method string
		header       map[string]string
		status       int
	}{
		{"a sibling app's form", "POST", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://evil.localhost:8080"}, 403},
		{"another site's form", "POST", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, 403},
		{"an old browser's sibling form", "DELETE", map[string]string{"Origin": "http://evil.localhost:8080"}, 403},
		{"the main origin's page", "PUT", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:8080"}, 403},
		{"the app's own page", "POST", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://sales.localhost:8080"}, 200},
		{"an old browser's own page", "POST", map[string]string{"Origin": "http://sales.localhost:8080"}, 200},
		{"no browser", "POST", nil, 200},
		{"a sibling's link", "GET", map[string]string{"Sec-Fetch-Site": "same-site"}, 200},
	} {
		before := reached.Load()
		r := httptest.NewRequest(tc.method, "http://sales.localhost:8080/flows", strings.NewReader("a=1"))
		r.AddCookie(&http.Cookie{Name: "gatehouse_app", Value: h.seal("sales", "good")})
		for k, v := range tc.header {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.Wrap(http.NotFoundHandler(), h).ServeHTTP(w, r)
		forwarded := reached.Load() > before
		if w.Code != tc.status || forwarded != (tc.status == 200) {
			t.Errorf("%s: %d (forwarded %v), want %d", tc.name, w.Code, forwarded, tc.status)
		}
		if tc.status == 403 && !strings.Contains(w.Body.String(), "sent by another site") {
			t.Errorf("%s: 403 page says %q", tc.name, w.Body.String())
		}
	}
}
