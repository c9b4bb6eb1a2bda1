package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"

	"gatehouse/app/dashboards"
	"gatehouse/app/ops"
	"gatehouse/components/charts"
	"gatehouse/db"
)

// The hot-path benchmarks drive a.Routes() in process (no TCP): every
// request goes through the whole middleware chain (request id, log,
// security headers, CSRF check, cookie decode, session and user lookup),
// the access check and the render, with a logged-in cookie.
//
//	go test ./app -run '^$' -bench . -benchmem -count 5

// benchPanelBody is the static panel the benchmarks render; its bytes are
// what the bare handler of scripts/bench-load.sh writes too.
var benchPanelBody = charts.Stats(
	charts.StatTile("Open tickets", "1,204", "across all queues", ""),
	charts.StatTile("Breaching SLA", "17", "first response", "warn"),
	charts.StatTile("Median first response", "42 min", "last 7 days", ""),
)

// withBenchDashboard registers "bench": a static panel (no data query, so
// the numbers are the gate's own cost) and one that also requires "leads".
func withBenchDashboard(_ *Config, r *dashboards.Registry) {
	dashboards.RegisterDemo(r)
	static := func(context.Context, dashboards.Query) (templ.Component, error) { return benchPanelBody, nil }
	r.MustRegister(&dashboards.Dashboard{Slug: "bench", Title: "Bench", Panels: []*dashboards.Panel{
		{ID: "static", Title: "Static", Refresh: 30 * time.Second, Data: static},
		{ID: "leads", Title: "Leads only", RequireGroup: "leads", Data: static},
	}})
}

// benchFixture: "team" is granted "bench" and "access"; member is in team,
// lead in team and leads, outsider in nothing. Cookies are their session
// cookies, ready to add to a request.
type benchFixture struct {
	ta                      *testApp
	h                       http.Handler
	member, lead, outsider  *http.Cookie
	memberID, leadID, outID int64
}

func newBenchFixture(b *testing.B, configure ...func(*Config, *dashboards.Registry)) *benchFixture {
	b.Helper()
	ctx := context.Background()
	ta := newTestApp(b, append([]func(*Config, *dashboards.Registry){withBenchDashboard}, configure...)...)
	// Log at the server's default level, to a discarding handler, so the
	// request log line costs what it costs in production minus the write.
	ta.log = discardLogger()
	a := db.Actor{Email: "bench"}
	team, err := ta.store.CreateGroup(ctx, a, "team", "")
	if err != nil {
		b.Fatal(err)
	}
	leads, err := ta.store.CreateGroup(ctx, a, "leads", "")
	if err != nil {
		b.Fatal(err)
	}
	f := &benchFixture{ta: ta, h: ta.Routes()}
	member := ta.createUser(b, "member@example.com", false)
	lead := ta.createUser(b, "lead@example.com", false)
	outsider := ta.createUser(b, "outsider@example.com", false)
	f.memberID, f.leadID, f.outID = member.ID, lead.ID, outsider.ID
	for _, m := range []struct{ g, u int64 }{{team.ID, member.ID}, {team.ID, lead.ID}, {leads.ID, lead.ID}} {
		if err := ta.store.AddMember(ctx, a, m.g, m.u, 0); err != nil {
			b.Fatal(err)
		}
	}
	for _, slug := range []string{"bench", dashboards.AccessSlug, dashboards.SupportSlug} {
		if err := ta.store.AddGrant(ctx, a, slug, team.ID); err != nil {
			b.Fatal(err)
		}
	}
	f.member = f.cookie(b, "member@example.com")
	f.lead = f.cookie(b, "lead@example.com")
	f.outsider = f.cookie(b, "outsider@example.com")
	return f
}

func (f *benchFixture) cookie(b *testing.B, email string) *http.Cookie {
	b.Helper()
	c := f.ta.login(b, email)
	return &http.Cookie{Name: f.ta.sessions.CookieName(), Value: f.ta.sessionCookie(c)}
}

// get builds an htmx GET carrying cookie.
func (f *benchFixture) get(path string, cookie *http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = "192.0.2.1:1234"
	r.Header.Set("HX-Request", "true")
	if cookie != nil {
		r.AddCookie(cookie)
	}
	return r
}

