package db

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/uptrace/bun"
	"golang.org/x/text/unicode/norm"
)

// Audit actions for groups, memberships and grants.
const (
	ActionGroupCreate   = "group.create"
	ActionGroupUpdate   = "group.update"
	ActionGroupDelete   = "group.delete"
	ActionMemberAdd     = "member.add"
	ActionMemberRemove  = "member.remove"
	ActionMemberExpires = "member.expiry"
	ActionGrantAdd      = "grant.add"
	ActionGrantRemove   = "grant.remove"
)

// Group name limits.
const (
	MaxGroupNameLen   = 64
	MaxDescriptionLen = 500
)

// CleanGroupName validates a group name, the one check every way of
// naming a group goes through (forms, access files, the command line):
// trimmed, in Unicode NFC (so "Café" typed either way is one name),
// 1–64 characters, and free of what makes two names look alike or text
// run backwards: zero-width characters, a byte order mark, bidi controls
// and marks, and control characters. Otherwise "SALES\u200b" and "sales"
// could both exist and look the same.
func CleanGroupName(name string) (string, error) {
	name = norm.NFC.String(strings.TrimSpace(name))
	if strings.HasPrefix(name, "\ufeff") {
		return "", errors.New("group name starts with an invisible byte order mark (U+FEFF); remove it (an editor may have added it)")
	}
	for _, r := range name {
		switch {
		case zeroWidthRune(r):
			return "", fmt.Errorf("group name must not contain invisible characters (it contains U+%04X); remove it", r)
		case bidiRune(r):
			return "", fmt.Errorf("group name must not contain bidi controls, which reorder text on screen (it contains U+%04X); remove it", r)
		case UnsafeRune(r):
			return "", fmt.Errorf("group name must not contain control characters (it contains U+%04X)", r)
		}
	}
	return CleanName("group name", name, 1, MaxGroupNameLen)
}

// CreateGroup creates a group; names are unique regardless of case.
func (s *Store) CreateGroup(ctx context.Context, a Actor, name, description string) (Group, error) {
	now := s.nowMS()
	g := Group{Name: name, NameKey: strings.ToLower(name), Description: description, CreatedAt: now, UpdatedAt: now}
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&g).Exec(ctx); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionGroupCreate, Target: g.Name,
			Detail: map[string]any{"after": map[string]any{"name": name, "description": description}}})
	})
	return g, err
}

// UpdateGroup renames a group and sets its description.
func (s *Store) UpdateGroup(ctx context.Context, a Actor, id int64, name, description string) (Group, error) {
	return s.updateGroup(ctx, a, id, name, description, nil)
}

// updateGroup renames a group and sets its description, in one transaction
// with its audit event. When unchanged is not nil and reports false for the
// group as it is now, nothing is written and the error is ErrConflict (with
// the current group).
func (s *Store) updateGroup(ctx context.Context, a Actor, id int64, name, description string, unchanged func(Group) bool) (Group, error) {
	var g Group
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		before, err := groupByID(ctx, tx, id)
		if err != nil {
			return err
		}
		g = before
		if before.Name == name && before.Description == description {
			return nil
		}
		if unchanged != nil && !unchanged(before) {
			return ErrConflict
		}
		g.Name, g.NameKey, g.Description, g.UpdatedAt = name, strings.ToLower(name), description, s.nowMS()
		if _, err := tx.NewUpdate().Model(&g).Column("name", "name_key", "description", "updated_at").WherePK().Exec(ctx); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionGroupUpdate, Target: g.Name, Detail: map[string]any{
			"before": map[string]any{"name": before.Name, "description": before.Description},
			"after":  map[string]any{"name": name, "description": description}}})
	})
	if errors.Is(err, ErrConflict) {
		return g, ErrConflict
	}
	return g, err
}

