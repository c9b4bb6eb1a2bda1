package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

// fwdBench is an appsEnv with the bench dashboard granted to sellers and
// ann, a seller, signed in both on the main origin and, through the
// handshake, on the sales app's external host.
type fwdBench struct {
	*appsEnv
	session, appCookie *http.Cookie
	original           string // the X-Original-URL a proxy sends
}

func newFwdBench(b testing.TB, e *appsEnv, slug, external string) *fwdBench {
	b.Helper()
	ctx := context.Background()
	if err := e.store.AddGrant(ctx, db.Actor{Email: "bench"}, "bench", e.sellers.ID); err != nil {
		b.Fatal(err)
	}
	e.member(b, "ann@example.com")
	a, err := e.store.AppBySlug(ctx, slug)
	if errors.Is(err, db.ErrNotFound) {
		a = db.App{Slug: slug, Upstream: e.up.URL, Title: slug, ExternalURL: external}
		if a, err = db.CleanApp(a); err == nil {
			a, err = e.store.CreateApp(ctx, db.Actor{Email: "bench"}, a)
		}
		if err == nil {
			err = e.store.AddGrant(ctx, db.Actor{Email: "bench"}, slug, e.sellers.ID)
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	c := e.browser()
	res, body := send(b, c, "GET", e.base+"/auth/forward?app="+slug, nil, nil)
	if res.StatusCode != http.StatusUnauthorized {
		b.Fatalf("anonymous: %d %s", res.StatusCode, body)
	}
	if _, res, _ = walk(b, c, res.Header.Get("Location"), "ann@example.com"); res == nil {
		b.Fatal("no sign-in")
	}
	f := &fwdBench{appsEnv: e, original: a.ExternalURL + "small"}
	for _, ck := range c.Jar.Cookies(mustURL(a.ExternalURL)) {
		if ck.Name == "gatehouse_app_"+slug {
			f.appCookie = ck
		}
	}
	for _, ck := range c.Jar.Cookies(mustURL(e.base)) {
		if ck.Name == e.sessions.CookieName() {
			f.session = ck
		}
	}
	if f.appCookie == nil || f.session == nil {
		b.Fatalf("after the sign-in: app cookie %v, session %v", f.appCookie, f.session)
	}
	return f
}

// BenchmarkForwardAuth: the answer to a proxy's question for a viewer who
// may open the app, beside the allowed panel (the hot path forward
// authentication is held to), in one process and one run.
func BenchmarkForwardAuth(b *testing.B) {
	e := newAppsEnvOn(b, "", withBenchDashboard)
	e.log = discardLogger()
	f := newFwdBench(b, e, "metrics", "http://metrics.example.com/") // "sales" is a demo dashboard's
	h := e.Routes()
	run := func(b *testing.B, path string, cookie *http.Cookie, hdr http.Header, status int) {
		req := func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, f.base+path, nil)
			r.RemoteAddr = "192.0.2.1:1234"
			for k, v := range hdr {
				r.Header[k] = v
			}
			if cookie != nil {
				r.AddCookie(cookie)
			}
			return r
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req())
		if w.Code != status {
			b.Fatalf("GET %s: %d, want %d: %.300s", path, w.Code, status, w.Body.String())
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req())
			if w.Code != status {
				b.Fatalf("status %d", w.Code)
			}
		}
	}
	asked := http.Header{"X-Original-Url": {f.original}, "X-Forwarded-For": {"198.51.100.7"}}
	b.Run("panel-allowed", func(b *testing.B) {
		run(b, "/dashboards/bench/panels/static", f.session, http.Header{"Hx-Request": {"true"}}, http.StatusOK)
	})
	b.Run("forward-allowed", func(b *testing.B) { run(b, "/auth/forward", f.appCookie, asked, http.StatusOK) })
	b.Run("forward-anonymous", func(b *testing.B) { run(b, "/auth/forward", nil, asked, http.StatusUnauthorized) })
}

