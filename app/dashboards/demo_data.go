package dashboards

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// DemoAsOf is the last moment of the demo world. The demo dataset is a
// year of made-up business ending here, generated from a fixed seed, so
// every demo panel shows the same numbers on every run, on every machine
// and on every day: the demo never depends on the real clock (q.Now).
var DemoAsOf = time.Date(2026, time.June, 30, 17, 0, 0, 0, time.UTC)

// The PCG seed of the demo dataset. Changing it changes every number.
const demoSeedHi, demoSeedLo = 0x6761746568, 0x20260630

// demoMonths is how many months of history the dataset holds.
const demoMonths = 12

// demoData is the whole demo world. It is built once and only read after.
type demoData struct {
	// Months are the first days of the twelve months up to DemoAsOf, oldest first.
	Months []time.Time

	// Sales.
	Reps []demoRep
	// Target is the company's monthly revenue plan; it adds up to the reps' quotas.
	Target []float64
	// Deals is the open pipeline, largest first.
	Deals []demoDeal

	// Support.
	// Weeks are the Mondays of the twelve weeks up to DemoAsOf, oldest first.
	Weeks []time.Time
	// FirstResponse is the median first response time of each week, in hours.
	FirstResponse []float64
	// Tickets are the unsolved tickets at DemoAsOf, oldest first.
	Tickets []demoTicket
	// TicketsToday counts tickets opened in the last 24 hours (solved or not).
	TicketsToday int

	// Finance.
	Spend []demoSpend
	// Cash is the bank balance at the end of each month.
	Cash []float64
}

// demoRegion is a sales region: how many reps it has and how rich its
// territory is compared to an average one.
type demoRegion struct {
	Name      string
	Territory float64
	Reps      []string
}

// demoRegions are the sales regions, in the order the demo lists them.
var demoRegions = []demoRegion{
	{"West", 1.14, []string{"Maya Lopez", "Jonah Reyes", "Priya Natarajan", "Tom Becker"}},
	{"East", 1.06, []string{"Grace Whitfield", "Daniel Osei", "Hannah Kowalski", "Marcus Bell"}},
	{"North", 0.88, []string{"Ingrid Larsen", "Felix Novak"}},
	{"South", 0.94, []string{"Lucia Fernandes", "Andre Williams", "Chloe Martin"}},
	{"Central", 1.0, []string{"Omar Haddad", "Emily Stone", "Ravi Shah"}},
}

// demoRep is one sales rep's year.
type demoRep struct {
	Name, Region string
	// Monthly is the revenue closed in each of the twelve months.
	Monthly []float64
	// Quota is the annual quota.
	Quota     float64
	Won, Lost int
}

// Revenue is the rep's revenue over the year.
func (r demoRep) Revenue() float64 { return demoSum(r.Monthly) }

// demoDeal is an open opportunity.
type demoDeal struct {
	Name, Account, Stage, Owner string
	Amount                      float64
	Close                       time.Time
}

// demoTicket is an unsolved support ticket.
type demoTicket struct {
	ID                                  int
	Subject, Customer, Priority, Status string
	Opened                              time.Time
}

// Age is how long the ticket has been open at DemoAsOf.
func (t demoTicket) Age() time.Duration { return DemoAsOf.Sub(t.Opened) }

// OverSLA reports whether the ticket is older than its priority's resolution target.
func (t demoTicket) OverSLA() bool { return t.Age() > demoSLA[t.Priority] }

// demoSpend is one spending category's year.
type demoSpend struct {
	Category string
	Monthly  []float64
}

// Ticket statuses and priorities, in display order.
var (
	demoStatuses   = []string{"New", "Open", "Pending", "On hold", "Escalated"}
	demoPriorities = []string{"Urgent", "High", "Normal", "Low"}
	// demoSLA is the resolution target of each priority.
	demoSLA = map[string]time.Duration{
		"Urgent": 24 * time.Hour,
		"High":   3 * 24 * time.Hour,
		"Normal": 7 * 24 * time.Hour,
		"Low":    14 * 24 * time.Hour,
	}
)

// salesSeason is how a month's revenue compares to an average month (index
// 0 is January): B2B buying peaks at quarter ends and in December, and
// slows in the summer and after the holidays.
var salesSeason = [12]float64{0.84, 0.93, 1.14, 0.95, 1.0, 1.2, 0.82, 0.86, 1.12, 0.98, 1.03, 1.28}

