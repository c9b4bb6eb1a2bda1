package db

import (
	"context"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/uptrace/bun"
)

// ActionUserSignup is the audit action of a self-service registration.
const ActionUserSignup = "user.signup"

// ActionSessionRevoke is the audit action of an admin ending one session.
const ActionSessionRevoke = "session.revoke"

// ErrConflict means the row changed since the caller read it (another admin
// saved first); nothing was written.
var ErrConflict = errors.New("changed by someone else in the meantime")

// Actions lists every audit action Gatehouse writes, for the audit log's filter.
var Actions = []string{
	ActionLogin, ActionLoginFailed, ActionLoginThrottled, ActionLogout, ActionSetup,
	ActionUserCreate, ActionUserSignup, ActionUserUpdate, ActionUserActivate, ActionUserDeactivate,
	ActionUserPromote, ActionUserDemote, ActionPasswordChange, ActionSessionRevoke,
	ActionGroupCreate, ActionGroupUpdate, ActionGroupDelete,
	ActionMemberAdd, ActionMemberRemove, ActionMemberExpires,
	ActionGrantAdd, ActionGrantRemove, ActionManagerAdd, ActionManagerRemove, ActionAccessApply,
	ActionRequestCreate, ActionRequestApprove, ActionRequestDeny, ActionAccessDenied,
	ActionSSOFailed, ActionUserLink, ActionGroupMap, ActionGroupUnmap, ActionSessionEnded,
	ActionMFAFailed, ActionMFAThrottled, ActionPasskeyRejected,
	ActionPasskeyAdd, ActionPasskeyRemove, ActionTOTPEnable, ActionTOTPConfirmFailed, ActionTOTPRemove,
	ActionRecoveryNew, ActionRecoveryUsed, ActionMFAReset,
	ActionPasswordForgot, ActionPasswordForgotThrottled, ActionPasswordReset, ActionEmailConfirm, ActionSignupExisting, ActionMailFailed,
	ActionAppCreate, ActionAppUpdate, ActionAppDelete, ActionAppOpen, ActionKeysRotate,
	ActionSCIMTokenCreate, ActionSCIMTokenRevoke, ActionSCIMUserLink, ActionSCIMUserUpdate, ActionSCIMUserDelete,
	ActionSCIMGroupCreate, ActionSCIMGroupUpdate, ActionSCIMGroupDelete,
}

// GroupOption is a group's id and name, for selects.
type GroupOption struct {
	ID   int64  `bun:"id"`
	Name string `bun:"name"`
}

// GroupOptions returns every group's id and name, ordered by name: one
// narrow query over the groups table (no counts).
func (s *Store) GroupOptions(ctx context.Context) ([]GroupOption, error) {
	var out []GroupOption
	err := s.DB.NewSelect().TableExpr("groups").ColumnExpr("id, name").OrderExpr("name_key").Scan(ctx, &out)
	return out, storageErr(err)
}

// GroupChoice is a group offered on a user's page, with the user's
// membership in it.
type GroupChoice struct {
	ID        int64  `bun:"id"`
	Name      string `bun:"name"`
	Member    bool   `bun:"member"`
	ExpiresAt int64  `bun:"expires_at"`
}

// Expired reports whether the membership has expired at nowMS.
func (g GroupChoice) Expired(nowMS int64) bool {
	return g.Member && g.ExpiresAt != 0 && g.ExpiresAt <= nowMS
}

// GroupChoicesForUser lists groups whose name contains search (all when
// empty), the user's own groups first, then by name, with the total.
func (s *Store) GroupChoicesForUser(ctx context.Context, userID int64, search string, limit, offset int) ([]GroupChoice, int, error) {
	if limit <= 0 {
		limit = 50
	}
	var out []GroupChoice
	q := s.DB.NewSelect().TableExpr("groups AS g").
		Join("LEFT JOIN memberships AS m ON m.group_id = g.id AND m.user_id = ?", userID).
		ColumnExpr("g.id, g.name, (m.user_id IS NOT NULL) AS member, COALESCE(m.expires_at, 0) AS expires_at")
	if search != "" {
		q = q.Where("g.name_key LIKE ? ESCAPE '\\'", "%"+escapeLike(strings.ToLower(search))+"%")
	}
	count, err := q.Count(ctx)
	if err != nil {
		return nil, 0, storageErr(err)
	}
	err = q.OrderExpr("member DESC, g.name_key").Limit(int64(limit)).Offset(int64(offset)).Scan(ctx, &out)
	return out, int(count), storageErr(err)
}

