package filedash

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/app/dashboards"
)

// TestSQLiteStaysReadOnly: a SQLite panel whose SQL holds more statements
// cannot end the read-only transaction, turn query_only off, attach another
// file (creating or writing it) or copy the database out, and leaves no
// pooled connection in a state where a later query could.
func TestSQLiteStaysReadOnly(t *testing.T) {
	b := sqliteBackend(t)
	dir := t.TempDir()
	out := t.TempDir()
	attached := filepath.Join(out, "attached.db")
	copied := filepath.Join(out, "copy.db")
	escapes := []string{
		// with a bound value (the driver runs every statement of the text)
		"SELECT :viewer_email AS e; COMMIT; PRAGMA query_only = 0; ATTACH DATABASE '" + attached + "' AS x; CREATE TABLE x.t(a); INSERT INTO x.t VALUES (1)",
		"SELECT :viewer_email AS e; COMMIT; ATTACH DATABASE '" + attached + "' AS y",
		"SELECT :viewer_email AS e; COMMIT; VACUUM INTO '" + copied + "'",
		"SELECT :viewer_email AS e; COMMIT; PRAGMA query_only = 0; DELETE FROM orders",
		// without one
		"SELECT 1 AS one; COMMIT; ATTACH DATABASE '" + attached + "' AS z",
		"SELECT 1 AS one; COMMIT; VACUUM INTO '" + copied + "'",
		"SELECT 1 AS one; PRAGMA query_only = 0",
	}
	var panels strings.Builder
	for i, q := range escapes {
		panels.WriteString("  - id: p" + string(rune('a'+i)) + "\n    title: P\n    chart: table\n    sql: \"" + q + "\"\n")
	}
	writeFile(t, dir, SourcesFile, "sources:\n  shop: "+b.dsn+"\n")
	writeFile(t, dir, "esc.yaml", "slug: esc\ntitle: Esc\nsource: shop\npanels:\n"+panels.String())
	reg := dashboards.NewRegistry()
	store := newStore(t)
	srv, err := Open(context.Background(), Config{Dir: dir, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if p := srv.Problems(); len(p) > 0 {
		t.Fatalf("problems: %v", p)
	}
	f := &fixture{dir: dir, srv: srv, reg: reg, store: store}
	v := viewerIn(t, store, "v@example.com", "north")
	for round := 0; round < 2; round++ { // the second round meets the pool the first left
		for i, q := range escapes {
			got := f.panel(t, "esc", "p"+string(rune('a'+i)), v, nil)
			contains(t, q, got, "This panel&#39;s query failed")
		}
		srv.cache.mu.Lock()
		clear(srv.cache.m)
		srv.cache.mu.Unlock()
	}
	for _, p := range []string{attached, copied} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a dashboard query wrote %s", p)
		}
	}
	if n := b.countOrders(t); n != 4 {
		t.Errorf("the orders table has %d rows, want 4", n)
	}
}

