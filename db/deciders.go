package db

import (
	"context"
	"slices"
)

// DecidingGroups names the groups whose managers can decide requests for
// dashboard: the groups granted it that have an active, confirmed manager,
// ordered by name. Admins can always decide; this says who else can. Under
// a Snapshot the answer may come from memory (see authz_cache.go): a denied
// panel with a pending request asks on every poll.
func (s *Store) DecidingGroups(ctx context.Context, dashboard string) ([]string, error) {
	names, err := remember(ctx, s, decidingTable, dashboard, func() ([]string, error) {
		return s.decidingGroups(ctx, dashboard)
	})
	return slices.Clone(names), err
}

func (s *Store) decidingGroups(ctx context.Context, dashboard string) ([]string, error) {
	var names []string
	err := s.DB.NewSelect().TableExpr("groups AS g").ColumnExpr("g.name").
		Where("EXISTS (SELECT 1 FROM grants AS gr WHERE gr.group_id = g.id AND gr.dashboard = ?)", dashboard).
		Where(`EXISTS (SELECT 1 FROM group_managers AS gm JOIN users AS u ON u.id = gm.user_id
			WHERE gm.group_id = g.id AND u.is_active AND NOT u.email_pending)`).
		OrderExpr("g.name_key").Scan(ctx, &names)
	return names, storageErr(err)
}
