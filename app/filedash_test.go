package app

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

// fileDashFixture serves a dashboards directory over a SQLite file: the
// "orders" dashboard, granted to "north", whose member sees north's rows.
type fileDashFixture struct {
	ta                      *testApp
	dir                     string
	memberC, outsiderC, adC *http.Client
}

const ordersDashboard = `slug: orders
title: Orders
description: What was sold.
source: shop
filters:
  - name: region
    type: select
    options: [north, south]
panels:
  - id: by-region
    title: Orders by region
    chart: bar
    sql: SELECT region AS label, SUM(amount) AS value FROM orders WHERE region IN (:viewer_groups) GROUP BY region
  - id: total
    title: Total
    chart: stat
    sql: SELECT SUM(amount) AS total FROM orders WHERE :region = '' OR region = :region
  - id: broken
    title: Broken
    chart: table
    sql: SELECT missing FROM nowhere
  - id: leads
    title: Leads only
    chart: table
    require_group: leads
    sql: SELECT region FROM orders
`

func newFileDashFixture(t *testing.T) *fileDashFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	shop := filepath.Join(dir, "shop.db")
	rw, err := sql.Open("sqlite", shop)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"CREATE TABLE orders (region TEXT, amount INTEGER)",
		"INSERT INTO orders VALUES ('north', 10), ('north', 20), ('south', 5)"} {
		if _, err := rw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	rw.Close()
	writeTestFile(t, filepath.Join(dir, "sources.yaml"), "sources:\n  shop: sqlite:shop.db\n")
	writeTestFile(t, filepath.Join(dir, "orders.yaml"), ordersDashboard)
	ta := newTestApp(t, func(c *Config, _ *dashboards.Registry) { c.Dashboards = dir })
	if err := ta.openFiles(ctx); err != nil {
		t.Fatal(err)
	}
	f := &fileDashFixture{ta: ta, dir: dir}
	member := ta.createUser(t, "member@example.com", false)
	ta.createUser(t, "outsider@example.com", false)
	ta.createUser(t, "admin@example.com", true)
	cli := db.Actor{Email: "test"}
	north, err := ta.store.CreateGroup(ctx, cli, "north", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := ta.store.AddMember(ctx, cli, north.ID, member.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := ta.store.AddGrant(ctx, cli, "orders", north.ID); err != nil {
		t.Fatal(err)
	}
	f.memberC = ta.login(t, "member@example.com")
	f.outsiderC = ta.login(t, "outsider@example.com")
	f.adC = ta.login(t, "admin@example.com")
	return f
}

func writeTestFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFileDashboardThroughTheWrapper: a file dashboard is decided like any
// other before its query runs; its panels answer 200 even when the query
// fails, and show the viewer's rows only.
func TestFileDashboardThroughTheWrapper(t *testing.T) {
	f := newFileDashFixture(t)
	ta := f.ta
	queries := func() int64 { return ta.files.Queries.Load() }

	// Denied viewers: the query never runs.
	for _, path := range []string{"/dashboards/orders/panels/by-region", "/dashboards/orders/panels/total"} {
		res, body := ta.get(t, f.outsiderC, path, true)
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "You cannot view this dashboard") {
			t.Errorf("outsider GET %s = %d %q", path, res.StatusCode, body)
		}
	}
	res, body := ta.get(t, f.memberC, "/dashboards/orders/panels/leads", true)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, `only for members of &#34;leads&#34;`) {
		t.Errorf("member GET the leads panel = %d %q", res.StatusCode, body)
	}
	if n := queries(); n != 0 {
		t.Fatalf("denied requests ran %d queries", n)
	}
	if res, _ := ta.get(t, f.memberC, "/dashboards/orders/panels/nope", true); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown panel = %d", res.StatusCode)
	}

	// The page: panels load by htmx, with the filter form above them.
	res, body = ta.get(t, f.memberC, "/dashboards/orders", false)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("member GET /dashboards/orders = %d", res.StatusCode)
	}
	for _, want := range []string{"<h1>Orders</h1>", "What was sold.", `<form class="filters"`, `<option value="north">north</option>`,
		`hx-get="/dashboards/orders/panels/by-region?region="`, "Orders by region"} {
		if !strings.Contains(body, want) {
			t.Errorf("the dashboard page lacks %q", want)
		}
	}
	res, body = ta.get(t, f.memberC, "/dashboards/orders?region=south", false)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `hx-get="/dashboards/orders/panels/total?region=south"`) ||
		!strings.Contains(body, `<option value="south" selected>`) {
		t.Errorf("the filtered page (%d) does not pass the filter on", res.StatusCode)
	}

	// The member's rows only.
	res, body = ta.get(t, f.memberC, "/dashboards/orders/panels/by-region", true)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "north") || strings.Contains(body, "south") || strings.Contains(body, "<html") {
		t.Errorf("member's bar panel = %d %q", res.StatusCode, body)
	}
	_, all := ta.get(t, f.memberC, "/dashboards/orders/panels/total", true)
	_, south := ta.get(t, f.memberC, "/dashboards/orders/panels/total?region=south", true)
	if !strings.Contains(all, ">35<") || !strings.Contains(south, ">5<") {
		t.Errorf("the total panel: all %q, south %q", all, south)
	}
	// A failing query: 200 with a message inside the panel; the
	// database's words (table names) for admins only.
	res, body = ta.get(t, f.memberC, "/dashboards/orders/panels/broken", true)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `role="alert"`) || !strings.Contains(body, "query failed") || strings.Contains(body, "nowhere") {
		t.Errorf("the broken panel, to a member = %d %q", res.StatusCode, body)
	}
	res, body = ta.get(t, f.adC, "/dashboards/orders/panels/broken", true)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "no such table: nowhere") {
		t.Errorf("the broken panel, to an admin = %d %q", res.StatusCode, body)
	}
	if !strings.Contains(ta.Logs.String(), "broken") || !strings.Contains(ta.Logs.String(), "orders.yaml") {
		t.Errorf("the failure was not logged with its file and panel: %s", ta.Logs.String())
	}
	// Without htmx the panel is a full page.
	if res, body := ta.get(t, f.memberC, "/dashboards/orders/panels/total", false); res.StatusCode != http.StatusOK || !strings.Contains(body, "<html") {
		t.Errorf("plain GET of a panel = %d", res.StatusCode)
	}

	// The home page and the explainer know it like any dashboard.
	if _, body := ta.get(t, f.outsiderC, "/", false); !strings.Contains(body, "Orders") || !strings.Contains(body, "Request access") {
		t.Error("the outsider's home page does not offer the file dashboard with a request")
	}
}

