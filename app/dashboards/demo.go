package dashboards

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"gatehouse/components/charts"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/a-h/templ"
)

// The demo dashboards' slugs, and the extra group the Rep performance panel
// requires. `serve --demo` seeds groups of the same names (see app.SeedDemo).
const (
	SalesSlug       = "sales"
	SupportSlug     = "support"
	FinanceSlug     = "finance"
	SalesLeadsGroup = "sales-leads"
)

// RegisterDemo adds the three demo dashboards, Sales, Support and Finance,
// in that order. Their panels read a deterministic, generated year of
// business ending at DemoAsOf (see demo_data.go), never the database, so
// they show the same numbers every time; access to them is checked like
// any other dashboard's.
func RegisterDemo(r *Registry) {
	period := demoPeriod()
	demo := []*Dashboard{
		{
			Slug:        SalesSlug,
			Title:       "Sales",
			Description: "Revenue, pipeline and quota attainment by region. Demo data: " + period + ".",
			Panels: []*Panel{
				{ID: "revenue-by-region", Title: "Revenue by region", Refresh: time.Minute, Data: salesRevenueByRegion},
				{ID: "monthly-revenue", Title: "Monthly revenue", Refresh: time.Minute, Data: salesMonthlyRevenue},
				{ID: "team-performance", Title: "Team performance", Refresh: time.Minute, Wide: true, Data: salesTeamPerformance},
				{ID: "open-pipeline", Title: "Open pipeline", Refresh: 30 * time.Second, Wide: true, Data: salesOpenPipeline},
				{ID: "rep-performance", Title: "Rep performance", Refresh: time.Minute, Wide: true,
					RequireGroup: SalesLeadsGroup, Data: salesRepPerformance},
			},
		},
		{
			Slug:        SupportSlug,
			Title:       "Support",
			Description: "The ticket queue, first response times and the backlog. Demo data: " + period + ".",
			Panels: []*Panel{
				{ID: "tickets-by-status", Title: "Tickets by status", Refresh: 30 * time.Second, Data: supportTicketsByStatus},
				{ID: "first-response", Title: "Median first response time", Refresh: time.Minute, Data: supportFirstResponse},
				{ID: "backlog", Title: "Backlog", Refresh: 30 * time.Second, Wide: true, Data: supportBacklog},
			},
		},
		{
			Slug:        FinanceSlug,
			Title:       "Finance",
			Description: "Where the money goes, and how long it lasts. Demo data: " + period + ".",
			Panels: []*Panel{
				{ID: "spend-by-category", Title: "Spend by category", Refresh: time.Minute, Data: financeSpendByCategory},
				{ID: "revenue-and-spend", Title: "Revenue and spend", Refresh: time.Minute, Data: financeRevenueAndSpend},
				{ID: "burn-and-runway", Title: "Burn and runway", Refresh: time.Minute, Wide: true, Data: financeBurnAndRunway},
			},
		},
	}
	// The demo's panels depend only on the fixed dataset, never on the
	// viewer, the clock or the database: each renders once and is served
	// from memory after that (access is still checked on every request).
	for _, d := range demo {
		for _, p := range d.Panels {
			p.Data = renderOnce(p.Data)
		}
	}
	r.MustRegister(demo...)
}

// Rendered is HTML rendered (and escaped) already, as a component that
// writes it. A server may write its bytes as they are, without rendering.
type Rendered []byte

// Render writes the bytes.
func (h Rendered) Render(_ context.Context, w io.Writer) error {
	_, err := w.Write(h)
	return err
}

// renderOnce memoizes a panel whose output never changes: the first
// successful render is kept as bytes (already escaped by templ), a
// Rendered, and written for every later request, without a lock. A failed
// render is retried next time.
func renderOnce(data func(context.Context, Query) (templ.Component, error)) func(context.Context, Query) (templ.Component, error) {
	var mu sync.Mutex // held while rendering, so the panel renders once
	var rendered atomic.Pointer[templ.Component]
	return func(ctx context.Context, q Query) (templ.Component, error) {
		if c := rendered.Load(); c != nil {
			return *c, nil
		}
		mu.Lock()
		defer mu.Unlock()
		if c := rendered.Load(); c != nil {
			return *c, nil
		}
		c, err := data(ctx, q)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := c.Render(ctx, &buf); err != nil {
			return nil, err
		}
		var out templ.Component = Rendered(buf.Bytes()) // boxed once, not per request
		rendered.Store(&out)
		return out, nil
	}
}