// TestBenchForwardAuthLoad measures with wrk, in one run and in turns:
// nginx alone in front of a small JSON upstream, nginx asking Gatehouse
// first (docs/forward-auth.md's configuration), Gatehouse's /auth/forward
// asked directly, and the allowed panel. Set GATEHOUSE_BENCH_FORWARD=1;
// GATEHOUSE_BENCH_SECONDS is each turn's length (default 3), three turns.
func TestBenchForwardAuthLoad(t *testing.T) {
	if os.Getenv("GATEHOUSE_BENCH_FORWARD") == "" {
		t.Skip("a load benchmark: GATEHOUSE_BENCH_FORWARD=1 runs it (BENCHMARKS.md)")
	}
	wrk := needTool(t, "wrk")
	seconds := 3
	if v, err := strconv.Atoi(os.Getenv("GATEHOUSE_BENCH_SECONDS")); err == nil && v > 0 {
		seconds = v
	}
	small := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"region":"north","orders":1204,"ok":true}`))
	}))
	defer small.Close()
	plain := freePort(t)
	upstream := strings.TrimPrefix(small.URL, "http://")
	p := newProxyEnvWith(t, "nginx", proxyOpts{upstream: upstream, configure: []func(*Config, *dashboards.Registry){withBenchDashboard},
		nginxHTTP: "    server {\n        listen 127.0.0.1:" + plain + ";\n        location / {\n            proxy_pass http://" + upstream + ";\n        }\n    }"})
	p.log = discardLogger()
	f := newFwdBench(t, p.appsEnv, "grafana", "http://"+p.grafanaHost+"/")

	type target struct {
		name, url string
		header    []string
	}
	targets := []target{
		{"nginx alone → upstream", "http://127.0.0.1:" + plain + "/small", nil},
		{"nginx + Gatehouse forward auth → upstream", "http://" + p.proxy + "/small",
			[]string{"Host: " + p.grafanaHost, "Cookie: " + f.appCookie.Name + "=" + f.appCookie.Value}},
		{"Gatehouse GET /auth/forward, allowed", f.base + "/auth/forward",
			[]string{"X-Original-URL: " + f.original, "Cookie: " + f.appCookie.Name + "=" + f.appCookie.Value}},
		{"Gatehouse allowed panel (htmx)", f.base + "/dashboards/bench/panels/static",
			[]string{"HX-Request: true", "Cookie: " + f.session.Name + "=" + f.session.Value}},
	}
	reqs := make([]float64, len(targets))
	p99s := make([][]time.Duration, len(targets))
	for turn := 0; turn < 3; turn++ {
		for i, tg := range targets {
			args := []string{"-t1", "-c32", "-d" + strconv.Itoa(seconds) + "s", "--latency"}
			for _, h := range tg.header {
				args = append(args, "-H", h)
			}
			out, err := exec.Command(wrk, append(args, tg.url)...).CombinedOutput()
			if err != nil {
				t.Fatalf("wrk %s: %v\n%s", tg.name, err, out)
			}
			n, p99, err := parseWrk(string(out))
			if err != nil {
				t.Fatalf("wrk %s: %v\n%s", tg.name, err, out)
			}
			reqs[i] += n
			p99s[i] = append(p99s[i], p99)
		}
	}
	t.Logf("wrk -t1 -c32, 3 turns of %d s each, in turns:", seconds)
	t.Logf("| target | req/s | p99 (median turn) | p99 (worst turn) |")
	for i, tg := range targets {
		slices.Sort(p99s[i])
		t.Logf("| %s | %.0f | %s | %s |", tg.name, reqs[i]/float64(3*seconds), p99s[i][1], p99s[i][2])
	}
}

var (
	wrkRequests = regexp.MustCompile(`(\d+) requests in`)
	wrkP99      = regexp.MustCompile(`(?m)^\s+99%\s+([\d.]+)(us|ms|s)\s*$`)
)

// parseWrk reads the requests done and the p99 latency from wrk's output;
// an error when any answer was not 2xx or 3xx.
func parseWrk(out string) (float64, time.Duration, error) {
	if strings.Contains(out, "Non-2xx or 3xx responses") {
		return 0, 0, fmt.Errorf("some answers were not 2xx or 3xx")
	}
	m := wrkRequests.FindStringSubmatch(out)
	q := wrkP99.FindStringSubmatch(out)
	if m == nil || q == nil {
		return 0, 0, fmt.Errorf("no request count or p99 in wrk's output")
	}
	n, _ := strconv.ParseFloat(m[1], 64)
	v, _ := strconv.ParseFloat(q[1], 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[q[2]]
	return n, time.Duration(v * float64(unit)), nil
}
