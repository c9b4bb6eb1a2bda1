package db

import (
	"context"
	"fmt"
	"slices"

	"github.com/uptrace/bun"
)

// Audit actions for group managers.
const (
	ActionManagerAdd    = "manager.add"
	ActionManagerRemove = "manager.remove"
)

// GroupManager lets a user run a group without being an admin: open its
// page, add and remove its members, set their expiries, and decide access
// requests for the dashboards granted to it.
type GroupManager struct {
	bun.BaseModel `bun:"table:group_managers"`

	GroupID   int64 `bun:"group_id,pk"`
	UserID    int64 `bun:"user_id,pk"`
	CreatedAt int64 `bun:"created_at,notnull"`
}

// AddManager makes a user a manager of a group; ErrDuplicate when they
// already are, ErrNotFound for an unknown group or user.
func (s *Store) AddManager(ctx context.Context, a Actor, groupID, userID int64) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		g, u, err := groupAndUser(ctx, tx, groupID, userID)
		if err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(&GroupManager{GroupID: groupID, UserID: userID, CreatedAt: s.nowMS()}).Exec(ctx); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionManagerAdd, Target: g.Name + " / " + u.Email,
			Detail: map[string]any{"after": map[string]any{"group": g.Name, "manager": u.Email}}})
	})
}

// RemoveManager ends a user's management of a group; they lose it on their
// next request. ErrNotFound when they were not a manager.
func (s *Store) RemoveManager(ctx context.Context, a Actor, groupID, userID int64) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		g, u, err := groupAndUser(ctx, tx, groupID, userID)
		if err != nil {
			return err
		}
		res, err := tx.NewDelete().Model((*GroupManager)(nil)).Where("group_id = ? AND user_id = ?", groupID, userID).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%s is not a manager of %s: %w", u.Email, g.Name, ErrNotFound)
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionManagerRemove, Target: g.Name + " / " + u.Email,
			Detail: map[string]any{"before": map[string]any{"group": g.Name, "manager": u.Email}}})
	})
}

// ListManagers returns a group's managers, ordered by email.
func (s *Store) ListManagers(ctx context.Context, groupID int64) ([]User, error) {
	var users []User
	err := s.DB.NewSelect().Model(&users).ModelTableExpr("group_managers AS gm").
		Join("JOIN users AS u ON u.id = gm.user_id").ColumnExpr("u.*").
		Where("gm.group_id = ?", groupID).OrderExpr("u.email").Scan(ctx)
	return users, storageErr(err)
}

// ManagedGroups returns the groups userID manages, ordered by name. Under a
// Snapshot the answer may come from memory, loaded at the same
// authorization version, so a manager removed by any process loses the
// group on their next request.
func (s *Store) ManagedGroups(ctx context.Context, userID int64) ([]GroupOption, error) {
	out, err := remember(ctx, s, managedTable, userID, func() ([]GroupOption, error) {
		var out []GroupOption
		err := s.DB.NewSelect().TableExpr("group_managers AS gm").
			Join("JOIN groups AS g ON g.id = gm.group_id").
			ColumnExpr("g.id, g.name").Where("gm.user_id = ?", userID).
			OrderExpr("g.name_key").Scan(ctx, &out)
		return out, storageErr(err)
	})
	return slices.Clone(out), err
}

// RequestDeciders returns who can decide an access request for dashboard:
// every active admin, and every active manager of a group granted the
// dashboard; each once, ordered by email. Mail notifications go to them.
func (s *Store) RequestDeciders(ctx context.Context, dashboard string) ([]User, error) {
	users, err := requestDeciders(ctx, s.DB, dashboard, 0)
	return users, storageErr(err)
}

// requestDeciders is RequestDeciders on idb (a transaction queueing the
// notices of a new request by requester). Unconfirmed sign-ups are left
// out, and so is the requester as a manager: they cannot decide their own
// request.
func requestDeciders(ctx context.Context, idb bun.IDB, dashboard string, requester int64) ([]User, error) {
	var users []User
	err := idb.NewSelect().Model(&users).ModelTableExpr("users AS u").ColumnExpr("u.*").
		Where("u.is_active AND NOT u.email_pending").
		WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where("u.is_admin").WhereOr(`u.id <> ? AND EXISTS (SELECT 1 FROM group_managers AS gm
				JOIN grants AS gr ON gr.group_id = gm.group_id
				WHERE gm.user_id = u.id AND gr.dashboard = ?)`, requester, dashboard)
		}).
		OrderExpr("u.email").Scan(ctx)
	return users, err
}

// decidableBy narrows a query over access_requests AS r to the requests
// managerID can decide: those for a dashboard granted to a group they
// manage, except their own (managing a group does not make one a member).
func decidableBy(q *bun.SelectQuery, managerID int64) *bun.SelectQuery {
	return q.Where("r.user_id <> ?", managerID).Where(`EXISTS (SELECT 1 FROM grants AS gr
		JOIN group_managers AS gm ON gm.group_id = gr.group_id
		WHERE gr.dashboard = r.dashboard AND gm.user_id = ?)`, managerID)
}