// demoPeriod names the demo year, e.g. "Jul 2025 – Jun 2026".
func demoPeriod() string {
	d := demoDataset()
	return d.Months[0].Format("Jan 2006") + " – " + d.Months[len(d.Months)-1].Format("Jan 2006")
}

func demoAsOfText() string { return DemoAsOf.Format("2 Jan 2006") }

func salesRevenueByRegion(ctx context.Context, q Query) (templ.Component, error) {
	teams := demoDataset().teams()
	slices.SortStableFunc(teams, func(a, b demoTeam) int { return cmp.Compare(b.Revenue, a.Revenue) })
	points := make([]charts.ChartPoint, len(teams))
	for i, t := range teams {
		points[i] = charts.ChartPoint{Label: t.Region, Value: t.Revenue}
	}
	return charts.BarChart("sales-revenue-by-region", "Closed revenue, "+demoPeriod(), points, charts.FormatCurrency), nil
}

func salesMonthlyRevenue(ctx context.Context, q Query) (templ.Component, error) {
	d := demoDataset()
	revenue := d.monthlyRevenue()
	series := []charts.Series{{Name: "Revenue"}, {Name: "Target"}}
	for i, m := range d.Months {
		label := m.Format("Jan")
		series[0].Points = append(series[0].Points, charts.ChartPoint{Label: label, Value: revenue[i]})
		series[1].Points = append(series[1].Points, charts.ChartPoint{Label: label, Value: d.Target[i]})
	}
	return charts.LineChart("sales-monthly-revenue", "Revenue against target by month, "+demoPeriod(), series, charts.FormatCurrency), nil
}

func salesTeamPerformance(ctx context.Context, q Query) (templ.Component, error) {
	teams := demoDataset().teams()
	var all demoTeam
	for _, t := range teams {
		all.Revenue += t.Revenue
		all.Quota += t.Quota
		all.Won += t.Won
		all.Lost += t.Lost
	}
	slices.SortStableFunc(teams, func(a, b demoTeam) int { return cmp.Compare(b.Revenue/b.Quota, a.Revenue/a.Quota) })
	rows := make([][]string, len(teams))
	for i, t := range teams {
		rows[i] = []string{t.Region, strconv.Itoa(t.Reps), charts.FormatCurrency(t.Revenue), charts.FormatCurrency(t.Quota),
			charts.FormatPercent(t.Revenue / t.Quota), charts.FormatNumber(float64(t.Won)),
			charts.FormatPercent(demoWinRate(t.Won, t.Lost))}
	}
	attainment := all.Revenue / all.Quota
	return charts.Stack(
		charts.Stats(
			charts.StatTile("Revenue", charts.FormatCurrency(all.Revenue), "12 months to "+demoAsOfText(), ""),
			charts.StatTile("Quota attainment", charts.FormatPercent(attainment),
				"of "+charts.FormatCurrency(all.Quota)+" annual quota", attainmentTone(attainment)),
			charts.StatTile("Win rate", charts.FormatPercent(demoWinRate(all.Won, all.Lost)),
				charts.FormatNumber(float64(all.Won))+" won of "+charts.FormatNumber(float64(all.Won+all.Lost))+" decided", ""),
			charts.StatTile("Average deal", charts.FormatCurrency(all.Revenue/float64(all.Won)), "closed-won", ""),
		),
		charts.DataTable("Teams by quota attainment", []string{"Region", "Reps", "Revenue", "Quota", "Attainment", "Deals won", "Win rate"},
			rows, []bool{false, true, true, true, true, true, true}),
	), nil
}