var demoAccounts = []string{
	"Bluefin Logistics", "Cedar & Pike", "Halcyon Health", "Northwind Foods", "Orbital Labs",
	"Kestrel Insurance", "Marlow Retail", "Quarry Analytics", "Redwood Credit Union", "Saffron Hotels",
	"Tidewater Energy", "Umber Studios", "Vantage Freight", "Willow Schools", "Zephyr Airlines",
	"Alder Pharma", "Brightline Media", "Copperfield Bank", "Driftwood Outdoor", "Evergreen Clinics",
	"Foxglove Software", "Granite Construction Co", "Harbor City Council", "Ironbridge Manufacturing",
	"Juniper Telecom", "Lakeside University", "Meridian Legal", "Nimbus Cloud", "Oakridge Realty",
}

var demoDealKinds = []string{
	"New business", "Platform renewal", "Seat expansion", "Analytics add-on", "Multi-year renewal",
	"Pilot to production", "Premium support upgrade", "Regional rollout", "Data residency add-on",
}

var demoSubjects = []string{
	"Cannot export reports to CSV", "SSO login loops back to the sign-in page", "Invoice shows the wrong VAT rate",
	"Webhook deliveries delayed", "Request to add 25 seats", "API returns 429 during nightly sync",
	"Password reset email never arrives", "Dashboard takes 30s to load", "Data import stuck at 99%",
	"Change billing address", "Mobile app crashes on launch", "Shared folder says permission denied",
	"Audit log export is empty", "Timezone wrong on scheduled reports", "Duplicate contacts after import",
	"How do I rotate API keys?", "Charged twice this month", "Cannot remove a former employee",
}

// demoStages are the pipeline stages, earliest first, with how often an
// open deal sits in each and how far out such deals close.
var demoStages = []struct {
	Name             string
	Weight           float64
	MinDays, MaxDays int
}{
	{"Discovery", 0.30, 45, 150},
	{"Qualified", 0.25, 30, 120},
	{"Proposal", 0.20, 20, 90},
	{"Negotiation", 0.15, 7, 60},
	{"Commit", 0.10, 2, 30},
}

// demoDataset returns the demo world, generated on first use.
var demoDataset = sync.OnceValue(func() *demoData {
	return generateDemo(rand.New(rand.NewPCG(demoSeedHi, demoSeedLo)))
})

// generateDemo builds the demo world from r. Every draw happens in a fixed
// order (slices, never maps), so the same seed gives the same world.
func generateDemo(r *rand.Rand) *demoData {
	d := &demoData{}
	first := time.Date(DemoAsOf.Year(), DemoAsOf.Month()-demoMonths+1, 1, 0, 0, 0, 0, time.UTC)
	for i := range demoMonths {
		d.Months = append(d.Months, first.AddDate(0, i, 0))
	}
	genSales(r, d)
	genSupport(r, d)
	genFinance(r, d)
	return d
}

