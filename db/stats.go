package db

import (
	"context"
	"strings"
	"time"
)

// DayCount is a count for one UTC day.
type DayCount struct {
	Day   time.Time
	Count int
}

// DailyCounts counts audit events with action per UTC day over the last
// days days (today included), returning one entry per day, zeros included.
func (s *Store) DailyCounts(ctx context.Context, action string, days int) ([]DayCount, error) {
	const dayMS = 24 * 60 * 60 * 1000
	today := s.Now().UTC().Truncate(24 * time.Hour)
	first := today.AddDate(0, 0, -(days - 1))
	var rows []struct {
		Bucket int64 `bun:"bucket"`
		N      int   `bun:"n"`
	}
	err := s.DB.NewSelect().TableExpr("audit_events").
		ColumnExpr("at / ? AS bucket, COUNT(*) AS n", dayMS).
		Where("action = ? AND at >= ?", action, first.UnixMilli()).
		GroupExpr("at / ?", dayMS).Scan(ctx, &rows)
	if err != nil {
		return nil, storageErr(err)
	}
	byDay := make(map[int64]int, len(rows))
	for _, r := range rows {
		byDay[r.Bucket] = r.N
	}
	out := make([]DayCount, days)
	for i := range out {
		d := first.AddDate(0, 0, i)
		out[i] = DayCount{Day: d, Count: byDay[d.UnixMilli()/dayMS]}
	}
	return out, nil
}

// NameCount is a count for a name.
type NameCount struct {
	Name  string `bun:"name"`
	Count int    `bun:"n"`
}

// TopDenied returns the dashboards with the most denials since t (panel
// denials count towards their dashboard), most denied first.
func (s *Store) TopDenied(ctx context.Context, since time.Time, limit int) ([]NameCount, error) {
	var rows []NameCount
	err := s.DB.NewSelect().TableExpr("audit_events").ColumnExpr("target AS name, COUNT(*) AS n").
		Where("action = ? AND at >= ?", ActionAccessDenied, since.UnixMilli()).
		GroupExpr("target").Scan(ctx, &rows)
	if err != nil {
		return nil, storageErr(err)
	}
	totals := map[string]int{}
	var order []string
	for _, r := range rows {
		slug, _, _ := strings.Cut(r.Name, "/")
		if _, seen := totals[slug]; !seen {
			order = append(order, slug)
		}
		totals[slug] += r.Count
	}
	out := make([]NameCount, 0, len(order))
	for _, slug := range order {
		out = append(out, NameCount{Name: slug, Count: totals[slug]})
	}
	sortByCount(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// LargestGroups returns the groups with the most unexpired members.
func (s *Store) LargestGroups(ctx context.Context, limit int) ([]NameCount, error) {
	var rows []NameCount
	err := s.DB.NewSelect().TableExpr("groups AS g").
		ColumnExpr("g.name AS name").
		ColumnExpr("(SELECT COUNT(*) FROM memberships m WHERE m.group_id = g.id AND (m.expires_at IS NULL OR m.expires_at > ?)) AS n", s.nowMS()).
		OrderExpr("n DESC, g.name_key").Limit(int64(limit)).Scan(ctx, &rows)
	return rows, storageErr(err)
}

// Totals counts users, active users, admins and groups.
type Totals struct {
	Users, ActiveUsers, Admins, Groups int
}

// CountTotals returns the instance's headline counts.
func (s *Store) CountTotals(ctx context.Context) (Totals, error) {
	var t Totals
	err := s.DB.NewSelect().
		ColumnExpr("(SELECT COUNT(*) FROM users) AS users").
		ColumnExpr("(SELECT COUNT(*) FROM users WHERE is_active) AS active_users").
		ColumnExpr("(SELECT COUNT(*) FROM users WHERE is_active AND is_admin) AS admins").
		ColumnExpr("(SELECT COUNT(*) FROM groups) AS groups").
		Scan(ctx, &t.Users, &t.ActiveUsers, &t.Admins, &t.Groups)
	return t, storageErr(err)
}

func sortByCount(xs []NameCount) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && (xs[j].Count > xs[j-1].Count || (xs[j].Count == xs[j-1].Count && xs[j].Name < xs[j-1].Name)); j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}