func salesOpenPipeline(ctx context.Context, q Query) (templ.Component, error) {
	d := demoDataset()
	var total, late, soon float64
	for _, deal := range d.Deals {
		total += deal.Amount
		if deal.Stage == "Negotiation" || deal.Stage == "Commit" {
			late += deal.Amount
		}
		if deal.Close.Sub(DemoAsOf) <= 30*24*time.Hour {
			soon += deal.Amount
		}
	}
	top := d.Deals[:min(10, len(d.Deals))]
	rows := make([][]string, len(top))
	for i, deal := range top {
		rows[i] = []string{deal.Name, deal.Account, deal.Stage, charts.FormatCurrency(deal.Amount), deal.Close.Format("2 Jan 2006")}
	}
	return charts.Stack(
		charts.Stats(
			charts.StatTile("Open pipeline", charts.FormatCurrency(total), charts.FormatNumber(float64(len(d.Deals)))+" open deals", ""),
			charts.StatTile("In negotiation or commit", charts.FormatCurrency(late), charts.FormatPercent(late/total)+" of pipeline", ""),
			charts.StatTile("Closing in 30 days", charts.FormatCurrency(soon), "expected close by "+DemoAsOf.AddDate(0, 0, 30).Format("2 Jan"), ""),
		),
		charts.DataTable(fmt.Sprintf("The %d largest open deals", len(top)), []string{"Deal", "Account", "Stage", "Amount", "Close date"},
			rows, []bool{false, false, false, true, true}),
	), nil
}

func salesRepPerformance(ctx context.Context, q Query) (templ.Component, error) {
	reps := slices.Clone(demoDataset().Reps)
	slices.SortStableFunc(reps, func(a, b demoRep) int { return cmp.Compare(b.Revenue()/b.Quota, a.Revenue()/a.Quota) })
	rows := make([][]string, len(reps))
	for i, r := range reps {
		rows[i] = []string{r.Name, r.Region, charts.FormatCurrency(r.Revenue()), charts.FormatCurrency(r.Quota),
			charts.FormatPercent(r.Revenue() / r.Quota), strconv.Itoa(r.Won),
			charts.FormatPercent(demoWinRate(r.Won, r.Lost)), charts.FormatCurrency(r.Revenue() / float64(r.Won))}
	}
	return charts.DataTable("Reps by quota attainment, "+demoPeriod()+" (sales leads only)",
		[]string{"Rep", "Region", "Revenue", "Quota", "Attainment", "Deals won", "Win rate", "Average deal"},
		rows, []bool{false, false, true, true, true, true, true, true}), nil
}

func supportTicketsByStatus(ctx context.Context, q Query) (templ.Component, error) {
	counts := map[string]int{}
	for _, t := range demoDataset().Tickets {
		counts[t.Status]++
	}
	points := make([]charts.ChartPoint, len(demoStatuses))
	for i, s := range demoStatuses {
		points[i] = charts.ChartPoint{Label: s, Value: float64(counts[s])}
	}
	return charts.BarChart("support-tickets-by-status", "Unsolved tickets at "+DemoAsOf.Format("15:04, 2 Jan 2006"), points, charts.FormatNumber), nil
}

func supportFirstResponse(ctx context.Context, q Query) (templ.Component, error) {
	d := demoDataset()
	s := charts.Series{Name: "Median first response"}
	for i, w := range d.Weeks {
		s.Points = append(s.Points, charts.ChartPoint{Label: w.Format("Jan 2"), Value: d.FirstResponse[i]})
	}
	return charts.LineChart("support-first-response", "Median hours to first reply, by week (weeks start on Monday)",
		[]charts.Series{s}, charts.FormatDuration), nil
}

func supportBacklog(ctx context.Context, q Query) (templ.Component, error) {
	d := demoDataset()
	tickets := d.Tickets // oldest first
	var newCount, escalated, over int
	for _, t := range tickets {
		switch t.Status {
		case "New":
			newCount++
		case "Escalated":
			escalated++
		}
		if t.OverSLA() {
			over++
		}
	}
	overTone := ""
	switch {
	case over*10 > len(tickets):
		overTone = "bad"
	case over > 0:
		overTone = "warn"
	}
	oldest := tickets[0]
	shown := tickets[:min(5, len(tickets))]
	rows := make([][]string, len(shown))
	for i, t := range shown {
		rows[i] = []string{"#" + strconv.Itoa(t.ID), t.Subject, t.Customer, t.Priority, t.Status, charts.FormatDuration(t.Age().Hours())}
	}
	return charts.Stack(
		charts.Stats(
			charts.StatTile("Open tickets", charts.FormatNumber(float64(len(tickets))),
				fmt.Sprintf("%d new, %d escalated", newCount, escalated), ""),
			charts.StatTile("Over SLA", charts.FormatNumber(float64(over)),
				charts.FormatPercent(float64(over)/float64(len(tickets)))+" of open tickets", overTone),
			charts.StatTile("Oldest", charts.FormatDuration(oldest.Age().Hours()),
				"#"+strconv.Itoa(oldest.ID)+" · "+oldest.Customer, ""),
			charts.StatTile("Opened today", charts.FormatNumber(float64(d.TicketsToday)), "in the last 24 hours", ""),
		),
		charts.DataTable("The oldest unsolved tickets", []string{"Ticket", "Subject", "Customer", "Priority", "Status", "Age"},
			rows, []bool{false, false, false, false, false, true}),
	), nil
}

