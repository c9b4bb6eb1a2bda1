package filedash

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/a-h/templ"
	_ "github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun/driver/pgdriver"

	"gatehouse/app/dashboards"
	"gatehouse/db"
	"gatehouse/db/postgrestest"
)

// backend is a database a file dashboard reads: its DSN for sources.yaml,
// a writable handle to set it up and check it, and SQL that sleeps.
type backend struct {
	name  string
	dsn   string
	rw    *sql.DB
	sleep string
	// running, when set, counts the sleeping statements still running on
	// the server (the server must stop them, not only this client).
	running string
}

// orders is the table every backend holds: two rows for "north", one each
// for "south" and "east".
const ordersDDL = `CREATE TABLE orders (region VARCHAR(20), amount INTEGER, day VARCHAR(10))`

var orderRows = []string{
	`INSERT INTO orders VALUES ('north', 10, '2026-01-05')`,
	`INSERT INTO orders VALUES ('north', 20, '2026-02-05')`,
	`INSERT INTO orders VALUES ('south', 5, '2026-02-06')`,
	`INSERT INTO orders VALUES ('east', 7, '2026-03-01')`,
}

func setupOrders(t testing.TB, rw *sql.DB) {
	t.Helper()
	for _, q := range append([]string{ordersDDL}, orderRows...) {
		if _, err := rw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func sqliteBackend(t testing.TB) backend {
	path := filepath.Join(t.TempDir(), "shop.db")
	rw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rw.Close() })
	setupOrders(t, rw)
	return backend{name: "sqlite", dsn: "sqlite:" + path, rw: rw,
		sleep: `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 2000000000) SELECT count(*) FROM c`}
}

func postgresBackend(t testing.TB) backend {
	dsn := postgrestest.Schema(t)
	rw := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn)))
	t.Cleanup(func() { rw.Close() })
	setupOrders(t, rw)
	return backend{name: "postgres", dsn: dsn, rw: rw, sleep: `SELECT pg_sleep(3)`,
		running: `SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(3)' AND state = 'active'`}
}

// mysqlEnv names the test MariaDB/MySQL server, as mysql://root@127.0.0.1:53306/
// (.ci/run starts one).
const mysqlEnv = "GATEHOUSE_TEST_MYSQL"

func mysqlBackend(t testing.TB) backend {
	base := os.Getenv(mysqlEnv)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set, and CI=true requires the MariaDB tests to run", mysqlEnv)
		}
		t.Skipf("skipping the MariaDB half: set %s (e.g. mysql://root@127.0.0.1:53306/) to run it", mysqlEnv)
	}
	dsn, _, _, err := normalizeDSN(base, "")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("gh_test_%d", time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("cannot create a database on %s: %v", mysqlEnv, err)
	}
	t.Cleanup(func() {
		a, _ := sql.Open("mysql", dsn)
		a.Exec("DROP DATABASE " + name)
		a.Close()
	})
	u, _ := url.Parse(base)
	u.Path = "/" + name
	dbDSN, _, _, _ := normalizeDSN(u.String(), "")
	rw, err := sql.Open("mysql", dbDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rw.Close() })
	setupOrders(t, rw)
	return backend{name: "mariadb", dsn: u.String(), rw: rw, sleep: `SELECT SLEEP(3)`,
		running: `SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO = 'SELECT SLEEP(3)'`}
}