// genSales makes each rep's monthly revenue (territory × skill × season ×
// 1.5% monthly growth × deal lumpiness), quotas set from the territory alone
// (so attainment spreads with skill and luck), the plan the quotas add up
// to, and the open pipeline.
func genSales(r *rand.Rand, d *demoData) {
	const baseMonthly = 86_000.0           // an average rep's month in an average territory
	weights := make([]float64, demoMonths) // what a month brings
	plan := make([]float64, demoMonths)    // what the plan expects: growth, and only half the seasonality
	for i, m := range d.Months {
		growth := math.Pow(1.015, float64(i))
		weights[i] = salesSeason[m.Month()-1] * growth
		plan[i] = (1 + salesSeason[m.Month()-1]) / 2 * growth
	}
	for _, reg := range demoRegions {
		for _, name := range reg.Reps {
			skill := demoClamp(1+0.14*r.NormFloat64(), 0.72, 1.32)
			rep := demoRep{Name: name, Region: reg.Name}
			for i := range d.Months {
				lumpy := math.Exp(0.22*r.NormFloat64() - 0.22*0.22/2)
				rep.Monthly = append(rep.Monthly, demoRound(baseMonthly*reg.Territory*skill*weights[i]*lumpy, 100))
			}
			rep.Quota = demoRound(baseMonthly*reg.Territory*demoSum(weights)*1.05, 25_000)
			avgDeal := 36_000 * math.Exp(0.25*r.NormFloat64())
			winRate := demoClamp(0.27+0.12*(skill-1)+0.03*r.NormFloat64(), 0.12, 0.45)
			rep.Won = max(1, int(math.Round(rep.Revenue()/avgDeal)))
			rep.Lost = int(math.Round(float64(rep.Won) * (1 - winRate) / winRate))
			d.Reps = append(d.Reps, rep)
		}
	}
	var quota float64
	for _, rep := range d.Reps {
		quota += rep.Quota
	}
	for _, w := range plan {
		d.Target = append(d.Target, demoRound(quota*w/demoSum(plan), 1000))
	}

	for range 86 {
		stage := demoStages[demoPick(r, len(demoStages), func(i int) float64 { return demoStages[i].Weight })]
		rep := d.Reps[r.IntN(len(d.Reps))]
		days := stage.MinDays + r.IntN(stage.MaxDays-stage.MinDays+1)
		d.Deals = append(d.Deals, demoDeal{
			Name:    demoDealKinds[r.IntN(len(demoDealKinds))],
			Account: demoAccounts[r.IntN(len(demoAccounts))],
			Stage:   stage.Name,
			Owner:   rep.Name,
			Amount:  demoRound(demoClamp(62_000*math.Exp(0.75*r.NormFloat64()), 8_000, 720_000), 500),
			Close:   DemoAsOf.AddDate(0, 0, days).Truncate(24 * time.Hour),
		})
	}
	slices.SortStableFunc(d.Deals, func(a, b demoDeal) int { return cmp.Compare(b.Amount, a.Amount) })
}

// genSupport makes twelve weekly medians of first response time (improving
// from about 4h to 2.5h, with a bad week after a release) and the open
// backlog: mostly tickets from the last few days, and a tail of stuck ones.
func genSupport(r *rand.Rand, d *demoData) {
	monday := DemoAsOf.Truncate(24*time.Hour).AddDate(0, 0, -((int(DemoAsOf.Weekday()) + 6) % 7))
	for i := range 12 {
		d.Weeks = append(d.Weeks, monday.AddDate(0, 0, 7*(i-11)))
		hours := 4.1 - 1.6*float64(i)/11 + 0.25*r.NormFloat64()
		if i == 4 {
			hours += 2.3 // the week after a release that went badly
		}
		if i == 5 {
			hours += 0.8
		}
		d.FirstResponse = append(d.FirstResponse, demoClamp(math.Round(hours*20)/20, 0.8, 12))
	}

	const ticketsPerDay = 92.0
	d.TicketsToday = int(math.Round(ticketsPerDay * (0.9 + 0.2*r.Float64())))
	for range 164 {
		ageDays := r.ExpFloat64() * 2.2
		if r.Float64() < 0.07 {
			ageDays = 9 + 36*r.Float64() // stuck: waiting on engineering or lost in a queue
		}
		status := "Open"
		switch {
		case ageDays < 0.4 && r.Float64() < 0.65:
			status = "New"
		case ageDays >= 0.4:
			status = []string{"Open", "Pending", "On hold", "Escalated"}[demoPick(r, 4, func(i int) float64 {
				return []float64{0.46, 0.32, 0.12, 0.10}[i]
			})]
		}
		d.Tickets = append(d.Tickets, demoTicket{
			Subject:  demoSubjects[r.IntN(len(demoSubjects))],
			Customer: demoAccounts[r.IntN(len(demoAccounts))],
			Priority: demoPriorities[demoPick(r, 4, func(i int) float64 { return []float64{0.05, 0.2, 0.55, 0.2}[i] })],
			Status:   status,
			Opened:   DemoAsOf.Add(-time.Duration(ageDays * float64(24*time.Hour))).Truncate(time.Minute),
		})
	}
	slices.SortStableFunc(d.Tickets, func(a, b demoTicket) int { return a.Opened.Compare(b.Opened) })
	// Ticket numbers grow with time; between two unsolved tickets lie the
	// ones opened (and since solved) in between.
	id := 41_000
	for i := range d.Tickets {
		if i > 0 {
			gap := d.Tickets[i].Opened.Sub(d.Tickets[i-1].Opened).Hours() / 24 * ticketsPerDay
			id += max(1, int(math.Round(gap)))
		}
		d.Tickets[i].ID = id
	}
}