func financeSpendByCategory(ctx context.Context, q Query) (templ.Component, error) {
	spend := slices.Clone(demoDataset().Spend)
	slices.SortStableFunc(spend, func(a, b demoSpend) int { return cmp.Compare(demoSum(b.Monthly), demoSum(a.Monthly)) })
	points := make([]charts.ChartPoint, len(spend))
	var total float64
	for i, s := range spend {
		points[i] = charts.ChartPoint{Label: s.Category, Value: demoSum(s.Monthly)}
		total += points[i].Value
	}
	return charts.BarChart("finance-spend-by-category",
		"Spend, "+demoPeriod()+": "+charts.FormatCurrency(total)+" in total", points, charts.FormatCurrency), nil
}

// financeBurnAndRunway shows net burn (spend minus revenue, averaged over
// the last three months), cash on hand and the months it lasts; runway
// under twelve months is flagged.
func financeBurnAndRunway(ctx context.Context, q Query) (templ.Component, error) {
	d := demoDataset()
	burn := d.burn()
	cash := d.Cash[len(d.Cash)-1]
	runway := charts.StatTile("Runway", "Cash-flow positive", "revenue covers spend", "good")
	if burn > 0 {
		months := cash / burn
		tone, note := "", "at the current burn"
		if months < 12 {
			tone, note = "warn", "under 12 months at the current burn: time to plan the next raise"
		}
		runway = charts.StatTile("Runway", charts.FormatNumber(months)+" months", note, tone)
	}
	revenue, spend := d.monthlyRevenue(), d.monthlySpend()
	var rows [][]string
	var spend3 float64
	for i := len(d.Months) - 3; i < len(d.Months); i++ {
		spend3 += spend[i]
		rows = append(rows, []string{d.Months[i].Format("Jan 2006"), charts.FormatCurrency(revenue[i]),
			charts.FormatCurrency(spend[i]), charts.FormatCurrency(spend[i] - revenue[i])})
	}
	return charts.Stack(
		charts.Stats(
			charts.StatTile("Monthly net burn", charts.FormatCurrency(burn), "spend minus revenue, average of the last 3 months", ""),
			charts.StatTile("Cash", charts.FormatCurrency(cash), "on "+demoAsOfText(), ""),
			runway,
			charts.StatTile("Monthly spend", charts.FormatCurrency(spend3/3), "average of the last 3 months", ""),
		),
		charts.DataTable("The last three months", []string{"Month", "Revenue", "Spend", "Net burn"}, rows, []bool{false, true, true, true}),
	), nil
}

func financeRevenueAndSpend(ctx context.Context, q Query) (templ.Component, error) {
	d := demoDataset()
	revenue, spend := d.monthlyRevenue(), d.monthlySpend()
	series := []charts.Series{{Name: "Revenue"}, {Name: "Spend"}}
	for i, m := range d.Months {
		label := m.Format("Jan")
		series[0].Points = append(series[0].Points, charts.ChartPoint{Label: label, Value: revenue[i]})
		series[1].Points = append(series[1].Points, charts.ChartPoint{Label: label, Value: spend[i]})
	}
	return charts.LineChart("finance-revenue-and-spend", "Revenue and spend by month, "+demoPeriod(), series, charts.FormatCurrency), nil
}

// attainmentTone colors quota attainment: good from 100%, warn under 90%.
func attainmentTone(ratio float64) string {
	switch {
	case ratio >= 1:
		return "good"
	case ratio < 0.9:
		return "warn"
	}
	return ""
}
