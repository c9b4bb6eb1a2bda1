package dashboards

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/a-h/templ"

	"gatehouse/components"
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
	points := make([]components.ChartPoint, len(teams))
	for i, t := range teams {
		points[i] = components.ChartPoint{Label: t.Region, Value: t.Revenue}
	}
	return components.BarChart("sales-revenue-by-region", "Closed revenue, "+demoPeriod(), points, components.FormatCurrency), nil
}

func salesMonthlyRevenue(ctx context.Context, q Query) (templ.Component, error) {
	d := demoDataset()
	revenue := d.monthlyRevenue()
	series := []components.Series{{Name: "Revenue"}, {Name: "Target"}}
	for i, m := range d.Months {
		label := m.Format("Jan")
		series[0].Points = append(series[0].Points, components.ChartPoint{Label: label, Value: revenue[i]})
		series[1].Points = append(series[1].Points, components.ChartPoint{Label: label, Value: d.Target[i]})
	}
	return components.LineChart("sales-monthly-revenue", "Revenue against target by month, "+demoPeriod(), series, components.FormatCurrency), nil
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
		rows[i] = []string{t.Region, strconv.Itoa(t.Reps), components.FormatCurrency(t.Revenue), components.FormatCurrency(t.Quota),
			components.FormatPercent(t.Revenue / t.Quota), components.FormatNumber(float64(t.Won)),
			components.FormatPercent(demoWinRate(t.Won, t.Lost))}
	}
	attainment := all.Revenue / all.Quota
	return components.Stack(
		components.Stats(
			components.StatTile("Revenue", components.FormatCurrency(all.Revenue), "12 months to "+demoAsOfText(), ""),
			components.StatTile("Quota attainment", components.FormatPercent(attainment),
				"of "+components.FormatCurrency(all.Quota)+" annual quota", attainmentTone(attainment)),
			components.StatTile("Win rate", components.FormatPercent(demoWinRate(all.Won, all.Lost)),
				components.FormatNumber(float64(all.Won))+" won of "+components.FormatNumber(float64(all.Won+all.Lost))+" decided", ""),
			components.StatTile("Average deal", components.FormatCurrency(all.Revenue/float64(all.Won)), "closed-won", ""),
		),
		components.DataTable("Teams by quota attainment", []string{"Region", "Reps", "Revenue", "Quota", "Attainment", "Deals won", "Win rate"},
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
		rows[i] = []string{deal.Name, deal.Account, deal.Stage, components.FormatCurrency(deal.Amount), deal.Close.Format("2 Jan 2006")}
	}
	return components.Stack(
		components.Stats(
			components.StatTile("Open pipeline", components.FormatCurrency(total), components.FormatNumber(float64(len(d.Deals)))+" open deals", ""),
			components.StatTile("In negotiation or commit", components.FormatCurrency(late), components.FormatPercent(late/total)+" of pipeline", ""),
			components.StatTile("Closing in 30 days", components.FormatCurrency(soon), "expected close by "+DemoAsOf.AddDate(0, 0, 30).Format("2 Jan"), ""),
		),
		components.DataTable(fmt.Sprintf("The %d largest open deals", len(top)), []string{"Deal", "Account", "Stage", "Amount", "Close date"},
			rows, []bool{false, false, false, true, true}),
	), nil
}

func salesRepPerformance(ctx context.Context, q Query) (templ.Component, error) {
	reps := slices.Clone(demoDataset().Reps)
	slices.SortStableFunc(reps, func(a, b demoRep) int { return cmp.Compare(b.Revenue()/b.Quota, a.Revenue()/a.Quota) })
	rows := make([][]string, len(reps))
	for i, r := range reps {
		rows[i] = []string{r.Name, r.Region, components.FormatCurrency(r.Revenue()), components.FormatCurrency(r.Quota),
			components.FormatPercent(r.Revenue() / r.Quota), strconv.Itoa(r.Won),
			components.FormatPercent(demoWinRate(r.Won, r.Lost)), components.FormatCurrency(r.Revenue() / float64(r.Won))}
	}
	return components.DataTable("Reps by quota attainment, "+demoPeriod()+" (sales leads only)",
		[]string{"Rep", "Region", "Revenue", "Quota", "Attainment", "Deals won", "Win rate", "Average deal"},
		rows, []bool{false, false, true, true, true, true, true, true}), nil
}

func supportTicketsByStatus(ctx context.Context, q Query) (templ.Component, error) {
	counts := map[string]int{}
	for _, t := range demoDataset().Tickets {
		counts[t.Status]++
	}
	points := make([]components.ChartPoint, len(demoStatuses))
	for i, s := range demoStatuses {
		points[i] = components.ChartPoint{Label: s, Value: float64(counts[s])}
	}
	return components.BarChart("support-tickets-by-status", "Unsolved tickets at "+DemoAsOf.Format("15:04, 2 Jan 2006"), points, components.FormatNumber), nil
}