func (b backend) countOrders(t testing.TB) int {
	t.Helper()
	var n int
	if err := b.rw.QueryRow("SELECT COUNT(*) FROM orders").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// ordersFile is a dashboard over the orders table with every chart kind,
// filters, :viewer_groups and panels that must fail safely.
func ordersFile(b backend) string {
	return `slug: orders
title: Orders
description: What was sold.
source: shop
filters:
  - name: region
    label: Region
    type: select
    sql: SELECT DISTINCT region FROM orders ORDER BY region
  - name: since
    type: date
    default: "2026-01-01"
panels:
  - id: by-region
    title: Orders by region
    chart: bar
    sql: |
      -- only the viewer's regions (':not_a_param' in a comment)
      SELECT region AS label, SUM(amount) AS value FROM orders
      WHERE region IN (:viewer_groups) GROUP BY region ORDER BY region
  - id: trend
    title: Amount by day
    chart: line
    formats: {amount: currency}
    sql: SELECT day, SUM(amount) AS amount FROM orders GROUP BY day ORDER BY day
  - id: total
    title: Total
    chart: stat
    sql: |
      SELECT COUNT(*) AS orders, SUM(amount) AS amount FROM orders
      WHERE (:region = '' OR region = :region) AND day >= :since
  - id: rows
    title: My rows
    chart: table
    sql: SELECT region, amount, ':x' AS tag FROM orders WHERE region IN (:viewer_groups) ORDER BY amount
  - id: me
    title: Me
    chart: table
    sql: SELECT :viewer_email AS email
  - id: delete
    title: Delete
    chart: table
    sql: DELETE FROM orders
  - id: insert
    title: Insert
    chart: table
    sql: INSERT INTO orders VALUES ('west', 1, '2026-01-01')
  - id: slow
    title: Slow
    chart: stat
    timeout: 300ms
    sql: ` + b.sleep + `
  - id: big
    title: Big
    chart: table
    row_limit: 2
    sql: SELECT region FROM orders
`
}

// fixture is a served dashboards directory and a store with two viewers:
// north@ in group north, se@ in south and east.
type fixture struct {
	dir   string
	srv   *Server
	reg   *dashboards.Registry
	store *db.Store
	north dashboards.Viewer
	se    dashboards.Viewer
}

func writeFile(t testing.TB, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newStore(t testing.TB) *db.Store {
	t.Helper()
	ctx := context.Background()
	store, err := db.Open(ctx, db.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return store
}

func viewerIn(t testing.TB, s *db.Store, email string, groups ...string) dashboards.Viewer {
	t.Helper()
	ctx := context.Background()
	u, err := s.CreateUser(ctx, db.Actor{Email: "test"}, db.NewUser{Email: email, Name: strings.Split(email, "@")[0], PasswordHash: "x"})
	if err != nil {
		t.Fatalf("creating %s: %v", email, err)
	}
	for _, g := range groups {
		grp, err := s.GroupByName(ctx, g)
		if err != nil {
			if grp, err = s.CreateGroup(ctx, db.Actor{Email: "test"}, g, ""); err != nil {
				t.Fatalf("creating group %s: %v", g, err)
			}
		}
		if err := s.AddMember(ctx, db.Actor{Email: "test"}, grp.ID, u.ID, 0); err != nil {
			t.Fatalf("adding %s to %s: %v", email, g, err)
		}
	}
	return dashboards.ViewerOf(u)
}

func newFixture(t testing.TB, b backend) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), reg: dashboards.NewRegistry(), store: newStore(t)}
	dashboards.RegisterBuiltins(f.reg)
	writeFile(t, f.dir, SourcesFile, "sources:\n  shop: ${SHOP_DSN}\n")
	writeFile(t, f.dir, "orders.yaml", ordersFile(b))
	f.north = viewerIn(t, f.store, "north@example.com", "north")
	f.se = viewerIn(t, f.store, "se@example.com", "south", "east")
	var err error
	f.srv, err = Open(context.Background(), Config{Dir: f.dir, Registry: f.reg,
		Getenv: func(k string) string {
			if k == "SHOP_DSN" {
				return b.dsn
			}
			return ""
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.srv.Close)
	if p := f.srv.Problems(); len(p) > 0 {
		t.Fatalf("problems loading the fixture: %v", p)
	}
	return f
}

var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// panel renders a panel of dashboard slug for v with params.
func (f *fixture) panel(t testing.TB, slug, id string, v dashboards.Viewer, params url.Values) string {
	t.Helper()
	return f.panelAt(t, testNow, slug, id, v, params)
}

func (f *fixture) panelAt(t testing.TB, now time.Time, slug, id string, v dashboards.Viewer, params url.Values) string {
	t.Helper()
	d := f.reg.Get(slug)
	if d == nil {
		t.Fatalf("dashboard %q is not registered", slug)
	}
	p := d.Panel(id)
	if p == nil {
		t.Fatalf("dashboard %q has no panel %q", slug, id)
	}
	c, err := p.Data(context.Background(), dashboards.Query{Store: f.store, Viewer: v, Now: now, Params: params})
	if err != nil {
		t.Fatalf("panel %s/%s: %v", slug, id, err)
	}
	return render(t, c)
}

func render(t testing.TB, c templ.Component) string {
	t.Helper()
	var b strings.Builder
	if err := c.Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func contains(t testing.TB, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, got)
		}
	}
}