// DeleteGroup deletes a group with its memberships and grants.
func (s *Store) DeleteGroup(ctx context.Context, a Actor, id int64) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		g, err := groupByID(ctx, tx, id)
		if err != nil {
			return err
		}
		members, err := tx.NewSelect().Model((*Membership)(nil)).Where("group_id = ?", id).Count(ctx)
		if err != nil {
			return err
		}
		var grants []string
		if err := tx.NewSelect().Model((*Grant)(nil)).Column("dashboard").Where("group_id = ?", id).Order("dashboard").Scan(ctx, &grants); err != nil {
			return err
		}
		// Explicit deletes rather than relying on ON DELETE CASCADE alone,
		// so the result does not depend on the foreign_keys pragma.
		for _, m := range []any{(*Membership)(nil), (*Grant)(nil), (*GroupManager)(nil)} {
			if _, err := tx.NewDelete().Model(m).Where("group_id = ?", id).Exec(ctx); err != nil {
				return err
			}
		}
		if _, err := tx.NewDelete().Model((*Group)(nil)).Where("id = ?", id).Exec(ctx); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionGroupDelete, Target: g.Name, Detail: map[string]any{
			"before": map[string]any{"name": g.Name, "description": g.Description, "members": members, "grants": grants}}})
	})
}

func groupByID(ctx context.Context, db bun.IDB, id int64) (Group, error) {
	var g Group
	err := db.NewSelect().Model(&g).Where("id = ?", id).Limit(1).Scan(ctx)
	return g, storageErr(err)
}

// GroupByID finds a group by id, with its member and grant counts.
func (s *Store) GroupByID(ctx context.Context, id int64) (Group, error) {
	var g Group
	err := s.groupSelect(&g).Where("g.id = ?", id).Limit(1).Scan(ctx)
	return g, storageErr(err)
}

// GroupByName finds a group by name, regardless of case.
func (s *Store) GroupByName(ctx context.Context, name string) (Group, error) {
	var g Group
	key := strings.ToLower(strings.TrimSpace(name))
	q := s.groupSelect(&g).Where("g.name_key = ?", key)
	if nfc := norm.NFC.String(key); nfc != key {
		// Names are stored in NFC (CleanGroupName); the exact key first,
		// for a group named before that rule.
		q = s.groupSelect(&g).Where("g.name_key IN (?, ?)", key, nfc).OrderExpr("g.name_key = ? DESC", key)
	}
	err := q.Limit(1).Scan(ctx)
	return g, storageErr(err)
}

func (s *Store) groupSelect(model any) *bun.SelectQuery {
	return s.DB.NewSelect().Model(model).ModelTableExpr("groups AS g").ColumnExpr("g.*").
		ColumnExpr("(SELECT COUNT(*) FROM memberships m WHERE m.group_id = g.id) AS member_count").
		ColumnExpr("(SELECT COUNT(*) FROM grants gr WHERE gr.group_id = g.id) AS grant_count")
}

// GroupFilter narrows ListGroups.
type GroupFilter struct {
	Search string
	Limit  int
	Offset int
}

// ListGroups returns groups ordered by name with member and grant counts.
func (s *Store) ListGroups(ctx context.Context, f GroupFilter) ([]Group, int, error) {
	var groups []Group
	q := s.groupSelect(&groups)
	if f.Search != "" {
		like := "%" + escapeLike(strings.ToLower(f.Search)) + "%"
		q = q.WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where("g.name_key LIKE ? ESCAPE '\\'", like).WhereOr("lower(g.description) LIKE ? ESCAPE '\\'", like)
		})
	}
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	total, err := q.OrderExpr("g.name_key").Limit(int64(f.Limit)).Offset(int64(f.Offset)).ScanAndCount(ctx)
	return groups, int(total), storageErr(err)
}

// Member is a user in a group, with the membership's expiry.
type Member struct {
	User
	ExpiresAt int64 `bun:"expires_at"`
	AddedAt   int64 `bun:"added_at"`
	// Source is SourceManual or SourceIdP (with the feeding IdPGroup).
	Source   string `bun:"source"`
	IdPGroup string `bun:"idp_group"`
}

// Expired reports whether the membership has expired at nowMS.
func (m Member) Expired(nowMS int64) bool { return m.ExpiresAt != 0 && m.ExpiresAt <= nowMS }

// ListMembers returns a group's members ordered by email, and the total.
func (s *Store) ListMembers(ctx context.Context, groupID int64, limit, offset int) ([]Member, int, error) {
	var members []Member
	if limit <= 0 {
		limit = 50
	}
	q := s.DB.NewSelect().Model(&members).ModelTableExpr("memberships AS m").
		Join("JOIN users AS u ON u.id = m.user_id").ColumnExpr("u.*").
		ColumnExpr("m.expires_at AS expires_at, m.created_at AS added_at, m.source AS source, m.idp_group AS idp_group").
		Where("m.group_id = ?", groupID)
	total, err := q.OrderExpr("u.email").Limit(int64(limit)).Offset(int64(offset)).ScanAndCount(ctx)
	return members, int(total), storageErr(err)
}

