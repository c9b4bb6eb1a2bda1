package dashboards

import (
	"context"
	"strconv"
	"time"

	"github.com/a-h/templ"

	"gatehouse/components/charts"
	"gatehouse/db"
)

// AccessSlug is the built-in dashboard of Gatehouse's own data.
const AccessSlug = "access"

// RegisterBuiltins adds the dashboards every Gatehouse serves: "access",
// Gatehouse's own logins, sessions, denials, groups and requests. Like every
// dashboard it is visible to admins until it is granted to a group.
func RegisterBuiltins(r *Registry) {
	r.MustRegister(&Dashboard{
		Slug:        AccessSlug,
		Title:       "Access",
		Description: "Gatehouse's own activity: logins, sessions, denials, group sizes and pending requests.",
		Panels: []*Panel{
			{ID: "overview", Title: "Overview", Refresh: 30 * time.Second, Wide: true, Data: accessOverview},
			{ID: "logins", Title: "Logins per day (30 days)", Refresh: time.Minute, Wide: true, Data: accessLogins},
			{ID: "denied", Title: "Most denied dashboards (30 days)", Refresh: time.Minute, Data: accessDenied},
			{ID: "groups", Title: "Largest groups", Refresh: time.Minute, Data: accessGroups},
			{ID: "requests", Title: "Pending access requests", Refresh: 30 * time.Second, Wide: true, Data: accessRequests},
		},
	})
}

func accessOverview(ctx context.Context, q Query) (templ.Component, error) {
	sessions, err := q.Store.CountActiveSessions(ctx)
	if err != nil {
		return nil, err
	}
	t, err := q.Store.CountTotals(ctx)
	if err != nil {
		return nil, err
	}
	failed, err := q.Store.DailyCounts(ctx, db.ActionLoginFailed, 1)
	if err != nil {
		return nil, err
	}
	pending, err := q.Store.CountPendingRequests(ctx)
	if err != nil {
		return nil, err
	}
	failTone := ""
	if failed[0].Count > 20 {
		failTone = "warn"
	}
	pendingTone := ""
	if pending > 0 {
		pendingTone = "warn"
	}
	return charts.Stats(
		charts.StatTile("Active sessions", charts.FormatNumber(float64(sessions)), "logged in now", ""),
		charts.StatTile("Active users", charts.FormatNumber(float64(t.ActiveUsers)), strconv.Itoa(t.Users-t.ActiveUsers)+" deactivated", ""),
		charts.StatTile("Groups", charts.FormatNumber(float64(t.Groups)), plural(t.Admins, "admin", "admins"), ""),
		charts.StatTile("Failed logins today", charts.FormatNumber(float64(failed[0].Count)), "UTC day", failTone),
		charts.StatTile("Pending requests", charts.FormatNumber(float64(pending)), "waiting for an admin", pendingTone),
	), nil
}

func accessLogins(ctx context.Context, q Query) (templ.Component, error) {
	ok, err := q.Store.DailyCounts(ctx, db.ActionLogin, 30)
	if err != nil {
		return nil, err
	}
	failed, err := q.Store.DailyCounts(ctx, db.ActionLoginFailed, 30)
	if err != nil {
		return nil, err
	}
	series := []charts.Series{{Name: "Logins"}, {Name: "Failed logins"}}
	for i := range ok {
		label := ok[i].Day.Format("Jan 2")
		series[0].Points = append(series[0].Points, charts.ChartPoint{Label: label, Value: float64(ok[i].Count)})
		series[1].Points = append(series[1].Points, charts.ChartPoint{Label: label, Value: float64(failed[i].Count)})
	}
	return charts.LineChart("access-logins", "Logins and failed logins per day", series, charts.FormatNumber), nil
}

func accessDenied(ctx context.Context, q Query) (templ.Component, error) {
	top, err := q.Store.TopDenied(ctx, q.Now.AddDate(0, 0, -30), 8)
	if err != nil {
		return nil, err
	}
	return charts.BarChart("access-denied", "Denials by dashboard", namePoints(top), charts.FormatNumber), nil
}

func accessGroups(ctx context.Context, q Query) (templ.Component, error) {
	groups, err := q.Store.LargestGroups(ctx, 8)
	if err != nil {
		return nil, err
	}
	return charts.BarChart("access-groups", "Members per group", namePoints(groups), charts.FormatNumber), nil
}

func accessRequests(ctx context.Context, q Query) (templ.Component, error) {
	reqs, total, err := q.Store.ListAccessRequests(ctx, db.RequestPending, 10, 0)
	if err != nil {
		return nil, err
	}
	if total == 0 {
		return charts.Empty("No access requests are waiting."), nil
	}
	rows := make([][]string, len(reqs))
	for i, r := range reqs {
		rows[i] = []string{db.FromMS(r.CreatedAt).Format("2006-01-02 15:04"), r.UserEmail, r.Dashboard, r.Message}
	}
	caption := strconv.Itoa(total) + " waiting (oldest first)"
	return charts.DataTable(caption, []string{"Requested", "User", "Dashboard", "Message"}, rows, nil), nil
}

func namePoints(xs []db.NameCount) []charts.ChartPoint {
	out := make([]charts.ChartPoint, len(xs))
	for i, x := range xs {
		out[i] = charts.ChartPoint{Label: x.Name, Value: float64(x.Count)}
	}
	return out
}

// plural says "1 admin" or "3 admins".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return charts.FormatNumber(float64(n)) + " " + many
}
