package dashboards

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

func demoRegistry(t *testing.T) *Registry {
	t.Helper()
	r := NewRegistry()
	RegisterDemo(r)
	return r
}

func renderPanel(t *testing.T, p *Panel) string {
	t.Helper()
	c, err := p.Data(context.Background(), Query{Viewer: Viewer{IsActive: true, IsAdmin: true}, Now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatalf("panel %s: %v", p.ID, err)
	}
	var b bytes.Buffer
	if err := c.Render(context.Background(), &b); err != nil {
		t.Fatalf("panel %s: render: %v", p.ID, err)
	}
	return b.String()
}

func TestDemoRegistersThreeDashboardsInOrder(t *testing.T) {
	r := demoRegistry(t)
	var slugs []string
	for _, d := range r.All() {
		slugs = append(slugs, d.Slug)
		for _, p := range d.Panels {
			if p.Refresh < 30*time.Second || p.Refresh > time.Minute {
				t.Errorf("%s/%s refreshes every %s, want 30s-60s", d.Slug, p.ID, p.Refresh)
			}
		}
	}
	if want := []string{"sales", "support", "finance"}; !reflect.DeepEqual(slugs, want) {
		t.Fatalf("slugs = %v, want %v", slugs, want)
	}
	for _, d := range r.All() {
		for _, p := range d.Panels {
			want := ""
			if d.Slug == "sales" && p.ID == "rep-performance" {
				want = "sales-leads"
			}
			if p.RequireGroup != want {
				t.Errorf("%s/%s requires group %q, want %q", d.Slug, p.ID, p.RequireGroup, want)
			}
		}
	}
}

// TestDemoPanelsRender renders every demo panel and checks it shows what a
// person expects: a chart, a table, or headline numbers.
func TestDemoPanelsRender(t *testing.T) {
	want := map[string][]string{
		"sales/revenue-by-region":   {"<svg", "Closed revenue", "West", "Central", "$"},
		"sales/monthly-revenue":     {"<svg", "Revenue", "Target", "Jul", "Jun"},
		"sales/team-performance":    {"<table", "stat-tile", "Quota attainment", "North", "Win rate"},
		"sales/open-pipeline":       {"<table", "Deal", "Account", "Stage", "Amount", "Close date", "Open pipeline"},
		"sales/rep-performance":     {"<table", "Maya Lopez", "Attainment"},
		"support/tickets-by-status": {"<svg", "New", "Open", "Pending", "On hold", "Escalated"},
		"support/first-response":    {"<svg", "Median first response", "h</text>"},
		"support/backlog":           {"<table", "Open tickets", "Over SLA", "Oldest", "#41000"},
		"finance/spend-by-category": {"<svg", "Payroll", "Cloud &amp; hosting", "$"},
		"finance/burn-and-runway":   {"stat-tile", "Net burn", "Cash", "Runway", "months", "<table"},
		"finance/revenue-and-spend": {"<svg", "Revenue", "Spend"},
	}
	seen := 0
	for _, d := range demoRegistry(t).All() {
		for _, p := range d.Panels {
			key := d.Slug + "/" + p.ID
			words, ok := want[key]
			if !ok {
				t.Errorf("panel %s has no expectations in this test", key)
				continue
			}
			seen++
			html := renderPanel(t, p)
			for _, w := range words {
				if !strings.Contains(html, w) {
					t.Errorf("panel %s does not contain %q", key, w)
				}
			}
			for _, bad := range []string{"NaN", "Inf", "<html", "—"} {
				if strings.Contains(html, bad) {
					t.Errorf("panel %s contains %q", key, bad)
				}
			}
		}
	}
	if seen != len(want) {
		t.Errorf("rendered %d panels, want %d", seen, len(want))
	}
}

func TestDemoPanelsAreDeterministic(t *testing.T) {
	// The same seed gives the same world, draw for draw...
	a := generateDemo(rand.New(rand.NewPCG(demoSeedHi, demoSeedLo)))
	b := generateDemo(rand.New(rand.NewPCG(demoSeedHi, demoSeedLo)))
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two datasets from the same seed differ")
	}
	if reflect.DeepEqual(a, generateDemo(rand.New(rand.NewPCG(1, 2)))) {
		t.Fatal("a different seed gave the same dataset: the seed is not used")
	}
	// ...and a panel renders the same HTML every time, whatever the clock says.
	for _, d := range demoRegistry(t).All() {
		for _, p := range d.Panels {
			first := renderPanel(t, p)
			c, err := p.Data(context.Background(), Query{Now: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)})
			if err != nil {
				t.Fatal(err)
			}
			var later bytes.Buffer
			if err := c.Render(context.Background(), &later); err != nil {
				t.Fatal(err)
			}
			if first != later.String() {
				t.Errorf("%s/%s renders differently the second time", d.Slug, p.ID)
			}
		}
	}
}