// UserGroup is one of a user's groups, with the membership's expiry.
type UserGroup struct {
	Group
	ExpiresAt int64 `bun:"expires_at"`
}

// GroupsOfUser returns the groups a user belongs to (expired ones included,
// marked by ExpiresAt), ordered by name.
func (s *Store) GroupsOfUser(ctx context.Context, userID int64) ([]UserGroup, error) {
	var out []UserGroup
	err := s.DB.NewSelect().Model(&out).ModelTableExpr("memberships AS m").
		Join("JOIN groups AS g ON g.id = m.group_id").ColumnExpr("g.*").ColumnExpr("m.expires_at AS expires_at").
		Where("m.user_id = ?", userID).OrderExpr("g.name_key").Scan(ctx)
	return out, storageErr(err)
}

// AddMember puts a user in a group. expiresAt (Unix ms, 0 = never) must be
// in the future. Adding an existing member returns ErrDuplicate.
func (s *Store) AddMember(ctx context.Context, a Actor, groupID, userID, expiresAt int64) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		g, u, err := groupAndUser(ctx, tx, groupID, userID)
		if err != nil {
			return err
		}
		m := &Membership{GroupID: groupID, UserID: userID, ExpiresAt: expiresAt, CreatedAt: s.nowMS()}
		if _, err := tx.NewInsert().Model(m).Exec(ctx); err != nil {
			return err
		}
		detail := map[string]any{"group": g.Name, "user": u.Email}
		if expiresAt != 0 {
			detail["expires"] = FromMS(expiresAt).Format("2006-01-02")
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionMemberAdd, Target: g.Name + " / " + u.Email,
			Detail: map[string]any{"after": detail}})
	})
}

// SetMemberExpiry changes (or clears, with 0) a membership's expiry.
func (s *Store) SetMemberExpiry(ctx context.Context, a Actor, groupID, userID, expiresAt int64) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		g, u, err := groupAndUser(ctx, tx, groupID, userID)
		if err != nil {
			return err
		}
		var m Membership
		if err := tx.NewSelect().Model(&m).Where("group_id = ? AND user_id = ?", groupID, userID).Scan(ctx); err != nil {
			return storageErr(err)
		}
		q := tx.NewUpdate().Model((*Membership)(nil)).Where("group_id = ? AND user_id = ?", groupID, userID)
		if expiresAt == 0 {
			q = q.Set("expires_at = NULL")
		} else {
			q = q.Set("expires_at = ?", expiresAt)
		}
		if _, err := q.Exec(ctx); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionMemberExpires, Target: g.Name + " / " + u.Email,
			Detail: map[string]any{"before": map[string]any{"expires": fmtDay(m.ExpiresAt)}, "after": map[string]any{"expires": fmtDay(expiresAt)}}})
	})
}

func fmtDay(ms int64) string {
	if ms == 0 {
		return "never"
	}
	return FromMS(ms).Format("2006-01-02")
}

// RemoveMember takes a user out of a group; ErrNotFound if not a member.
func (s *Store) RemoveMember(ctx context.Context, a Actor, groupID, userID int64) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		g, u, err := groupAndUser(ctx, tx, groupID, userID)
		if err != nil {
			return err
		}
		res, err := tx.NewDelete().Model((*Membership)(nil)).Where("group_id = ? AND user_id = ?", groupID, userID).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%s is not a member of %s: %w", u.Email, g.Name, ErrNotFound)
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionMemberRemove, Target: g.Name + " / " + u.Email,
			Detail: map[string]any{"before": map[string]any{"group": g.Name, "user": u.Email}}})
	})
}

func groupAndUser(ctx context.Context, tx bun.Tx, groupID, userID int64) (Group, User, error) {
	g, err := groupByID(ctx, tx, groupID)
	if err != nil {
		return g, User{}, err
	}
	var u User
	if err := tx.NewSelect().Model(&u).Where("id = ?", userID).Limit(1).Scan(ctx); err != nil {
		return g, u, storageErr(err)
	}
	return g, u, nil
}

// AddGrant lets a group's members open a dashboard.
func (s *Store) AddGrant(ctx context.Context, a Actor, dashboard string, groupID int64) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		g, err := groupByID(ctx, tx, groupID)
		if err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(&Grant{Dashboard: dashboard, GroupID: groupID, CreatedAt: s.nowMS()}).Exec(ctx); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionGrantAdd, Target: dashboard + " → " + g.Name,
			Detail: map[string]any{"after": map[string]any{"dashboard": dashboard, "group": g.Name}}})
	})
}