// GroupChoice returns one group with the user's membership in it.
func (s *Store) GroupChoice(ctx context.Context, userID, groupID int64) (GroupChoice, error) {
	var out GroupChoice
	err := s.DB.NewSelect().TableExpr("groups AS g").
		Join("LEFT JOIN memberships AS m ON m.group_id = g.id AND m.user_id = ?", userID).
		ColumnExpr("g.id, g.name, (m.user_id IS NOT NULL) AS member, COALESCE(m.expires_at, 0) AS expires_at").
		Where("g.id = ?", groupID).Limit(1).Scan(ctx, &out)
	return out, storageErr(err)
}

// MemberCandidates returns up to limit users whose email or name contains
// search and who are not members of the group, ordered by email. The match
// runs on the (email, name) index alone, in email order, and stops after
// limit hits; only those rows are then read from the table.
func (s *Store) MemberCandidates(ctx context.Context, groupID int64, search string, limit int) ([]User, error) {
	var users []User
	ids := s.whereContains(s.DB.NewSelect().TableExpr("users AS c").Column("c.id"), search).
		Where("NOT EXISTS (SELECT 1 FROM memberships AS m WHERE m.group_id = ? AND m.user_id = c.id)", groupID).
		OrderExpr("c.email").Limit(int64(limit))
	err := s.DB.NewSelect().Model(&users).ModelTableExpr("users AS u").ColumnExpr("u.*").
		Where("u.id IN (?)", ids).OrderExpr("u.email").Scan(ctx)
	return users, storageErr(err)
}

// foldCase wraps a column for a case-insensitive LIKE against a lower-cased
// pattern: PostgreSQL's LIKE is case-sensitive, so it needs lower(); SQLite's
// LIKE already ignores ASCII case (and its lower() folds ASCII only), so
// the call would only cost time on every row of a scan.
// whereContains keeps the users (aliased c) whose email or name contains
// term, regardless of case. On SQLite, terms of three or more characters use
// the users_search trigram index (migration 0005) instead of a LIKE scan.
func (s *Store) whereContains(q *bun.SelectQuery, term string) *bun.SelectQuery {
	if s.Dialect == SQLite && utf8.RuneCountInString(term) >= 3 {
		phrase := `"` + strings.ReplaceAll(term, `"`, `""`) + `"`
		return q.Where("c.id IN (SELECT rowid FROM users_search WHERE users_search MATCH ?)", phrase)
	}
	like := "%" + escapeLike(strings.ToLower(term)) + "%"
	return q.Where("(c.email LIKE ? ESCAPE '\\' OR "+s.foldCase("c.name")+" LIKE ? ESCAPE '\\')", like, like)
}

func (s *Store) foldCase(col string) string {
	if s.Dialect == Postgres {
		return "lower(" + col + ")"
	}
	return col
}

