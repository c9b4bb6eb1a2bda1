package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

// scrape returns the metrics listener's /metrics body.
func scrape(t *testing.T, a *App) string {
	t.Helper()
	rec := httptest.NewRecorder()
	a.metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

func TestMetricsCountWhatUsersDid(t *testing.T) {
	ctx := context.Background()
	calls := &dataCalls{}
	ta := newTestApp(t, withTestDashboard(calls), func(c *Config, _ *dashboards.Registry) { c.MetricsAddr = "127.0.0.1:0" })
	team, err := ta.store.CreateGroup(ctx, db.Actor{Email: "test"}, "team", "")
	if err != nil {
		t.Fatal(err)
	}
	member := ta.createUser(t, "member@example.com", false)
	ta.createUser(t, "outsider@example.com", false)
	if err := ta.store.AddMember(ctx, db.Actor{Email: "test"}, team.ID, member.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := ta.store.AddGrant(ctx, db.Actor{Email: "test"}, "test", team.ID); err != nil {
		t.Fatal(err)
	}

	ta.hasher.OnWait = ta.metrics.hashWaited // newTestApp swaps in a cheap hasher; count the logins' hashes only
	anon := ta.client()
	ta.get(t, anon, "/", false)                                                                   // 303 to login
	ta.post(t, anon, "/login", url.Values{"email": {"member@example.com"}, "password": {"nope"}}) // 401
	memberC := ta.login(t, "member@example.com")
	outsiderC := ta.login(t, "outsider@example.com")
	ta.get(t, memberC, "/dashboards/test/panels/open", true)           // allowed
	ta.get(t, outsiderC, "/dashboards/test/panels/open", true)         // denied
	ta.get(t, outsiderC, "/dashboards/secret-plans-q3/panels/x", true) // 404: user input in the path
	ta.get(t, outsiderC, "/no/such/page?email=outsider@example.com", false)
	tok, err := ta.store.CreateSCIMToken(ctx, db.Actor{Email: "test"}, "okta")
	if err != nil {
		t.Fatal(err)
	}
	ta.scimRequest(t, anon, "GET", "/Users?filter=userName%20eq%20%22secret-plans%22", "", "Bearer "+tok, nil) // 200
	ta.scimRequest(t, anon, "GET", "/Users/secret-plans", "", "Bearer nope", nil)                              // 401

	out := scrape(t, ta.App)
	for _, want := range []string{
		`gatehouse_http_requests_total{code="303",route="GET /{$}"} 1`,
		`gatehouse_http_requests_total{code="401",route="POST /login"} 1`,
		`gatehouse_http_requests_total{code="303",route="POST /login"} 2`,
		`gatehouse_http_requests_total{code="200",route="GET /dashboards/{slug}/panels/{panel}"} 1`,
		`gatehouse_http_requests_total{code="403",route="GET /dashboards/{slug}/panels/{panel}"} 1`,
		`gatehouse_http_requests_total{code="404",route="GET /dashboards/{slug}/panels/{panel}"} 1`,
		`gatehouse_http_requests_total{code="404",route="/"} 1`,
		`gatehouse_http_request_duration_seconds_count{route="POST /login"} 3`,
		`gatehouse_http_requests_total{code="200",route="/scim/v2"} 1`,
		`gatehouse_http_requests_total{code="401",route="/scim/v2"} 1`,
		`gatehouse_access_decisions_total{dashboard="test",result="allowed"} 1`,
		`gatehouse_access_decisions_total{dashboard="test",result="denied"} 1`,
		`gatehouse_logins_total{result="success"} 2`,
		`gatehouse_sign_ins_total{method="password"} 2`,
		`gatehouse_logins_total{result="failed"} 1`,
		`gatehouse_logins_total{result="throttled"} 0`,
		`gatehouse_password_hash_wait_seconds_count 3`,
		`gatehouse_sessions_active 2`,
		`go_sql_open_connections{db_name="` + ta.store.Dialect + `"}`,
		`go_goroutines`,
		`gatehouse_build_info{dialect="` + ta.store.Dialect + `",version=`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Labels never carry user input.
	for _, leak := range []string{"secret-plans", "example.com", "/no/such"} {
		if strings.Contains(out, leak) {
			t.Errorf("metrics carry user input %q", leak)
		}
	}
	problems, err := testutil.GatherAndLint(ta.metrics.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// promtool, where installed (CI installs it), checks the text format itself.
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(out)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, msg)
		}
	} else {
		t.Log("promtool not installed: skipping promtool check metrics")
	}
}

func TestMetricsThrottledLoginsAreCounted(t *testing.T) {
	ta := newTestApp(t, func(c *Config, _ *dashboards.Registry) { c.MetricsAddr = "127.0.0.1:0"; c.AccountFailures = 2 })
	ta.createUser(t, "ana@example.com", false)
	c := ta.client()
	var last int
	for range 3 {
		res, _ := ta.post(t, c, "/login", url.Values{"email": {"ana@example.com"}, "password": {"wrong"}})
		last = res.StatusCode
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("third bad login: %d, want 429", last)
	}
	out := scrape(t, ta.App)
	for _, want := range []string{`gatehouse_logins_total{result="failed"} 2`, `gatehouse_logins_total{result="throttled"} 1`,
		`gatehouse_throttled_requests_total{what="login"} 1`} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestMetricsOffByDefault(t *testing.T) {
	ta := newTestApp(t)
	if ta.metrics != nil {
		t.Fatal("metrics are on without --metrics-addr")
	}
	// The app's own server never serves /metrics.
	res, err := http.Get(ta.Server.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound || bytes.Contains(body, []byte("go_goroutines")) {
		t.Fatalf("GET /metrics on the app listener: %d", res.StatusCode)
	}
}

func TestReadyz(t *testing.T) {
	ta := newTestApp(t)
	res, body := ta.get(t, ta.client(), "/readyz", false)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"schema":"current"`) {
		t.Fatalf("readyz on a migrated database: %d %s", res.StatusCode, body)
	}
	// A newer build migrated the database ahead of this one: not ready.
	if _, err := ta.store.DB.ExecContext(context.Background(),
		"INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'from the future', 0)"); err != nil {
		t.Fatal(err)
	}
	res, body = ta.get(t, ta.client(), "/readyz", false)
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "version 9999") {
		t.Fatalf("readyz on a newer schema: %d %s", res.StatusCode, body)
	}
	// /healthz keeps its contract: the database answers.
	if res, _ := ta.get(t, ta.client(), "/healthz", false); res.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", res.StatusCode)
	}
	ta.store.DB.Close()
	if res, _ := ta.get(t, ta.client(), "/readyz", false); res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with the database closed: %d", res.StatusCode)
	}
}

// TestGrafanaDashboardQueriesExistingMetrics keeps docs/grafana-dashboard.json
// true to what /metrics serves: every metric a panel queries exists.
func TestGrafanaDashboardQueriesExistingMetrics(t *testing.T) {
	ta := newTestApp(t, func(c *Config, _ *dashboards.Registry) { c.MetricsAddr = "127.0.0.1:0" })
	m := ta.metrics
	m.decision("x", true)
	m.throttled("login")
	m.hashWaited(0, false)
	m.streamOpened()
	ta.get(t, ta.client(), "/", false)
	out := scrape(t, ta.App)

	b, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	name := regexp.MustCompile(`\b(gatehouse|go|process)_[a-z_]+\b`)
	checked := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			for _, metric := range name.FindAllString(target.Expr, -1) {
				checked++
				if !regexp.MustCompile(`(?m)^` + metric + `[{ ]`).MatchString(out) {
					t.Errorf("panel %q queries %s, which /metrics does not serve", p.Title, metric)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d metric references found in the dashboard", checked)
	}
}

func TestMetricsCountOpenEventStreams(t *testing.T) {
	ctx := context.Background()
	ta := newTestApp(t, withTestDashboard(&dataCalls{}), func(c *Config, _ *dashboards.Registry) { c.MetricsAddr = "127.0.0.1:0" })
	team, err := ta.store.CreateGroup(ctx, db.Actor{Email: "test"}, "team", "")
	if err != nil {
		t.Fatal(err)
	}
	member := ta.createUser(t, "member@example.com", false)
	if err := ta.store.AddMember(ctx, db.Actor{Email: "test"}, team.ID, member.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := ta.store.AddGrant(ctx, db.Actor{Email: "test"}, "test", team.ID); err != nil {
		t.Fatal(err)
	}
	c := ta.login(t, "member@example.com")
	s := openEventsUntracked(t, ta, c, "test", pageState(t, ta, c, "test", http.StatusOK))
	if out := scrape(t, ta.App); !strings.Contains(out, "gatehouse_event_streams_open 1\n") {
		t.Fatalf("one stream open, metrics say:\n%s", grepLines(out, "gatehouse_event_streams_open"))
	}
	s.close()
	// The server notices the client left when its next write or its
	// context says so; wait for it (bounded, not timed).
	// The gauge drops inside the handler; the request is counted just after
	// it returns.
	counted := `gatehouse_http_requests_total{code="200",route="GET /dashboards/{slug}/events"} 1`
	for i := 0; ; i++ {
		out := scrape(t, ta.App)
		if strings.Contains(out, "gatehouse_event_streams_open 0\n") && strings.Contains(out, counted) {
			return
		}
		if i == 200 {
			t.Fatalf("after the client left, want the stream closed and counted by its route:\n%s\n%s",
				grepLines(out, "gatehouse_event_streams_open"), grepLines(out, "gatehouse_http_requests_total"))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