// genFinance makes the monthly spend of each category and the cash balance:
// revenue (the reps' closed business) in, spend out.
func genFinance(r *rand.Rand, d *demoData) {
	categories := []struct {
		Name   string
		Base   float64
		Growth float64     // per month
		Noise  float64     // month-to-month wobble
		Season [12]float64 // by calendar month; zero means 1
	}{
		{Name: "Payroll", Base: 1_420_000, Growth: 0.011, Noise: 0.01},
		{Name: "Cloud & hosting", Base: 205_000, Growth: 0.022, Noise: 0.04},
		{Name: "Marketing", Base: 168_000, Growth: 0.01, Noise: 0.12,
			Season: [12]float64{0.8, 1, 1.35, 1, 1, 0.9, 0.7, 0.75, 1.4, 1.1, 1, 0.8}},
		{Name: "Software & tools", Base: 92_000, Growth: 0.012, Noise: 0.03},
		{Name: "Facilities", Base: 84_000, Growth: 0.004, Noise: 0.03},
		{Name: "Legal & audit", Base: 58_000, Growth: 0, Noise: 0.3,
			Season: [12]float64{1, 1, 1.6, 1, 1, 0.8, 0.7, 0.8, 1.9, 1, 1, 1.2}},
		{Name: "Travel", Base: 46_000, Growth: 0.008, Noise: 0.15,
			Season: [12]float64{0.7, 1.1, 1.2, 1.1, 1.1, 1, 0.7, 0.5, 1.2, 1.2, 1.1, 0.6}},
	}
	for _, c := range categories {
		s := demoSpend{Category: c.Name}
		for i, m := range d.Months {
			season := c.Season[m.Month()-1]
			if season == 0 {
				season = 1
			}
			v := c.Base * math.Pow(1+c.Growth, float64(i)) * season * (1 + c.Noise*r.NormFloat64())
			s.Monthly = append(s.Monthly, demoRound(math.Max(v, 0), 100))
		}
		d.Spend = append(d.Spend, s)
	}
	cash := 14_200_000.0 // what was left of the last round a year ago
	revenue, spend := d.monthlyRevenue(), d.monthlySpend()
	for i := range d.Months {
		cash += revenue[i] - spend[i]
		d.Cash = append(d.Cash, demoRound(cash, 1000))
	}
}

// monthlyRevenue is the company's revenue in each month.
func (d *demoData) monthlyRevenue() []float64 {
	out := make([]float64, len(d.Months))
	for _, rep := range d.Reps {
		for i, v := range rep.Monthly {
			out[i] += v
		}
	}
	return out
}

// monthlySpend is the company's spend in each month.
func (d *demoData) monthlySpend() []float64 {
	out := make([]float64, len(d.Months))
	for _, s := range d.Spend {
		for i, v := range s.Monthly {
			out[i] += v
		}
	}
	return out
}

// demoTeam is a region's totals.
type demoTeam struct {
	Region         string
	Reps           int
	Revenue, Quota float64
	Won, Lost      int
}

// teams sums the reps of each region, in demoRegions order.
func (d *demoData) teams() []demoTeam {
	var out []demoTeam
	for _, reg := range demoRegions {
		t := demoTeam{Region: reg.Name}
		for _, rep := range d.Reps {
			if rep.Region == reg.Name {
				t.Reps++
				t.Revenue += rep.Revenue()
				t.Quota += rep.Quota
				t.Won += rep.Won
				t.Lost += rep.Lost
			}
		}
		out = append(out, t)
	}
	return out
}

// burn is the average net burn (spend minus revenue) of the last three months.
func (d *demoData) burn() float64 {
	revenue, spend := d.monthlyRevenue(), d.monthlySpend()
	var net float64
	for i := len(d.Months) - 3; i < len(d.Months); i++ {
		net += spend[i] - revenue[i]
	}
	return net / 3
}

func demoPick(r *rand.Rand, n int, weight func(int) float64) int {
	var total float64
	for i := range n {
		total += weight(i)
	}
	x := r.Float64() * total
	for i := range n {
		if x -= weight(i); x < 0 {
			return i
		}
	}
	return n - 1
}

func demoSum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}

func demoClamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

func demoRound(v, step float64) float64 { return math.Round(v/step) * step }

// demoWinRate is won over decided deals (0 when none were decided).
func demoWinRate(won, lost int) float64 {
	if won+lost == 0 {
		return 0
	}
	return float64(won) / float64(won+lost)
}