// run serves path as cookie's owner b.N times, failing on another status
// or a body without want.
func (f *benchFixture) run(b *testing.B, path string, htmx bool, cookie *http.Cookie, status int, want string) {
	b.Helper()
	check := func(w *httptest.ResponseRecorder) {
		if w.Code != status || !strings.Contains(w.Body.String(), want) {
			b.Fatalf("GET %s: status %d, want %d with %q; body %.300s", path, w.Code, status, want, w.Body.String())
		}
	}
	req := func() *http.Request {
		r := f.get(path, cookie)
		if !htmx {
			r.Header.Del("HX-Request")
		}
		return r
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req())
	check(w)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, req())
		if w.Code != status {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkPanelAllowed is an allowed htmx panel request by a member of a
// granting group: the hot path of every open dashboard.
func BenchmarkPanelAllowed(b *testing.B) {
	f := newBenchFixture(b)
	b.Run("static", func(b *testing.B) {
		f.run(b, "/dashboards/bench/panels/static", true, f.member, http.StatusOK, "Breaching SLA")
	})
	b.Run("require-group", func(b *testing.B) {
		f.run(b, "/dashboards/bench/panels/leads", true, f.lead, http.StatusOK, "Breaching SLA")
	})
	b.Run("access-groups", func(b *testing.B) {
		f.run(b, "/dashboards/access/panels/groups", true, f.member, http.StatusOK, "Members per group")
	})
	b.Run("demo-tickets-by-status", func(b *testing.B) {
		f.run(b, "/dashboards/support/panels/tickets-by-status", true, f.member, http.StatusOK, "<svg")
	})
	b.Run("static-full-page", func(b *testing.B) {
		f.run(b, "/dashboards/bench/panels/static", false, f.member, http.StatusOK, "Breaching SLA")
	})
}

// BenchmarkPanelAllowedMetrics is BenchmarkPanelAllowed/static with
// --metrics-addr set: what counting and timing every request costs.
func BenchmarkPanelAllowedMetrics(b *testing.B) {
	f := newBenchFixture(b, func(c *Config, _ *dashboards.Registry) { c.MetricsAddr = "127.0.0.1:0" })
	f.run(b, "/dashboards/bench/panels/static", true, f.member, http.StatusOK, "Breaching SLA")
}

// BenchmarkPanelAllowedParallel is BenchmarkPanelAllowed/static from
// GOMAXPROCS goroutines at once, as a loaded server sees it.
func BenchmarkPanelAllowedParallel(b *testing.B) {
	f := newBenchFixture(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			f.h.ServeHTTP(w, f.get("/dashboards/bench/panels/static", f.member))
			if w.Code != http.StatusOK {
				b.Errorf("status %d", w.Code)
				return
			}
		}
	})
}

// BenchmarkPanelDenied is the same panel requested by an outsider: the
// check denies, the denial is audited (deduplicated per minute) and the
// 403 fragment rendered.
func BenchmarkPanelDenied(b *testing.B) {
	f := newBenchFixture(b)
	f.run(b, "/dashboards/bench/panels/static", true, f.outsider, http.StatusForbidden, "You cannot view this dashboard")
}

// BenchmarkPanelAnonymous is the panel without a cookie: 401 and HX-Redirect.
func BenchmarkPanelAnonymous(b *testing.B) {
	f := newBenchFixture(b)
	f.run(b, "/dashboards/bench/panels/static", true, nil, http.StatusUnauthorized, "Log in")
}

// BenchmarkHome is the full home page for a member: their groups and a
// decision for every dashboard.
func BenchmarkHome(b *testing.B) {
	f := newBenchFixture(b)
	f.run(b, "/", false, f.member, http.StatusOK, "Bench")
}

// BenchmarkLogin is a successful POST /login with the real argon2id
// parameters (db.PasswordParams, m=19 MiB, t=2), not the suite's cheap ones:
// throttle check, hash verification, session rotation, audit.
func BenchmarkLogin(b *testing.B) {
	ta := newTestApp(b)
	ta.log = discardLogger()
	ta.hasher = db.NewHasher(db.PasswordParams, 0, 10*time.Second)
	ta.createUser(b, "member@example.com", false)
	h := ta.Routes()
	form := url.Values{"email": {"member@example.com"}, "password": {testPassword}}.Encode()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form))
		r.RemoteAddr = "192.0.2.1:1234"
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusSeeOther {
			b.Fatalf("login: status %d %.300s", w.Code, w.Body.String())
		}
	}
}

// discardLogger logs at Info, like `gatehouse serve`, into io.Discard: the
// request line is formatted but not written.
func discardLogger() *slog.Logger {
	return slog.New(ops.NewTextLog(io.Discard))
}