func lacks(t testing.TB, what, got string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(got, w) {
			t.Errorf("%s contains %q:\n%s", what, w, got)
		}
	}
}

// TestFileDashboards runs the orders dashboard over SQLite, PostgreSQL and
// MariaDB: every chart kind, filters, rows by the viewer's groups, writes
// refused, the timeout and the row limit.
func TestFileDashboards(t *testing.T) {
	for _, tc := range []struct {
		name string
		mk   func(testing.TB) backend
	}{{"sqlite", sqliteBackend}, {"postgres", postgresBackend}, {"mariadb", mysqlBackend}} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mk(t)
			f := newFixture(t, b)

			// Bar, by the viewer's groups: each sees their own regions only.
			north := f.panel(t, "orders", "by-region", f.north, nil)
			contains(t, "north's bar chart", north, "<svg", "north", "30")
			lacks(t, "north's bar chart", north, "south", "east")
			se := f.panel(t, "orders", "by-region", f.se, nil)
			contains(t, "south+east's bar chart", se, "south", "east")
			lacks(t, "south+east's bar chart", se, "north")
			// Asked again, from the cache: still not mixed.
			lacks(t, "north's bar chart (cached)", f.panel(t, "orders", "by-region", f.north, nil), "south", "east")

			rows := f.panel(t, "orders", "rows", f.north, nil)
			contains(t, "north's table", rows, "<table", "north", "10", "20", ":x")
			lacks(t, "north's table", rows, "south")

			// A viewer in no group matches nothing.
			none := viewerIn(t, f.store, "nobody@example.com")
			contains(t, "a viewer without groups", f.panel(t, "orders", "rows", none, nil), "No rows.")

			contains(t, "the line chart", f.panel(t, "orders", "trend", f.north, nil), "<svg", "2026-02-05", "$20")
			contains(t, "the viewer's email", f.panel(t, "orders", "me", f.se, nil), "se@example.com")

			// Stat with filters: all, one region, a later date.
			contains(t, "the total", f.panel(t, "orders", "total", f.north, nil), ">4<", ">42<")
			contains(t, "the total for south", f.panel(t, "orders", "total", f.north, url.Values{"region": {"south"}}), ">1<", ">5<")
			contains(t, "the total since February", f.panel(t, "orders", "total", f.north, url.Values{"since": {"2026-02-01"}}), ">3<", ">32<")
			contains(t, "a region that is no option", f.panel(t, "orders", "total", f.north, url.Values{"region": {"x' OR 1=1 --"}}),
				"has no option")
			contains(t, "a bad date", f.panel(t, "orders", "total", f.north, url.Values{"since": {"yesterday"}}), "must be a date")

			// Writes are refused and change nothing.
			for _, id := range []string{"delete", "insert"} {
				got := f.panel(t, "orders", id, f.north, nil)
				contains(t, id+" panel", got, `role="alert"`, "This panel&#39;s query failed. An admin sees why")
				// The database's words may name tables and columns: admins
				// alone see them, from the same cached failure.
				lacks(t, id+" panel for a viewer", got, "failed:", strings.ToUpper(id))
				admin := f.north
				admin.IsAdmin = true
				contains(t, id+" panel for an admin", f.panel(t, "orders", id, admin, nil), "This panel&#39;s query failed: ")
			}
			if n := b.countOrders(t); n != 4 {
				t.Errorf("after the delete and insert panels the table has %d rows, want 4", n)
			}

			contains(t, "the slow panel", f.panel(t, "orders", "slow", f.north, nil), "took longer than 300ms")
			if b.running != "" {
				var n int
				if err := b.rw.QueryRow(b.running).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != 0 {
					t.Errorf("the slow panel's statement still runs on the server (%d)", n)
				}
			}
			contains(t, "the big panel", f.panel(t, "orders", "big", f.north, nil), "more than 2 rows")
			// The other panels are unaffected.
			contains(t, "the total after failures", f.panel(t, "orders", "total", f.se, url.Values{"region": {"east"}}), ">7<")

			// check: every query prepared by the database; a bad one named.
			getenv := func(k string) string {
				if k == "SHOP_DSN" {
					return b.dsn
				}
				return ""
			}
			// The panels that write are named; the rest prepare.
			rep, err := Check(context.Background(), f.dir, getenv)
			if err != nil || len(rep.Problems) != 2 || rep.Dashboards != 1 || rep.Sources != 1 ||
				!strings.Contains(rep.Problems[0].String(), "orders.yaml:43:10: panel delete: only a SELECT can run here") ||
				!strings.Contains(rep.Problems[1].String(), "orders.yaml:47:10: panel insert: only a SELECT can run here") {
				t.Errorf("check of the orders directory: %+v %v", rep, err)
			}
			writeFile(t, f.dir, "bad.yaml", "slug: bad\ntitle: Bad\nsource: shop\npanels:\n  - id: p\n    title: P\n    chart: table\n    sql: SELECT nope FROM orders WHERE region = :viewer_email\n")
			rep, err = Check(context.Background(), f.dir, getenv)
			if err != nil || len(rep.Problems) != 3 || !strings.HasPrefix(rep.Problems[0].String(), filepath.Join(f.dir, "bad.yaml")+":8:10: panel p: ") ||
				!strings.Contains(rep.Problems[0].String(), "nope") {
				t.Errorf("check of a bad query: %v %v", rep.Problems, err)
			}

			// The filter form lists the select's options from its query.
			form, vals, err := f.reg.Get("orders").Filters(context.Background(), dashboards.Query{Store: f.store, Viewer: f.north, Now: testNow,
				Params: url.Values{"region": {"south"}}})
			if err != nil {
				t.Fatal(err)
			}
			html := render(t, form)
			contains(t, "the filter form", html, `<form class="filters"`, `name="region"`, `<option value="south" selected>`, `type="date"`, `value="2026-01-01"`)
			if vals.Get("region") != "south" || vals.Get("since") != "2026-01-01" {
				t.Errorf("filter values = %v", vals)
			}
		})
	}
}