// TestFileDashboardEditRefreshesOpenPages: an edit is served at once, an
// open page's stream says so, and a broken edit keeps the last good
// version and shows on the admin overview.
func TestFileDashboardEditRefreshesOpenPages(t *testing.T) {
	f := newFileDashFixture(t)
	ta := f.ta
	res, body := ta.get(t, f.memberC, "/dashboards/orders", false)
	m := stateRE.FindStringSubmatch(body)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("the page (%d) has no event stream", res.StatusCode)
	}
	state, _ := url.QueryUnescape(m[1])
	if !strings.HasPrefix(state, "a:1110@") {
		t.Fatalf("page state = %q, want a:1110@VERSION", state)
	}
	s := openEvents(t, ta, f.memberC, "orders", url.QueryEscape(state))

	// Another file's arrival says nothing to this page.
	writeTestFile(t, filepath.Join(f.dir, "other.yaml"), "slug: other\ntitle: Other\nsource: shop\npanels:\n  - {id: n, title: N, chart: stat, sql: SELECT 1}\n")
	if err := ta.files.Reload(); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-s.events:
		t.Fatalf("another file's change sent %+v", ev)
	case <-time.After(300 * time.Millisecond):
	}

	writeTestFile(t, filepath.Join(f.dir, "orders.yaml"), strings.Replace(ordersDashboard, "title: Orders\n", "title: Orders, renamed\n", 1))
	if err := ta.files.Reload(); err != nil {
		t.Fatal(err)
	}
	ev := s.next(t, "the file changed")
	if ev.name != "access" || ev.data != "This dashboard has been updated." || ev.id == state {
		t.Fatalf("after the edit: %+v", ev)
	}
	if _, body := ta.get(t, f.memberC, "/dashboards/orders", false); !strings.Contains(body, "Orders, renamed") {
		t.Error("the page does not show the edit")
	}

	// A broken edit: the last good version stays; admins see why.
	writeTestFile(t, filepath.Join(f.dir, "orders.yaml"), strings.Replace(ordersDashboard, "chart: bar", "chart: pie", 1))
	if err := ta.files.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, body := ta.get(t, f.memberC, "/dashboards/orders", false); !strings.Contains(body, "Orders, renamed") {
		t.Error("a broken edit took the dashboard down")
	}
	_, body = ta.get(t, f.adC, "/admin", false)
	if !strings.Contains(body, "Dashboard files have problems") || !strings.Contains(body, `orders.yaml:12:12: chart &#34;pie&#34; must be one of`) {
		t.Errorf("the admin overview does not show the broken file:\n%s", body)
	}
	if _, body := ta.get(t, f.memberC, "/admin", false); strings.Contains(body, "orders.yaml") {
		t.Error("a non-admin saw the file problems")
	}

	// Removed: the page is told, and the dashboard is gone.
	os.Remove(filepath.Join(f.dir, "orders.yaml"))
	if err := ta.files.Reload(); err != nil {
		t.Fatal(err)
	}
	if ev := s.next(t, "the file removed"); ev.data != "This dashboard has been removed." {
		t.Fatalf("after the removal: %+v", ev)
	}
	if res, _ := ta.get(t, f.memberC, "/dashboards/orders", false); res.StatusCode != http.StatusNotFound {
		t.Errorf("a removed file dashboard = %d", res.StatusCode)
	}
}

