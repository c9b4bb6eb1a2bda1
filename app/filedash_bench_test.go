package app

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/a-h/templ"

	"gatehouse/app/dashboards"
	"gatehouse/components/charts"
	"gatehouse/db"
)

// BenchmarkFilePanelCached compares a cached file panel with a built-in Go
// panel that renders the same bytes, through the whole server (session,
// decision, render), in one run:
//
//	go test ./app -run '^$' -bench FilePanel -benchmem
func BenchmarkFilePanelCached(b *testing.B) {
	dir := b.TempDir()
	rw, err := sql.Open("sqlite", filepath.Join(dir, "shop.db"))
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{"CREATE TABLE orders (region TEXT, amount INTEGER)",
		"INSERT INTO orders VALUES ('team', 10), ('team', 25), ('other', 5)"} {
		if _, err := rw.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	rw.Close()
	writeTestFile(b, filepath.Join(dir, "sources.yaml"), "sources:\n  shop: sqlite:shop.db\n")
	writeTestFile(b, filepath.Join(dir, "filebench.yaml"), `slug: filebench
title: File bench
source: shop
panels:
  - id: total
    title: Total
    chart: stat
    refresh: 1h
    sql: SELECT SUM(amount) AS total FROM orders
  - id: mine
    title: Mine
    chart: stat
    refresh: 1h
    sql: SELECT SUM(amount) AS total FROM orders WHERE region IN (:viewer_groups)
`)
	// The Go panel a developer would write for the same numbers.
	goPanel := func(context.Context, dashboards.Query) (templ.Component, error) {
		return charts.Stats(charts.StatTile("total", charts.FormatNumber(40), "", "")), nil
	}
	f := newBenchFixture(b, func(c *Config, r *dashboards.Registry) {
		c.Dashboards = dir
		r.MustRegister(&dashboards.Dashboard{Slug: "gobench", Title: "Go bench", Panels: []*dashboards.Panel{
			{ID: "total", Title: "Total", Refresh: time.Hour, Data: goPanel}}})
	})
	if err := f.ta.openFiles(context.Background()); err != nil {
		b.Fatal(err)
	}
	for _, slug := range []string{"filebench", "gobench"} {
		team, err := f.ta.store.GroupByName(context.Background(), "team")
		if err != nil {
			b.Fatal(err)
		}
		if err := f.ta.store.AddGrant(context.Background(), db.Actor{Email: "bench"}, slug, team.ID); err != nil {
			b.Fatal(err)
		}
	}
	body := func(path string) string {
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, f.get(path, f.member))
		return w.Body.String()
	}
	if a, g := body("/dashboards/filebench/panels/total"), body("/dashboards/gobench/panels/total"); a != g {
		b.Fatalf("the file panel and the Go panel differ:\n%s\n%s", a, g)
	}
	b.Run("go-panel", func(b *testing.B) {
		f.run(b, "/dashboards/gobench/panels/total", true, f.member, http.StatusOK, ">40<")
	})
	b.Run("file-panel", func(b *testing.B) {
		f.run(b, "/dashboards/filebench/panels/total", true, f.member, http.StatusOK, ">40<")
	})
	b.Run("file-panel-viewer-groups", func(b *testing.B) {
		f.run(b, "/dashboards/filebench/panels/mine", true, f.member, http.StatusOK, ">35<")
	})
	if n := f.ta.files.Queries.Load(); n != 2 {
		b.Errorf("the cached panels ran %d queries, want 2 (one each)", n)
	}
}