// TestCacheOneQueryFor1000Viewers: a thousand viewers asking for one panel
// at once cause one query; a viewer with other groups causes another, and
// never sees the first one's rows.
func TestCacheOneQueryFor1000Viewers(t *testing.T) {
	f := newFixture(t, sqliteBackend(t))
	var wg sync.WaitGroup
	out := make([]string, 1000)
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = f.panel(t, "orders", "by-region", f.north, nil)
		}()
	}
	wg.Wait()
	if n := f.srv.Queries.Load(); n != 1 {
		t.Errorf("1,000 concurrent viewers caused %d queries, want 1", n)
	}
	for _, o := range out {
		if o != out[0] {
			t.Fatal("concurrent viewers of one panel got different bodies")
		}
	}
	// A filter the panel does not use shares its entry (the one more
	// query reads the filter's options, to check the value).
	f.panel(t, "orders", "by-region", f.north, url.Values{"region": {"south"}})
	if n := f.srv.Queries.Load(); n != 2 {
		t.Errorf("a filter the panel ignores: %d queries in all, want 2", n)
	}
	se := f.panel(t, "orders", "by-region", f.se, nil)
	lacks(t, "another group set's panel", se, "north")
	if n := f.srv.Queries.Load(); n != 3 {
		t.Errorf("a second group set caused %d queries in all, want 3", n)
	}
	// A second viewer with north's groups shares north's entry.
	other := viewerIn(t, f.store, "north2@example.com", "north")
	if got := f.panel(t, "orders", "by-region", other, nil); got != out[0] {
		t.Error("a viewer with the same groups got a different panel")
	}
	if n := f.srv.Queries.Load(); n != 3 {
		t.Errorf("a viewer with a cached group set caused a query (%d in all)", n)
	}
}