// TestCacheKeyNoCollision: a filter value holding the cache key's
// separators cannot make a viewer's key equal another viewer's, so a
// viewer in no group never reads rows kept for a viewer in groups.
func TestCacheKeyNoCollision(t *testing.T) {
	b := sqliteBackend(t)
	dir := t.TempDir()
	writeFile(t, dir, SourcesFile, "sources:\n  shop: "+b.dsn+"\n")
	writeFile(t, dir, "k.yaml", `slug: k
title: K
source: shop
filters:
  - name: q
    type: text
panels:
  - id: mine
    title: Mine
    chart: table
    sql: SELECT region, amount, :q AS q FROM orders WHERE region IN (:viewer_groups) ORDER BY amount
`)
	reg := dashboards.NewRegistry()
	store := newStore(t)
	srv, err := Open(context.Background(), Config{Dir: dir, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	f := &fixture{dir: dir, srv: srv, reg: reg, store: store}
	victim := viewerIn(t, store, "victim@example.com", "east", "g")
	outsider := viewerIn(t, store, "outsider@example.com")
	contains(t, "the victim's rows", f.panel(t, "k", "mine", victim, url.Values{"q": {"x"}}), "east", "7")
	got := f.panel(t, "k", "mine", outsider, url.Values{"q": {"x\x00g\x00east"}})
	lacks(t, "an outsider's rows, with separators in the filter", got, "east")
	contains(t, "an outsider's rows, with separators in the filter", got, "No rows.")
}

// TestCacheBoundedInBytes: many distinct filter values of a panel that
// renders large do not grow the cache past maxBytes.
func TestCacheBoundedInBytes(t *testing.T) {
	c := newCache()
	big := dashboards.Rendered(strings.Repeat("x", 1<<20))
	now := testNow
	for i := 0; i < 200; i++ {
		got := c.load("panel\x00q="+strings.Repeat("a", i), now, time.Hour, false, func() rendered { return rendered{body: big} })
		if len(got) != len(big) {
			t.Fatalf("load %d returned %d bytes", i, len(got))
		}
	}
	c.mu.RLock()
	total := 0
	for k, e := range c.m {
		total += e.size(k)
	}
	n, counted := len(c.m), c.bytes
	c.mu.RUnlock()
	if total > maxBytes || counted != total {
		t.Errorf("after 200 distinct 1 MiB panels the cache holds %d entries, %d bytes (counted %d), want at most %d", n, total, counted, maxBytes)
	}
	if n == 0 {
		t.Error("the cache kept nothing")
	}
}

// TestBadPostgresDSN: a PostgreSQL DSN the driver cannot use is a problem
// of sources.yaml (for check and the admins), named without its password,
// not a panic at the first panel or in `dashboards check`.
func TestBadPostgresDSN(t *testing.T) {
	for _, dsn := range []string{
		"postgres://u:s3cretpw@127.0.0.1:1/x?sslmode=required",
		"postgres://u:s3cretpw@127.0.0.1:1/x?sslmode=verify-full&sslrootcert=/nonexistent",
	} {
		dir := t.TempDir()
		writeFile(t, dir, SourcesFile, "sources:\n  shop: "+dsn+"\n")
		writeFile(t, dir, "k.yaml", "slug: k\ntitle: K\nsource: shop\npanels:\n  - id: p\n    title: P\n    chart: stat\n    sql: SELECT 1\n")
		rep, err := Check(context.Background(), dir, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for _, p := range rep.Problems {
			msgs = append(msgs, p.String())
		}
		all := strings.Join(msgs, "\n")
		contains(t, "check of "+dsn, all, filepath.Join(dir, SourcesFile)+":2:9: source \"shop\": ")
		lacks(t, "check of "+dsn, all, "s3cretpw")
	}
}

// TestOnlyReadsRun: statements that are not reads never reach the
// database. MariaDB runs DDL, GRANT and SET PASSWORD inside a READ ONLY
// transaction (they commit it first), so the read-only transaction alone
// did not stop a panel dropping its table; an executable comment (/*! … */)
// is not a way around the check.
func TestOnlyReadsRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		mk   func(testing.TB) backend
	}{{"sqlite", sqliteBackend}, {"postgres", postgresBackend}, {"mariadb", mysqlBackend}} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mk(t)
			writes := []string{
				"DROP TABLE orders",
				"TRUNCATE TABLE orders",
				"ALTER TABLE orders RENAME TO o2",
				"/*!DROP TABLE orders*/",
				"/*M!100000 DROP TABLE orders*/",
				"-- a comment\nDROP TABLE orders",
			}
			var panels strings.Builder
			for i, q := range writes {
				fmt.Fprintf(&panels, "  - id: p%d\n    title: P\n    chart: table\n    sql: %q\n", i, q)
			}
			dir := t.TempDir()
			writeFile(t, dir, SourcesFile, "sources:\n  shop: "+b.dsn+"\n")
			writeFile(t, dir, "w.yaml", "slug: w\ntitle: W\nsource: shop\npanels:\n"+panels.String())
			reg := dashboards.NewRegistry()
			store := newStore(t)
			srv, err := Open(context.Background(), Config{Dir: dir, Registry: reg})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Close)
			f := &fixture{dir: dir, srv: srv, reg: reg, store: store}
			v := viewerIn(t, store, "v@example.com", "north")
			v.IsAdmin = true
			for i, q := range writes {
				got := f.panel(t, "w", fmt.Sprintf("p%d", i), v, nil)
				contains(t, q, got, "This panel&#39;s query failed: ")
				if n := b.countOrders(t); n != 4 {
					t.Fatalf("after %q the orders table has %d rows, want 4", q, n)
				}
			}
		})
	}
}