// TestDemoServesAFileDashboard: `serve --demo` also serves the demo's
// dashboard written as a file, granted to every team, each team seeing its
// own rows.
func TestDemoServesAFileDashboard(t *testing.T) {
	t.Chdir(t.TempDir()) // no ./dashboards here (the package directory app/dashboards is one)
	ta := newTestApp(t, func(c *Config, r *dashboards.Registry) { c.Demo = true; dashboards.RegisterDemo(r) })
	if err := ta.openFiles(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(ta.cfg.DataDir, "demo-dashboards", "team-spend.yaml")); err != nil {
		t.Fatalf("the demo's directory was not written: %v", err)
	}
	out := ta.seedDemo(t)
	if !strings.Contains(out, "Team spend") {
		t.Errorf("the demo banner does not mention the file dashboard:\n%s", out)
	}
	demoLogin := func(email string) *http.Client {
		cl := ta.client()
		if res, _ := ta.post(t, cl, "/login", url.Values{"email": {email}, "password": {DemoPassword}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("logging in as %s: %d", email, res.StatusCode)
		}
		return cl
	}
	for _, c := range []struct{ email, mine, other string }{
		{"alice@demo.example", "sales", "finance"},
		{"fran@demo.example", "finance", "sales"},
	} {
		cl := demoLogin(c.email)
		res, body := ta.get(t, cl, "/dashboards/team-spend/panels/biggest", true)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "<td>"+c.mine+"</td>") || strings.Contains(body, "<td>"+c.other+"</td>") {
			t.Errorf("%s's biggest months = %d:\n%s", c.email, res.StatusCode, body)
		}
	}
	if res, _ := ta.get(t, demoLogin("olivia@demo.example"), "/dashboards/team-spend/panels/biggest", true); res.StatusCode != http.StatusForbidden {
		t.Errorf("olivia (in no group) got %d", res.StatusCode)
	}
}