// TestSourceDown: a panel over a source that does not answer shows why,
// inside the panel.
func TestSourceDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	dir := t.TempDir()
	writeFile(t, dir, SourcesFile, "sources:\n  down: postgres://u@"+addr+"/x?sslmode=disable\n  gone: sqlite:missing.db\n")
	writeFile(t, dir, "a.yaml", "slug: a\ntitle: A\nsource: down\npanels:\n  - {id: p, title: P, chart: stat, sql: SELECT 1}\n")
	writeFile(t, dir, "b.yaml", "slug: b\ntitle: B\nsource: gone\npanels:\n  - {id: p, title: P, chart: stat, sql: SELECT 1}\n")
	reg := dashboards.NewRegistry()
	srv, err := Open(context.Background(), Config{Dir: dir, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	f := &fixture{reg: reg, store: newStore(t)}
	contains(t, "a panel over a PostgreSQL server that is down", f.panel(t, "a", "p", dashboards.Viewer{}, nil), `role="alert"`, "query failed")
	contains(t, "a panel over a missing SQLite file, to an admin", f.panel(t, "b", "p", dashboards.Viewer{IsAdmin: true}, nil), `role="alert"`, "cannot be read")
	// A failure is kept a few seconds (one query for every viewer then),
	// not the panel's whole interval.
	f.panel(t, "b", "p", dashboards.Viewer{}, nil)
	if n := srv.Queries.Load(); n != 2 {
		t.Errorf("asking again at once ran %d queries in all, want 2", n)
	}
	f.panelAt(t, testNow.Add(failTTL), "b", "p", dashboards.Viewer{}, nil)
	if n := srv.Queries.Load(); n != 3 {
		t.Errorf("asking again after %s ran %d queries in all, want 3", failTTL, n)
	}
}

// TestBrokenFiles: a broken file at start is left out with its place named;
// a broken edit keeps the last good version until it is fixed.
func TestBrokenFiles(t *testing.T) {
	b := sqliteBackend(t)
	dir := t.TempDir()
	writeFile(t, dir, SourcesFile, "sources:\n  shop: "+b.dsn+"\n")
	good := "slug: good\ntitle: Good one\nsource: shop\npanels:\n  - id: n\n    title: N\n    chart: stat\n    sql: SELECT COUNT(*) AS n FROM orders\n"
	writeFile(t, dir, "good.yaml", good)
	writeFile(t, dir, "bad.yaml", "slug: bad\ntitle: Bad\nsource: shop\npanels:\n  - id: n\n    title: N\n    chart: pie\n    sql: SELECT 1\n")
	writeFile(t, dir, "access.yaml", "slug: access\ntitle: Mine\nsource: shop\npanels:\n  - {id: n, title: N, chart: stat, sql: SELECT 1}\n")
	reg := dashboards.NewRegistry()
	dashboards.RegisterBuiltins(reg)
	srv, err := Open(context.Background(), Config{Dir: dir, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	probs := fmt.Sprint(srv.Problems())
	contains(t, "the problems at start", probs, filepath.Join(dir, "bad.yaml")+`:7:12: chart "pie" must be one of bar, line, stat, table`,
		filepath.Join(dir, "access.yaml")+`:1:1: slug "access" is taken by a built-in dashboard`)
	if reg.Get("bad") != nil {
		t.Error("a broken file was registered")
	}
	if d := reg.Get("access"); d == nil || d.Title != "Access" {
		t.Error("a file took a built-in dashboard's slug")
	}
	if d := reg.Get("good"); d == nil || d.Title != "Good one" {
		t.Fatal("the good file is not served")
	}
	changed := reg.FilesChanged()

	// A broken edit: the last good version stays, the problem shows.
	writeFile(t, dir, "good.yaml", strings.Replace(good, "title: Good one", "title: [oops", 1))
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if d := reg.Get("good"); d == nil || d.Title != "Good one" {
		t.Error("a broken edit replaced the last good version")
	}
	contains(t, "the problems after a broken edit", fmt.Sprint(srv.Problems()), filepath.Join(dir, "good.yaml")+":1:1: YAML: did not find expected")
	// A schema error in an edit is placed at its line and column.
	writeFile(t, dir, "good.yaml", strings.Replace(good, "chart: stat", "chart: donut", 1))
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if d := reg.Get("good"); d == nil || d.Title != "Good one" {
		t.Error("a broken edit replaced the last good version")
	}
	contains(t, "the problems after a bad chart", fmt.Sprint(srv.Problems()), filepath.Join(dir, "good.yaml")+`:7:12: chart "donut" must be one of`)

	// A broken sources.yaml keeps the sources served until now.
	writeFile(t, dir, SourcesFile, "sources:\n  shop: oracle://nope\n")
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if d := reg.Get("good"); d == nil {
		t.Fatal("a broken sources.yaml took the dashboards down")
	}
	contains(t, "the problems after a broken sources.yaml", fmt.Sprint(srv.Problems()),
		filepath.Join(dir, SourcesFile)+`:2:9: source "shop": the DSN must start with postgres://, mysql:// or sqlite:`)
	f := &fixture{reg: reg, store: newStore(t)}
	contains(t, "a panel after a broken sources.yaml", f.panel(t, "good", "n", dashboards.Viewer{}, nil), ">4<")
	writeFile(t, dir, SourcesFile, "sources:\n  shop: "+b.dsn+"\n")

	// Fixed: the new version is served and the problem is gone.
	writeFile(t, dir, "good.yaml", strings.Replace(good, "title: Good one", "title: Better one", 1))
	os.Remove(filepath.Join(dir, "bad.yaml"))
	os.Remove(filepath.Join(dir, "access.yaml"))
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if d := reg.Get("good"); d == nil || d.Title != "Better one" {
		t.Error("the fixed file is not served")
	}
	if p := srv.Problems(); len(p) != 0 {
		t.Errorf("problems remain after the fix: %v", p)
	}
	select {
	case <-changed:
	default:
		t.Error("a reload did not signal FilesChanged")
	}
}

// TestWatchReloads: an edited file is served without a call to Reload.
func TestWatchReloads(t *testing.T) {
	b := sqliteBackend(t)
	dir := t.TempDir()
	writeFile(t, dir, SourcesFile, "sources:\n  shop: "+b.dsn+"\n")
	file := "slug: w\ntitle: Before\nsource: shop\npanels:\n  - {id: n, title: N, chart: stat, sql: SELECT 1}\n"
	writeFile(t, dir, "w.yaml", file)
	reg := dashboards.NewRegistry()
	srv, err := Open(context.Background(), Config{Dir: dir, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := srv.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	changed := reg.FilesChanged()
	writeFile(t, dir, "w.yaml", strings.Replace(file, "Before", "After", 1))
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("the edit was not reloaded")
	}
	if d := reg.Get("w"); d == nil || d.Title != "After" {
		t.Errorf("after the edit the dashboard is %+v", d)
	}
}

// TestViewerGroupsFollowMemberships: a viewer's groups are remembered
// between panels, but a membership added (by any process) or expiring
// shows in the very next panel.
func TestViewerGroupsFollowMemberships(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, sqliteBackend(t))
	lacks(t, "north's rows", f.panel(t, "orders", "rows", f.north, nil), "south")
	south, err := f.store.GroupByName(ctx, "south")
	if err != nil {
		t.Fatal(err)
	}
	expires := testNow.Add(time.Hour).UnixMilli()
	if err := f.store.AddMember(ctx, db.Actor{Email: "test"}, south.ID, f.north.UserID, expires); err != nil {
		t.Fatal(err)
	}
	contains(t, "north's rows once in south", f.panel(t, "orders", "rows", f.north, nil), "north", "south")
	// Past the expiry (and the panel's cache), south's rows are gone.
	later := testNow.Add(2 * time.Hour)
	got := f.panelAt(t, later, "orders", "rows", f.north, nil)
	contains(t, "north's rows after the expiry", got, "north")
	lacks(t, "north's rows after the expiry", got, "south")
}

// TestSlugTakenByAnApp: a file may not take an app's slug either; the
// app keeps it and the file's problem says why.
func TestSlugTakenByAnApp(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	if _, err := store.CreateApp(ctx, db.Actor{Email: "test"}, db.App{Slug: "grafana", Upstream: "http://127.0.0.1:3000", Title: "Grafana"}); err != nil {
		t.Fatal(err)
	}
	reg := dashboards.NewRegistry()
	reg.FollowApps(store)
	dir := t.TempDir()
	writeFile(t, dir, SourcesFile, "sources:\n  shop: sqlite:shop.db\n")
	writeFile(t, dir, "grafana.yaml", "slug: grafana\ntitle: Mine\nsource: shop\npanels:\n  - {id: n, title: N, chart: stat, sql: SELECT 1}\n")
	srv, err := Open(ctx, Config{Dir: dir, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	contains(t, "the problems", fmt.Sprint(srv.Problems()), filepath.Join(dir, "grafana.yaml")+`:1:1: slug "grafana" is taken by an app: choose another`)
	if d := reg.Get("grafana"); d == nil || d.App == nil {
		t.Errorf("the app lost its slug to a file: %+v", d)
	}
}