// RemoveGrant revokes a group's access to a dashboard; ErrNotFound if it had none.
func (s *Store) RemoveGrant(ctx context.Context, a Actor, dashboard string, groupID int64) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		g, err := groupByID(ctx, tx, groupID)
		if err != nil {
			return err
		}
		res, err := tx.NewDelete().Model((*Grant)(nil)).Where("dashboard = ? AND group_id = ?", dashboard, groupID).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%s has no grant on %s: %w", g.Name, dashboard, ErrNotFound)
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionGrantRemove, Target: dashboard + " → " + g.Name,
			Detail: map[string]any{"before": map[string]any{"dashboard": dashboard, "group": g.Name}}})
	})
}

// GrantRow is a grant with its group's name.
type GrantRow struct {
	Dashboard string `bun:"dashboard"`
	GroupID   int64  `bun:"group_id"`
	GroupName string `bun:"group_name"`
}

// ListGrants returns every grant, ordered by dashboard and group name.
func (s *Store) ListGrants(ctx context.Context) ([]GrantRow, error) {
	var rows []GrantRow
	err := s.DB.NewSelect().TableExpr("grants AS gr").Join("JOIN groups AS g ON g.id = gr.group_id").
		ColumnExpr("gr.dashboard, gr.group_id, g.name AS group_name").
		OrderExpr("gr.dashboard, g.name_key").Scan(ctx, &rows)
	return rows, storageErr(err)
}

// GrantingGroup is a group granted a dashboard, with the viewer's
// membership in it (Member false when they are not in it).
type GrantingGroup struct {
	GroupID   int64  `bun:"group_id"`
	GroupName string `bun:"group_name"`
	Member    bool   `bun:"member"`
	ExpiresAt int64  `bun:"expires_at"`
	// IdPGroup names the IdP group behind an "idp" membership ("" for a
	// manual one).
	IdPGroup string `bun:"idp_group"`
}

// GrantingGroups returns every group granted dashboard, each with whether
// userID is in it and until when: the facts an access decision needs, read
// in one indexed query.
//
// Under a Snapshot (see authz_cache.go) the answer may come from memory,
// loaded at the same authorization version.
func (s *Store) GrantingGroups(ctx context.Context, userID int64, dashboard string) ([]GrantingGroup, error) {
	rows, err := remember(ctx, s, grantingTable, grantingKey{userID, dashboard}, func() ([]GrantingGroup, error) {
		var rows []GrantingGroup
		err := s.DB.NewSelect().TableExpr("grants AS gr").
			Join("JOIN groups AS g ON g.id = gr.group_id").
			Join("LEFT JOIN memberships AS m ON m.group_id = gr.group_id AND m.user_id = ?", userID).
			ColumnExpr("g.id AS group_id, g.name AS group_name").
			ColumnExpr("(m.user_id IS NOT NULL) AS member, COALESCE(m.expires_at, 0) AS expires_at").
			ColumnExpr("CASE WHEN m.source = 'idp' THEN m.idp_group ELSE '' END AS idp_group").
			Where("gr.dashboard = ?", dashboard).OrderExpr("g.name_key").Scan(ctx, &rows)
		return rows, storageErr(err)
	})
	return slices.Clone(rows), err
}

// Membership returns userID's membership in the named group (ErrNotFound if none).
// Under a Snapshot the answer may come from memory, like GrantingGroups'.
func (s *Store) MembershipIn(ctx context.Context, userID int64, groupName string) (Membership, error) {
	key := membershipKey{userID, strings.ToLower(groupName)}
	f, err := remember(ctx, s, membershipTable, key, func() (membershipFact, error) {
		var m Membership
		err := s.DB.NewSelect().Model(&m).ModelTableExpr("memberships AS m").ColumnExpr("m.*").
			Join("JOIN groups AS g ON g.id = m.group_id").
			Where("m.user_id = ? AND g.name_key = ?", userID, key.group).Limit(1).Scan(ctx)
		if err = storageErr(err); errors.Is(err, ErrNotFound) {
			return membershipFact{}, nil
		}
		return membershipFact{m: m, found: err == nil}, err
	})
	if err == nil && !f.found {
		err = ErrNotFound
	}
	return f.m, err
}