func supportFirstResponse(ctx context.Context, q Query) (templ.Component, error) {
	d := demoDataset()
	s := components.Series{Name: "Median first response"}
	for i, w := range d.Weeks {
		s.Points = append(s.Points, components.ChartPoint{Label: w.Format("Jan 2"), Value: d.FirstResponse[i]})
	}
	return components.LineChart("support-first-response", "Median hours to first reply, by week (weeks start on Monday)",
		[]components.Series{s}, components.FormatDuration), nil
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
		rows[i] = []string{"#" + strconv.Itoa(t.ID), t.Subject, t.Customer, t.Priority, t.Status, components.FormatDuration(t.Age().Hours())}
	}
	return components.Stack(
		components.Stats(
			components.StatTile("Open tickets", components.FormatNumber(float64(len(tickets))),
				fmt.Sprintf("%d new, %d escalated", newCount, escalated), ""),
			components.StatTile("Over SLA", components.FormatNumber(float64(over)),
				components.FormatPercent(float64(over)/float64(len(tickets)))+" of open tickets", overTone),
			components.StatTile("Oldest", components.FormatDuration(oldest.Age().Hours()),
				"#"+strconv.Itoa(oldest.ID)+" · "+oldest.Customer, ""),
			components.StatTile("Opened today", components.FormatNumber(float64(d.TicketsToday)), "in the last 24 hours", ""),
		),
		components.DataTable("The oldest unsolved tickets", []string{"Ticket", "Subject", "Customer", "Priority", "Status", "Age"},
			rows, []bool{false, false, false, false, false, true}),
	), nil
}

func financeSpendByCategory(ctx context.Context, q Query) (templ.Component, error) {
	spend := slices.Clone(demoDataset().Spend)
	slices.SortStableFunc(spend, func(a, b demoSpend) int { return cmp.Compare(demoSum(b.Monthly), demoSum(a.Monthly)) })
	points := make([]components.ChartPoint, len(spend))
	var total float64
	for i, s := range spend {
		points[i] = components.ChartPoint{Label: s.Category, Value: demoSum(s.Monthly)}
		total += points[i].Value
	}
	return components.BarChart("finance-spend-by-category",
		"Spend, "+demoPeriod()+": "+components.FormatCurrency(total)+" in total", points, components.FormatCurrency), nil
}

// financeBurnAndRunway shows net burn (spend minus revenue, averaged over
// the last three months), cash on hand and the months it lasts; runway
// under twelve months is flagged.
func financeBurnAndRunway(ctx context.Context, q Query) (templ.Component, error) {
	d := demoDataset()
	burn := d.burn()
	cash := d.Cash[len(d.Cash)-1]
	runway := components.StatTile("Runway", "Cash-flow positive", "revenue covers spend", "good")
	if burn > 0 {
		months := cash / burn
		tone, note := "", "at the current burn"
		if months < 12 {
			tone, note = "warn", "under 12 months at the current burn: time to plan the next raise"
		}
		runway = components.StatTile("Runway", components.FormatNumber(months)+" months", note, tone)
	}
	revenue, spend := d.monthlyRevenue(), d.monthlySpend()
	var rows [][]string
	var spend3 float64
	for i := len(d.Months) - 3; i < len(d.Months); i++ {
		spend3 += spend[i]
		rows = append(rows, []string{d.Months[i].Format("Jan 2006"), components.FormatCurrency(revenue[i]),
			components.FormatCurrency(spend[i]), components.FormatCurrency(spend[i] - revenue[i])})
	}
	return components.Stack(
		components.Stats(
			components.StatTile("Monthly net burn", components.FormatCurrency(burn), "spend minus revenue, average of the last 3 months", ""),
			components.StatTile("Cash", components.FormatCurrency(cash), "on "+demoAsOfText(), ""),
			runway,
			components.StatTile("Monthly spend", components.FormatCurrency(spend3/3), "average of the last 3 months", ""),
		),
		components.DataTable("The last three months", []string{"Month", "Revenue", "Spend", "Net burn"}, rows, []bool{false, true, true, true}),
	), nil
}

func financeRevenueAndSpend(ctx context.Context, q Query) (templ.Component, error) {
	d := demoDataset()
	revenue, spend := d.monthlyRevenue(), d.monthlySpend()
	series := []components.Series{{Name: "Revenue"}, {Name: "Spend"}}
	for i, m := range d.Months {
		label := m.Format("Jan")
		series[0].Points = append(series[0].Points, components.ChartPoint{Label: label, Value: revenue[i]})
		series[1].Points = append(series[1].Points, components.ChartPoint{Label: label, Value: spend[i]})
	}
	return components.LineChart("finance-revenue-and-spend", "Revenue and spend by month, "+demoPeriod(), series, components.FormatCurrency), nil
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