// SearchUsers is ListUsers for the admin panel at scale: the same filters
// and order, but the page's ids are found first (for a search, on the
// (email, name) index alone) and only the page's rows are read in full.
func (s *Store) SearchUsers(ctx context.Context, f UserFilter) ([]User, int, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	filter := func(q *bun.SelectQuery) *bun.SelectQuery {
		if f.Search != "" {
			q = s.whereContains(q, f.Search)
		}
		if f.GroupID != 0 {
			q = q.Where("c.id IN (SELECT user_id FROM memberships WHERE group_id = ?)", f.GroupID)
		}
		if f.Admin {
			q = q.Where("c.is_admin")
		}
		if f.Inactive {
			q = q.Where("NOT c.is_active")
		}
		return q
	}
	n, err := filter(s.DB.NewSelect().TableExpr("users AS c")).Count(ctx)
	if err != nil {
		return nil, 0, storageErr(err)
	}
	total := int(n)
	var users []User
	if total == 0 || f.Offset >= total {
		return users, total, nil
	}
	ids := filter(s.DB.NewSelect().TableExpr("users AS c").Column("c.id")).
		OrderExpr("c.email").Limit(int64(f.Limit)).Offset(int64(f.Offset))
	err = s.DB.NewSelect().Model(&users).ModelTableExpr("users AS u").ColumnExpr("u.*").
		Where("u.id IN (?)", ids).OrderExpr("u.email").Scan(ctx)
	return users, total, storageErr(err)
}

// MemberOf returns one membership of a group with its user (ErrNotFound
// when the user is not a member).
func (s *Store) MemberOf(ctx context.Context, groupID, userID int64) (Member, error) {
	var m Member
	err := s.DB.NewSelect().Model(&m).ModelTableExpr("memberships AS m").
		Join("JOIN users AS u ON u.id = m.user_id").ColumnExpr("u.*").
		ColumnExpr("m.expires_at AS expires_at, m.created_at AS added_at, m.source AS source, m.idp_group AS idp_group").
		Where("m.group_id = ? AND m.user_id = ?", groupID, userID).Limit(1).Scan(ctx)
	return m, storageErr(err)
}

// bigGroup is the member count from which ListGroupMembers walks users in
// email order instead of sorting the group's members.
const bigGroup = 5000

// ListGroupMembers returns one page of a group's members ordered by email,
// and the total. A small group's members are read through the membership
// key and sorted; a big group's page walks the users' email index and
// keeps members (users CROSS JOIN memberships fixes that join order in
// SQLite), so page one of a 100,000-member group reads about fifty rows
// instead of sorting 100,000.
func (s *Store) ListGroupMembers(ctx context.Context, groupID int64, limit, offset int) ([]Member, int, error) {
	n, err := s.DB.NewSelect().TableExpr("memberships").Where("group_id = ?", groupID).Count(ctx)
	if err != nil {
		return nil, 0, storageErr(err)
	}
	members, err := s.groupMembersPage(ctx, groupID, int(n), limit, offset)
	return members, int(n), err
}

// GroupMembersPage is ListGroupMembers for a group just read with its
// member count (GroupByID), which it uses instead of counting again.
func (s *Store) GroupMembersPage(ctx context.Context, g Group, limit, offset int) ([]Member, error) {
	return s.groupMembersPage(ctx, g.ID, g.MemberCount, limit, offset)
}

func (s *Store) groupMembersPage(ctx context.Context, groupID int64, total, limit, offset int) ([]Member, error) {
	if limit <= 0 {
		limit = 50
	}
	var members []Member
	if total == 0 || offset >= total {
		return members, nil
	}
	q := s.DB.NewSelect().Model(&members)
	if total >= bigGroup {
		q = q.ModelTableExpr("users AS u CROSS JOIN memberships AS m").Where("m.group_id = ? AND m.user_id = u.id", groupID)
	} else {
		q = q.ModelTableExpr("memberships AS m").Join("JOIN users AS u ON u.id = m.user_id").Where("m.group_id = ?", groupID)
	}
	err := q.ColumnExpr("u.*").ColumnExpr("m.expires_at AS expires_at, m.created_at AS added_at, m.source AS source, m.idp_group AS idp_group").
		OrderExpr("u.email").Limit(int64(limit)).Offset(int64(offset)).Scan(ctx)
	return members, storageErr(err)
}

// GrantsOfGroup returns the dashboards granted to a group, by slug.
func (s *Store) GrantsOfGroup(ctx context.Context, groupID int64) ([]string, error) {
	var slugs []string
	err := s.DB.NewSelect().Model((*Grant)(nil)).Column("dashboard").Where("group_id = ?", groupID).
		Order("dashboard").Scan(ctx, &slugs)
	return slugs, storageErr(err)
}