// TestDemoDataIsPlausible checks the dataset hangs together: totals add up,
// dates fall where they should and the numbers are of a believable size.
func TestDemoDataIsPlausible(t *testing.T) {
	d := demoDataset()
	if len(d.Months) != 12 || d.Months[11].Month() != DemoAsOf.Month() || d.Months[0].Year() != DemoAsOf.Year()-1 {
		t.Fatalf("months = %v, want the twelve months to %s", d.Months, DemoAsOf.Format("Jan 2006"))
	}
	var regions, reps, target, quota float64
	for _, tm := range d.teams() {
		regions += tm.Revenue
		if tm.Reps == 0 {
			t.Errorf("region %s has no reps", tm.Region)
		}
	}
	for _, r := range d.Reps {
		reps += r.Revenue()
		quota += r.Quota
		if att := r.Revenue() / r.Quota; att < 0.5 || att > 1.6 {
			t.Errorf("%s attains %.0f%% of quota, not believable", r.Name, att*100)
		}
		if wr := demoWinRate(r.Won, r.Lost); wr < 0.1 || wr > 0.5 {
			t.Errorf("%s wins %.0f%% of deals, not believable", r.Name, wr*100)
		}
	}
	target = demoSum(d.Target)
	if math.Abs(regions-reps) > 1 || math.Abs(reps-demoSum(d.monthlyRevenue())) > 1 {
		t.Errorf("revenue by region %.0f, by rep %.0f and by month %.0f differ", regions, reps, demoSum(d.monthlyRevenue()))
	}
	if math.Abs(target-quota) > 12*1000 {
		t.Errorf("monthly targets add up to %.0f, quotas to %.0f", target, quota)
	}
	if reps < 5e6 || reps > 100e6 {
		t.Errorf("yearly revenue %.0f is out of range", reps)
	}
	// Seasonality: December beats the August lull.
	rev := d.monthlyRevenue()
	for i, m := range d.Months {
		if m.Month() == time.August && rev[i] >= rev[(i+4)%12] {
			t.Errorf("August revenue %.0f is not below December's %.0f", rev[i], rev[(i+4)%12])
		}
	}
	for i, deal := range d.Deals {
		if !deal.Close.After(DemoAsOf) {
			t.Errorf("open deal %+v closes before %s", deal, DemoAsOf)
		}
		if i > 0 && deal.Amount > d.Deals[i-1].Amount {
			t.Errorf("deals are not sorted largest first at %d", i)
		}
	}
	for i, tk := range d.Tickets {
		if tk.Opened.After(DemoAsOf) {
			t.Errorf("ticket %d opened after %s", tk.ID, DemoAsOf)
		}
		if i > 0 && (tk.ID <= d.Tickets[i-1].ID || tk.Opened.Before(d.Tickets[i-1].Opened)) {
			t.Errorf("tickets are not numbered in the order they were opened at %d", i)
		}
	}
	for i, h := range d.FirstResponse {
		if h <= 0 || h > 12 {
			t.Errorf("week %d: median first response %.2fh", i, h)
		}
	}
	for i, c := range d.Cash {
		if c <= 0 {
			t.Errorf("month %d: cash %.0f", i, c)
		}
	}
}

// TestDemoRunwayTone checks the runway tile warns exactly when the runway
// is under twelve months.
func TestDemoRunwayTone(t *testing.T) {
	d := demoDataset()
	runway := d.Cash[len(d.Cash)-1] / d.burn()
	html := renderPanel(t, demoRegistry(t).Get("finance").Panel("burn-and-runway"))
	if warned := strings.Contains(html, "tone-warn"); warned != (runway < 12) {
		t.Errorf("runway %.1f months: warned = %v", runway, warned)
	}
}
