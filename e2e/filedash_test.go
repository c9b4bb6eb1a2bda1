package e2e

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	_ "modernc.org/sqlite"
)

// fileDashboard is the file dashboard the browser test serves.
const fileDashboard = `slug: orders
title: Orders
description: What was sold, from a SQLite file.
source: shop
filters:
  - name: region
    label: Region
    type: select
    sql: SELECT DISTINCT region FROM orders ORDER BY region
panels:
  - id: by-region
    title: Orders by region
    chart: bar
    sql: SELECT region AS label, SUM(amount) AS value FROM orders WHERE :region = '' OR region = :region GROUP BY region ORDER BY region
  - id: by-day
    title: Amount by day
    chart: line
    formats: {amount: currency}
    sql: SELECT day, SUM(amount) AS amount FROM orders WHERE :region = '' OR region = :region GROUP BY day ORDER BY day
  - id: total
    title: Total
    chart: stat
    sql: SELECT COUNT(*) AS orders, SUM(amount) AS amount FROM orders WHERE :region = '' OR region = :region
  - id: rows
    title: Every order
    chart: table
    sql: SELECT region, day, amount FROM orders WHERE :region = '' OR region = :region ORDER BY day, region
`

// TestFileDashboardInTheBrowser: a dashboard written as a file renders in
// light, dark and at a phone's width without accessibility violations or
// sideways scrolling; its filter form narrows every panel; and an edit of
// the file shows on the open page without a reload.
func TestFileDashboardInTheBrowser(t *testing.T) {
	b := newBrowser(t)
	dir := t.TempDir()
	rw, err := sql.Open("sqlite", filepath.Join(dir, "shop.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"CREATE TABLE orders (region TEXT, day TEXT, amount INTEGER)",
		`INSERT INTO orders VALUES ('north', '2026-11-01', 120), ('north', '2026-11-02', 80), ('south', '2026-11-01', 45),
		 ('east', '2026-11-02', 60), ('south', '2026-11-03', 30), ('east', '2026-11-03', 95)`} {
		if _, err := rw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	rw.Close()
	write := func(name, content string) {
		t.Helper()
		// Written whole and renamed, as editors save.
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write("sources.yaml", "sources:\n  shop: sqlite:shop.db\n")
	write("orders.yaml", fileDashboard)
	srv := startServer(t, nil, "--demo", "--dashboards", dir)
	tb := b.newTab(t, "files")
	logIn(t, tb, srv.URL, "admin@demo.example", demoPassword)
	tb.open(t, srv.URL+"/dashboards/orders")
	waitDashboard(t, tb)
	if got := tb.text(t, "#panel-total .panel-body"); !strings.Contains(got, "430") {
		t.Errorf("the total panel says %q, want the amount 430", got)
	}
	tb.checkLooks(t, "file dashboard")
	looks[2].apply(t, tb) // 375 px
	var o overflow
	tb.eval(t, overflowJS, &o)
	if o.ScrollWidth > o.InnerWidth {
		t.Errorf("the file dashboard overflows at %dpx: %q", phoneWidth, o.Offenders)
	}
	looks[0].apply(t, tb)

	// The filter narrows every panel, and the address keeps it.
	tb.run(t, "choose south", chromedp.SetValue(`select[name="region"]`, "south", chromedp.ByQuery))
	tb.click(t, button(`//form[@class="filters"]`, "Apply"))
	tb.waitFor(t, "the filtered total", `location.search === "?region=south" && document.querySelector("#panel-total .panel-body").textContent.includes("75")`, actionTimeout)
	if got := tb.text(t, "#panel-rows .panel-body"); strings.Contains(got, "north") {
		t.Errorf("the filtered table still lists north: %q", got)
	}

	// An edit of the file shows on the open page, which is not reloaded.
	tb.eval(t, `window.notReloaded = true`, nil)
	write("orders.yaml", strings.Replace(strings.Replace(fileDashboard, "title: Every order", "title: Every single order", 1), "title: Orders\n", "title: Orders, edited\n", 1)+`  - id: regions
    title: Regions
    chart: stat
    sql: SELECT COUNT(DISTINCT region) AS regions FROM orders
`)
	tb.waitFor(t, "the edit on the open page", `document.querySelector("#panel-title-rows") && document.querySelector("#panel-title-rows").textContent === "Every single order" && !!document.querySelector("#panel-regions") && document.querySelector("h1").textContent === "Orders, edited"`, actionTimeout)
	waitDashboard(t, tb)
	var kept bool
	tb.eval(t, `window.notReloaded === true && location.search === "?region=south"`, &kept)
	if !kept {
		t.Error("the page was reloaded (or lost its filter) to show the edit")
	}
	if got := tb.text(t, ".access-news"); got != "This dashboard has been updated." {
		t.Errorf("the page announced %q", got)
	}
	tb.assertClean(t)
}