// UpdateGroupChecked renames a group and sets its description, but only if
// it still has the name and description the editor started from (wasName,
// wasDescription); otherwise it returns ErrConflict and the current group,
// so two admins editing at once never silently overwrite each other.
func (s *Store) UpdateGroupChecked(ctx context.Context, a Actor, id int64, wasName, wasDescription, name, description string) (Group, error) {
	return s.updateGroup(ctx, a, id, name, description, func(now Group) bool {
		return now.Name == wasName && now.Description == wasDescription
	})
}

// ListDecidedRequests returns the most recently decided access requests.
func (s *Store) ListDecidedRequests(ctx context.Context, limit int) ([]AccessRequest, error) {
	return s.ListDecidedRequestsFor(ctx, 0, limit)
}

// ListDecidedRequestsFor is ListDecidedRequests limited, when managerID
// is not 0, to requests that user could decide as a group manager.
func (s *Store) ListDecidedRequestsFor(ctx context.Context, managerID int64, limit int) ([]AccessRequest, error) {
	var reqs []AccessRequest
	q := s.DB.NewSelect().Model(&reqs).ModelTableExpr("access_requests AS r").ColumnExpr("r.*").
		ColumnExpr("u.email AS user_email, u.name AS user_name, COALESCE(g.name, '') AS group_name").
		Join("JOIN users AS u ON u.id = r.user_id").
		Join("LEFT JOIN groups AS g ON g.id = r.group_id").
		Where("r.status <> ?", RequestPending)
	if managerID != 0 {
		q = decidableBy(q, managerID)
	}
	err := q.OrderExpr("r.decided_at DESC, r.id DESC").Limit(int64(limit)).Scan(ctx)
	return reqs, storageErr(err)
}

// ListAuditPage returns one page of matching events, newest first, and
// whether older ones follow. It does not count the whole log, so a page
// costs the same with ten million events as with ten.
func (s *Store) ListAuditPage(ctx context.Context, f AuditFilter) ([]AuditEvent, bool, error) {
	var events []AuditEvent
	if f.Limit <= 0 {
		f.Limit = 50
	}
	q := f.apply(s.DB.NewSelect().Model(&events))
	err := q.OrderExpr("at DESC, id DESC").Limit(int64(f.Limit + 1)).Offset(int64(f.Offset)).Scan(ctx)
	if err != nil {
		return nil, false, storageErr(err)
	}
	more := len(events) > f.Limit
	if more {
		events = events[:f.Limit]
	}
	return events, more, nil
}

// SignupUser creates a self-registered user, puts them in the group named
// groupName (when not empty) and records the signup, all in one
// transaction: when the group does not exist it returns ErrNotFound and no
// user is created, so a sign-up never ends up without its group.
func (s *Store) SignupUser(ctx context.Context, a Actor, nu NewUser, groupName string) (User, error) {
	now := s.nowMS()
	u := User{Email: nu.Email, Name: nu.Name, PasswordHash: nu.PasswordHash, IsActive: true,
		CreatedAt: now, UpdatedAt: now, LastLoginAt: now}
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var g Group
		if groupName != "" {
			if err := tx.NewSelect().Model(&g).Where("name_key = ?", strings.ToLower(groupName)).Limit(1).Scan(ctx); err != nil {
				return storageErr(err)
			}
		}
		if _, err := tx.NewInsert().Model(&u).Exec(ctx); err != nil {
			return err
		}
		detail := map[string]any{"name": u.Name}
		if g.ID != 0 {
			if _, err := tx.NewInsert().Model(&Membership{GroupID: g.ID, UserID: u.ID, CreatedAt: now}).Exec(ctx); err != nil {
				return err
			}
			detail["group"] = g.Name
		}
		a.ID, a.Email = u.ID, u.Email
		return s.insertAudit(ctx, tx, a, Event{Action: ActionUserSignup, Target: u.Email, Detail: map[string]any{"after": detail}})
	})
	return u, err
}
