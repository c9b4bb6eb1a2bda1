package db

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// Audit actions for SCIM provisioning. Changes made over SCIM are written
// with the actor "scim:NAME" (NAME: the token's name); the user and
// membership actions they cause (user.create, user.deactivate, member.add
// with source "idp", …) are the same as everywhere else.
const (
	ActionSCIMTokenCreate = "scim.token.create"
	ActionSCIMTokenRevoke = "scim.token.revoke"
	ActionSCIMUserLink    = "scim.user.link"   // an existing account now managed by the IdP
	ActionSCIMUserUpdate  = "scim.user.update" // userName, externalId, name parts
	ActionSCIMUserDelete  = "scim.user.delete" // deactivated and no longer managed (history kept)
	ActionSCIMGroupCreate = "scim.group.create"
	ActionSCIMGroupUpdate = "scim.group.update" // display name, externalId, members
	ActionSCIMGroupDelete = "scim.group.delete"
)

// SCIM refusals. Each leaves the database unchanged.
var (
	// ErrSCIMLinkRefused: an account has the email and may not be taken
	// over by the IdP (its domain is not one of --oidc-domains, linking by
	// email is off, or it is an admin's).
	ErrSCIMLinkRefused = errors.New("an account with this email exists and may not be linked to the identity provider")
	// ErrSCIMAdminEmail: the account is an admin's, and SCIM may not change
	// its email (a new email would let whoever holds the token take the
	// admin's account over by a password reset mail).
	ErrSCIMAdminEmail = errors.New("the account is an admin's: its email is not changed over SCIM")
	// ErrSCIMUnknownMember: a group member is not a user the IdP manages.
	ErrSCIMUnknownMember = errors.New("no such user")
)

// SCIMToken is a bearer token an identity provider presents at /scim/v2.
type SCIMToken struct {
	bun.BaseModel `bun:"table:scim_tokens"`

	Name        string `bun:"name,pk"`
	TokenHash   string `bun:"token_hash,notnull"`
	CreatedAt   int64  `bun:"created_at,notnull"`
	LastUsedAt  int64  `bun:"last_used_at,nullzero"`
	LastRequest string `bun:"last_request,notnull"`
	LastError   string `bun:"last_error,notnull"`
	LastErrorAt int64  `bun:"last_error_at,nullzero"`
}

// SCIMUserRow is the IdP's side of a user it manages.
type SCIMUserRow struct {
	bun.BaseModel `bun:"table:scim_users"`

	UserID      int64  `bun:"user_id,pk"`
	UserName    string `bun:"user_name,notnull"`
	UserNameKey string `bun:"user_name_key,notnull"`
	ExternalID  string `bun:"external_id,notnull"`
	GivenName   string `bun:"given_name,notnull"`
	FamilyName  string `bun:"family_name,notnull"`
	CreatedAt   int64  `bun:"created_at,notnull"`
	UpdatedAt   int64  `bun:"updated_at,notnull"`
	// DeletedAt is when the IdP deleted the user (0: it manages them).
	DeletedAt int64 `bun:"deleted_at,nullzero"`
}

// SCIMGroupRow is a group the IdP pushed.
type SCIMGroupRow struct {
	bun.BaseModel `bun:"table:scim_groups,alias:g"`

	ID             int64  `bun:"id,pk,autoincrement"`
	DisplayName    string `bun:"display_name,notnull"`
	DisplayNameKey string `bun:"display_name_key,notnull"`
	ExternalID     string `bun:"external_id,notnull"`
	CreatedAt      int64  `bun:"created_at,notnull"`
	UpdatedAt      int64  `bun:"updated_at,notnull"`
}

// SCIMMemberRow puts a user in a pushed group.
type SCIMMemberRow struct {
	bun.BaseModel `bun:"table:scim_members"`

	GroupID int64 `bun:"group_id,pk"`
	UserID  int64 `bun:"user_id,pk"`
}

// SCIMUser is a user the IdP manages, as SCIM shows it. ID is the
// Gatehouse user id (the SCIM id); Email and Name are the account's.
type SCIMUser struct {
	ID         int64
	UserName   string
	ExternalID string
	Email      string
	Name       string
	GivenName  string
	FamilyName string
	Active     bool
	Created    int64
	Updated    int64
	Groups     []SCIMRef // the pushed groups the user is in (read-only in SCIM)
}

// SCIMRef names a user or group inside another resource.
type SCIMRef struct {
	ID      int64
	Display string
}

// SCIMGroup is a pushed group, as SCIM shows it.
type SCIMGroup struct {
	ID          int64
	DisplayName string
	ExternalID  string
	Created     int64
	Updated     int64
	Members     []SCIMRef // users (ID, userName)
}

// SCIMUserQuery narrows ListSCIMUsers; zero fields match everything. Every
// comparison is exact except UserName and Email, which ignore case.
type SCIMUserQuery struct {
	ID         int64
	UserName   string
	ExternalID string
	Email      string
	Name       string
	// Offset and Limit page the result (Limit 0: all).
	Offset, Limit int
}

// SCIMGroupQuery narrows ListSCIMGroups, like SCIMUserQuery.
type SCIMGroupQuery struct {
	ID          int64
	DisplayName string // ignores case
	ExternalID  string
	MemberID    int64 // only groups with this member
	NoMembers   bool  // leave Members empty (excludedAttributes=members)
	Offset      int
	Limit       int
}

var scimTokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CleanSCIMTokenName validates a token's name: 1–64 letters, digits, dots,
// dashes and underscores, starting with a letter or digit.
func CleanSCIMTokenName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if !scimTokenName.MatchString(name) {
		return "", fmt.Errorf("token name %q must be 1–64 letters, digits, '.', '-' or '_'", name)
	}
	return name, nil
}

// CreateSCIMToken makes a token named name and returns it; only its hash
// is stored. ErrDuplicate when the name is taken.
func (s *Store) CreateSCIMToken(ctx context.Context, a Actor, name string) (string, error) {
	name, err := CleanSCIMTokenName(name)
	if err != nil {
		return "", err
	}
	token := "scim_" + RandomToken(32)
	err = s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		n, err := tx.NewSelect().Model((*SCIMToken)(nil)).Where("name = ?", name).Count(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("a SCIM token named %s: %w", name, ErrDuplicate)
		}
		if _, err := tx.NewInsert().Model(&SCIMToken{Name: name, TokenHash: HashToken(token), CreatedAt: s.nowMS()}).Exec(ctx); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionSCIMTokenCreate, Target: name})
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// RevokeSCIMToken deletes a token: the next request with it gets 401.
// ErrNotFound when there is none of that name.
func (s *Store) RevokeSCIMToken(ctx context.Context, a Actor, name string) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewDelete().Model((*SCIMToken)(nil)).Where("name = ?", name).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("no SCIM token named %q: %w", name, ErrNotFound)
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionSCIMTokenRevoke, Target: name})
	})
}

// ListSCIMTokens returns every token (hashes included), by name.
func (s *Store) ListSCIMTokens(ctx context.Context) ([]SCIMToken, error) {
	var out []SCIMToken
	err := s.DB.NewSelect().Model(&out).Order("name").Scan(ctx)
	return out, storageErr(err)
}

// SCIMTokenByHash finds the token whose hash is hash (ErrNotFound).
func (s *Store) SCIMTokenByHash(ctx context.Context, hash string) (SCIMToken, error) {
	var t SCIMToken
	err := s.DB.NewSelect().Model(&t).Where("token_hash = ?", hash).Limit(1).Scan(ctx)
	return t, storageErr(err)
}

// NoteSCIMRequest records a token's latest request ("PATCH /Users/7 200")
// and, when errMsg is not empty, its latest error.
func (s *Store) NoteSCIMRequest(ctx context.Context, name, request, errMsg string) error {
	markWrite(ctx)
	now := s.nowMS()
	q := s.DB.NewUpdate().Model((*SCIMToken)(nil)).Set("last_used_at = ?", now).Set("last_request = ?", truncate(request, 200)).
		Where("name = ?", name)
	if errMsg != "" {
		q = q.Set("last_error = ?", truncate(errMsg, 500)).Set("last_error_at = ?", now)
	}
	_, err := q.Exec(ctx)
	return storageErr(err)
}

// scimUserSelect selects SCIMUser columns from scim_users su joined to users u.
func scimUserSelect(db bun.IDB, dst any) *bun.SelectQuery {
	return db.NewSelect().TableExpr("scim_users AS su").Join("JOIN users AS u ON u.id = su.user_id").
		ColumnExpr("u.id AS id, su.user_name, su.external_id, u.email, u.name, su.given_name, su.family_name, " +
			"u.is_active AS active, su.created_at AS created, su.updated_at AS updated")
}

type scimUserScan struct {
	ID         int64  `bun:"id"`
	UserName   string `bun:"user_name"`
	ExternalID string `bun:"external_id"`
	Email      string `bun:"email"`
	Name       string `bun:"name"`
	GivenName  string `bun:"given_name"`
	FamilyName string `bun:"family_name"`
	Active     bool   `bun:"active"`
	Created    int64  `bun:"created"`
	Updated    int64  `bun:"updated"`
}

func (r scimUserScan) user() SCIMUser {
	return SCIMUser{ID: r.ID, UserName: r.UserName, ExternalID: r.ExternalID, Email: r.Email, Name: r.Name,
		GivenName: r.GivenName, FamilyName: r.FamilyName, Active: r.Active, Created: r.Created, Updated: r.Updated}
}

func (q SCIMUserQuery) apply(sel *bun.SelectQuery) *bun.SelectQuery {
	sel = sel.Where("su.deleted_at IS NULL")
	if q.ID != 0 {
		sel = sel.Where("u.id = ?", q.ID)
	}
	if q.UserName != "" {
		sel = sel.Where("su.user_name_key = ?", strings.ToLower(q.UserName))
	}
	if q.ExternalID != "" {
		sel = sel.Where("su.external_id = ?", q.ExternalID)
	}
	if q.Email != "" {
		sel = sel.Where("u.email = ?", strings.ToLower(q.Email))
	}
	if q.Name != "" {
		sel = sel.Where("u.name = ?", q.Name)
	}
	return sel
}

// ListSCIMUsers returns the users the IdP manages that match q, by id,
// with their groups, and how many match in all.
func (s *Store) ListSCIMUsers(ctx context.Context, q SCIMUserQuery) ([]SCIMUser, int, error) {
	return listSCIMUsers(ctx, s.DB, q)
}

func listSCIMUsers(ctx context.Context, db bun.IDB, q SCIMUserQuery) ([]SCIMUser, int, error) {
	var rows []scimUserScan
	sel := q.apply(scimUserSelect(db, &rows)).OrderExpr("u.id")
	if q.Limit > 0 {
		sel = sel.Limit(int64(q.Limit))
	}
	if q.Offset > 0 {
		sel = sel.Offset(int64(q.Offset))
	}
	if err := sel.Scan(ctx, &rows); err != nil {
		return nil, 0, storageErr(err)
	}
	total := len(rows)
	if q.Limit > 0 || q.Offset > 0 {
		n, err := q.apply(db.NewSelect().TableExpr("scim_users AS su").Join("JOIN users AS u ON u.id = su.user_id")).Count(ctx)
		if err != nil {
			return nil, 0, storageErr(err)
		}
		total = int(n)
	}
	out := make([]SCIMUser, len(rows))
	ids := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r.user()
		ids[i] = r.ID
	}
	if len(ids) > 0 {
		var refs []struct {
			UserID int64  `bun:"user_id"`
			ID     int64  `bun:"id"`
			Name   string `bun:"display_name"`
		}
		if err := db.NewSelect().TableExpr("scim_members AS m").Join("JOIN scim_groups AS g ON g.id = m.group_id").
			ColumnExpr("m.user_id, g.id, g.display_name").Where("m.user_id IN (?)", bun.In(ids)).
			OrderExpr("m.user_id, g.id").Scan(ctx, &refs); err != nil {
			return nil, 0, storageErr(err)
		}
		at := map[int64]int{}
		for i, u := range out {
			at[u.ID] = i
		}
		for _, r := range refs {
			i := at[r.UserID]
			out[i].Groups = append(out[i].Groups, SCIMRef{ID: r.ID, Display: r.Name})
		}
	}
	return out, total, nil
}

// ListSCIMGroups returns the pushed groups that match q, by id, with their
// members unless q.NoMembers, and how many match in all.
func (s *Store) ListSCIMGroups(ctx context.Context, q SCIMGroupQuery) ([]SCIMGroup, int, error) {
	return listSCIMGroups(ctx, s.DB, q)
}

func (q SCIMGroupQuery) apply(sel *bun.SelectQuery) *bun.SelectQuery {
	if q.ID != 0 {
		sel = sel.Where("g.id = ?", q.ID)
	}
	if q.DisplayName != "" {
		sel = sel.Where("g.display_name_key = ?", strings.ToLower(q.DisplayName))
	}
	if q.ExternalID != "" {
		sel = sel.Where("g.external_id = ?", q.ExternalID)
	}
	if q.MemberID != 0 {
		sel = sel.Where("EXISTS (SELECT 1 FROM scim_members AS mm WHERE mm.group_id = g.id AND mm.user_id = ?)", q.MemberID)
	}
	return sel
}

func listSCIMGroups(ctx context.Context, db bun.IDB, q SCIMGroupQuery) ([]SCIMGroup, int, error) {
	var rows []SCIMGroupRow
	sel := q.apply(db.NewSelect().Model(&rows)).OrderExpr("g.id")
	if q.Limit > 0 {
		sel = sel.Limit(int64(q.Limit))
	}
	if q.Offset > 0 {
		sel = sel.Offset(int64(q.Offset))
	}
	if err := sel.Scan(ctx); err != nil {
		return nil, 0, storageErr(err)
	}
	total := len(rows)
	if q.Limit > 0 || q.Offset > 0 {
		n, err := q.apply(db.NewSelect().TableExpr("scim_groups AS g")).Count(ctx)
		if err != nil {
			return nil, 0, storageErr(err)
		}
		total = int(n)
	}
	out := make([]SCIMGroup, len(rows))
	ids := make([]int64, len(rows))
	at := map[int64]int{}
	for i, r := range rows {
		out[i] = SCIMGroup{ID: r.ID, DisplayName: r.DisplayName, ExternalID: r.ExternalID, Created: r.CreatedAt, Updated: r.UpdatedAt}
		ids[i] = r.ID
		at[r.ID] = i
	}
	if len(ids) > 0 && !q.NoMembers {
		var refs []struct {
			GroupID  int64  `bun:"group_id"`
			UserID   int64  `bun:"user_id"`
			UserName string `bun:"user_name"`
		}
		if err := db.NewSelect().TableExpr("scim_members AS m").Join("JOIN scim_users AS su ON su.user_id = m.user_id").
			ColumnExpr("m.group_id, m.user_id, su.user_name").Where("m.group_id IN (?)", bun.In(ids)).
			OrderExpr("m.group_id, m.user_id").Scan(ctx, &refs); err != nil {
			return nil, 0, storageErr(err)
		}
		for _, r := range refs {
			i := at[r.GroupID]
			out[i].Members = append(out[i].Members, SCIMRef{ID: r.UserID, Display: r.UserName})
		}
	}
	return out, total, nil
}

// SCIMTx is one SCIM request's write transaction: every change it makes
// commits together or not at all. Memberships of Gatehouse groups follow
// the pushed groups through `groups map` when it commits (see Store.SCIM).
type SCIMTx struct {
	s  *Store
	tx bun.Tx
	a  Actor
	// resync holds the users whose pushed groups changed in a way a
	// mapping can see.
	resync map[int64]bool
	mapped map[string]bool // IdP group names that feed a Gatehouse group
	// gone holds the names of pushed groups deleted or renamed in this
	// transaction: memberships they fed are no longer fed by them.
	gone []string
}

// SCIM runs fn in one write transaction as actor a, then makes the
// memberships of every user whose pushed groups changed follow them
// through the `groups map` mappings, with the code SSO sign-in uses
// (syncIdPGroups): a member pushed by SCIM and one synced at sign-in are
// the same membership (source "idp"), and manual ones are never touched.
func (s *Store) SCIM(ctx context.Context, a Actor, fn func(ctx context.Context, t *SCIMTx) error) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		t := &SCIMTx{s: s, tx: tx, a: a, resync: map[int64]bool{}}
		var mapped []string
		if err := tx.NewSelect().Model((*IdPGroupMapping)(nil)).Column("idp_group").Distinct().Scan(ctx, &mapped); err != nil {
			return err
		}
		t.mapped = make(map[string]bool, len(mapped))
		for _, m := range mapped {
			t.mapped[m] = true
		}
		if err := fn(ctx, t); err != nil {
			return err
		}
		ids := make([]int64, 0, len(t.resync))
		for id := range t.resync {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			if err := s.syncSCIMUser(ctx, tx, a, id, t.gone); err != nil {
				return err
			}
		}
		return nil
	})
}

// syncSCIMUser makes the memberships of a user the IdP manages follow its
// pushed groups. The IdP groups it syncs with are the pushed groups the
// user is in, plus the IdP groups of their current "idp" memberships that
// SCIM does not push (those came from a sign-in's groups claim and stay
// until the next sign-in says otherwise), except those named in gone:
// pushed groups deleted or renamed by this transaction.
func (s *Store) syncSCIMUser(ctx context.Context, tx bun.Tx, a Actor, userID int64, gone []string) error {
	u, err := lockUser(ctx, tx, userID)
	if err != nil {
		return err
	}
	var groups []string
	if err := tx.NewSelect().TableExpr("scim_members AS m").Join("JOIN scim_groups AS g ON g.id = m.group_id").
		ColumnExpr("g.display_name").Where("m.user_id = ?", userID).Scan(ctx, &groups); err != nil {
		return err
	}
	var fromClaim []string
	if err := tx.NewSelect().Model((*Membership)(nil)).Column("idp_group").Where("user_id = ? AND source = ?", userID, SourceIdP).
		Where("idp_group NOT IN (SELECT display_name FROM scim_groups)").Scan(ctx, &fromClaim); err != nil {
		return err
	}
	for _, g := range fromClaim {
		if !slices.Contains(gone, g) {
			groups = append(groups, g)
		}
	}
	_, err = s.syncIdPGroups(ctx, tx, a, u, groups)
	return err
}

// User returns a user the IdP manages (ErrNotFound otherwise). On
// PostgreSQL it locks the user's row first, so two requests changing one
// user take turns instead of losing one's change (SQLite's write
// transactions take turns already).
func (t *SCIMTx) User(ctx context.Context, id int64) (SCIMUser, error) {
	if _, err := lockUser(ctx, t.tx, id); err != nil {
		return SCIMUser{}, err
	}
	us, _, err := listSCIMUsers(ctx, t.tx, SCIMUserQuery{ID: id})
	if err != nil {
		return SCIMUser{}, err
	}
	if len(us) == 0 {
		return SCIMUser{}, ErrNotFound
	}
	return us[0], nil
}

// Group returns a pushed group with its members (ErrNotFound otherwise),
// its row locked on PostgreSQL like User's.
func (t *SCIMTx) Group(ctx context.Context, id int64) (SCIMGroup, error) {
	if t.tx.Dialect().Name() == dialect.PG {
		if _, err := t.tx.ExecContext(ctx, "SELECT id FROM scim_groups WHERE id = ? FOR UPDATE", id); err != nil {
			return SCIMGroup{}, err
		}
	}
	gs, _, err := listSCIMGroups(ctx, t.tx, SCIMGroupQuery{ID: id})
	if err != nil {
		return SCIMGroup{}, err
	}
	if len(gs) == 0 {
		return SCIMGroup{}, ErrNotFound
	}
	return gs[0], nil
}

func (t *SCIMTx) userNameTaken(ctx context.Context, userName string, except int64) error {
	n, err := t.tx.NewSelect().Model((*SCIMUserRow)(nil)).Where("user_name_key = ? AND user_id <> ? AND deleted_at IS NULL", strings.ToLower(userName), except).Count(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("userName %q is taken: %w", userName, ErrDuplicate)
	}
	return nil
}

// CreateUser makes u a user the IdP manages. An account with u.Email that
// the IdP does not manage yet is linked, keeping its history, only when
// p allows an SSO sign-in to link it (its domain is one of p.Domains and
// linking by email is on) and it is not an admin's, or when the IdP
// managed it before and deleted it; otherwise ErrSCIMLinkRefused. A new account has no password: its owner signs in
// with SSO. linked says which happened.
func (t *SCIMTx) CreateUser(ctx context.Context, u SCIMUser, p SSOPolicy) (out SCIMUser, linked bool, err error) {
	relinked := false
	if err := t.userNameTaken(ctx, u.UserName, 0); err != nil {
		return SCIMUser{}, false, err
	}
	now := t.s.nowMS()
	var acct User
	err = t.tx.NewSelect().Model(&acct).Where("email = ?", u.Email).Limit(1).Scan(ctx)
	switch err = storageErr(err); {
	case err == nil:
		var prior SCIMUserRow
		err := t.tx.NewSelect().Model(&prior).Where("user_id = ?", acct.ID).Limit(1).Scan(ctx)
		switch err = storageErr(err); {
		case err == nil && prior.DeletedAt == 0:
			return SCIMUser{}, false, fmt.Errorf("the account %s is already provisioned: %w", u.Email, ErrDuplicate)
		case err == nil && acct.IsAdmin:
			// Made an admin since the IdP deleted it: not the IdP's again.
			return SCIMUser{}, false, ErrSCIMLinkRefused
		case err == nil:
			// The IdP deleted this person and creates them again: the
			// account it managed is its again, whatever the domain rule.
			relinked = true
		case !errors.Is(err, ErrNotFound):
			return SCIMUser{}, false, err
		default:
			domain := u.Email[strings.LastIndexByte(u.Email, '@')+1:]
			if p.NoEmailLink || acct.IsAdmin || !slices.Contains(p.Domains, domain) {
				return SCIMUser{}, false, ErrSCIMLinkRefused
			}
		}
		linked = true
		detail := map[string]any{"after": map[string]any{"userName": u.UserName, "externalId": u.ExternalID, "again": relinked}}
		if acct.EmailPending {
			// As at an SSO sign-in: an unconfirmed sign-up was typed by
			// whoever knew the address, perhaps not the person the IdP
			// vouches for; it becomes theirs without the sign-up's
			// password, links and sessions.
			if err := discardSignup(ctx, t.tx, acct.ID, acct.Name, now); err != nil {
				return SCIMUser{}, false, err
			}
			acct.EmailPending, acct.PasswordHash = false, ""
			detail["unconfirmed_signup"] = "password and links discarded"
		}
		if err := t.s.insertAudit(ctx, t.tx, t.a, Event{Action: ActionSCIMUserLink, Target: acct.Email, Detail: detail}); err != nil {
			return SCIMUser{}, false, err
		}
		if u.Name != "" && u.Name != acct.Name {
			if err := t.setName(ctx, acct, u.Name); err != nil {
				return SCIMUser{}, false, err
			}
		}
		if acct.IsActive != u.Active || (u.Active && acct.EmailPending) {
			if err := t.s.setActive(ctx, t.tx, t.a, acct.ID, u.Active); err != nil {
				return SCIMUser{}, false, err
			}
		}
	case errors.Is(err, ErrNotFound):
		acct = User{Email: u.Email, Name: u.Name, IsActive: u.Active, CreatedAt: now, UpdatedAt: now}
		if _, err := t.tx.NewInsert().Model(&acct).Exec(ctx); err != nil {
			return SCIMUser{}, false, err
		}
		if err := t.s.insertAudit(ctx, t.tx, t.a, Event{Action: ActionUserCreate, Target: acct.Email,
			Detail: map[string]any{"after": map[string]any{"name": acct.Name, "admin": false, "active": acct.IsActive,
				"source": "scim", "userName": u.UserName, "externalId": u.ExternalID}}}); err != nil {
			return SCIMUser{}, false, err
		}
	default:
		return SCIMUser{}, false, err
	}
	row := SCIMUserRow{UserID: acct.ID, UserName: u.UserName, UserNameKey: strings.ToLower(u.UserName), ExternalID: u.ExternalID,
		GivenName: u.GivenName, FamilyName: u.FamilyName, CreatedAt: now, UpdatedAt: now}
	q := t.tx.NewInsert().Model(&row)
	if relinked {
		q = q.On("CONFLICT (user_id) DO UPDATE").Set("user_name = EXCLUDED.user_name").Set("user_name_key = EXCLUDED.user_name_key").
			Set("external_id = EXCLUDED.external_id").Set("given_name = EXCLUDED.given_name").Set("family_name = EXCLUDED.family_name").
			Set("updated_at = EXCLUDED.updated_at").Set("deleted_at = NULL")
	}
	if _, err := q.Exec(ctx); err != nil {
		return SCIMUser{}, false, err
	}
	out, err = t.User(ctx, acct.ID)
	return out, linked, err
}

func (t *SCIMTx) setName(ctx context.Context, acct User, name string) error {
	if _, err := t.tx.NewUpdate().Model((*User)(nil)).Set("name = ?", name).Set("updated_at = ?", t.s.nowMS()).
		Where("id = ?", acct.ID).Exec(ctx); err != nil {
		return err
	}
	return t.s.insertAudit(ctx, t.tx, t.a, Event{Action: ActionUserUpdate, Target: acct.Email,
		Detail: map[string]any{"before": map[string]any{"name": acct.Name}, "after": map[string]any{"name": name}}})
}

// SaveUser writes what changed from before (as read in this transaction)
// to after: the account's email and name, its active flag (through the
// one deactivation path: sessions end, open pages and apps are cut), and
// the IdP's userName, externalId and name parts. Each change is audited.
func (t *SCIMTx) SaveUser(ctx context.Context, before, after SCIMUser) error {
	acct, err := lockUser(ctx, t.tx, before.ID)
	if err != nil {
		return err
	}
	if after.Email != acct.Email {
		if acct.IsAdmin {
			return ErrSCIMAdminEmail
		}
		n, err := t.tx.NewSelect().Model((*User)(nil)).Where("email = ? AND id <> ?", after.Email, acct.ID).Count(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("another account has the email %s: %w", after.Email, ErrDuplicate)
		}
		if _, err := t.tx.NewUpdate().Model((*User)(nil)).Set("email = ?", after.Email).Set("updated_at = ?", t.s.nowMS()).
			Where("id = ?", acct.ID).Exec(ctx); err != nil {
			return err
		}
		if err := t.s.insertAudit(ctx, t.tx, t.a, Event{Action: ActionUserUpdate, Target: after.Email,
			Detail: map[string]any{"before": map[string]any{"email": acct.Email}, "after": map[string]any{"email": after.Email}}}); err != nil {
			return err
		}
		acct.Email = after.Email
	}
	if after.Name != acct.Name {
		if err := t.setName(ctx, acct, after.Name); err != nil {
			return err
		}
	}
	if after.UserName != before.UserName || after.ExternalID != before.ExternalID ||
		after.GivenName != before.GivenName || after.FamilyName != before.FamilyName {
		if !strings.EqualFold(after.UserName, before.UserName) {
			if err := t.userNameTaken(ctx, after.UserName, acct.ID); err != nil {
				return err
			}
		}
		if _, err := t.tx.NewUpdate().Model((*SCIMUserRow)(nil)).Set("user_name = ?", after.UserName).
			Set("user_name_key = ?", strings.ToLower(after.UserName)).Set("external_id = ?", after.ExternalID).
			Set("given_name = ?", after.GivenName).Set("family_name = ?", after.FamilyName).
			Set("updated_at = ?", t.s.nowMS()).Where("user_id = ?", acct.ID).Exec(ctx); err != nil {
			return err
		}
		if err := t.s.insertAudit(ctx, t.tx, t.a, Event{Action: ActionSCIMUserUpdate, Target: acct.Email, Detail: map[string]any{
			"before": map[string]any{"userName": before.UserName, "externalId": before.ExternalID, "givenName": before.GivenName, "familyName": before.FamilyName},
			"after":  map[string]any{"userName": after.UserName, "externalId": after.ExternalID, "givenName": after.GivenName, "familyName": after.FamilyName}}}); err != nil {
			return err
		}
	}
	if after.Active != acct.IsActive {
		return t.s.setActive(ctx, t.tx, t.a, acct.ID, after.Active)
	}
	return nil
}

// DeleteUser deactivates a user the IdP manages (sessions end, open pages
// and apps are cut) and stops managing it: it leaves its pushed groups,
// so memberships they fed go, SCIM no longer shows it and its userName is
// free. The account, its manual memberships and its history stay, and
// the IdP creating the person again takes the account back.
func (t *SCIMTx) DeleteUser(ctx context.Context, id int64) error {
	u, err := t.User(ctx, id)
	if err != nil {
		return err
	}
	if err := t.s.setActive(ctx, t.tx, t.a, id, false); err != nil {
		return err
	}
	for _, g := range u.Groups {
		if t.mapped[g.Display] {
			t.resync[id] = true
		}
	}
	if _, err := t.tx.NewDelete().Model((*SCIMMemberRow)(nil)).Where("user_id = ?", id).Exec(ctx); err != nil {
		return err
	}
	if _, err := t.tx.NewUpdate().Model((*SCIMUserRow)(nil)).Set("deleted_at = ?", t.s.nowMS()).Where("user_id = ?", id).Exec(ctx); err != nil {
		return err
	}
	return t.s.insertAudit(ctx, t.tx, t.a, Event{Action: ActionSCIMUserDelete, Target: u.Email,
		Detail: map[string]any{"before": map[string]any{"userName": u.UserName, "externalId": u.ExternalID}}})
}

func (t *SCIMTx) displayNameTaken(ctx context.Context, name string, except int64) error {
	n, err := t.tx.NewSelect().Model((*SCIMGroupRow)(nil)).Where("display_name_key = ? AND id <> ?", strings.ToLower(name), except).Count(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("a group named %q exists: %w", name, ErrDuplicate)
	}
	return nil
}

// checkMembers fails with ErrSCIMUnknownMember unless every member is a
// user the IdP manages.
func (t *SCIMTx) checkMembers(ctx context.Context, members []SCIMRef) error {
	if len(members) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(members))
	for _, m := range members {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var found []int64
	for chunk := range slices.Chunk(ids, 500) {
		var part []int64
		if err := t.tx.NewSelect().Model((*SCIMUserRow)(nil)).Column("user_id").Where("user_id IN (?) AND deleted_at IS NULL", bun.In(chunk)).Scan(ctx, &part); err != nil {
			return err
		}
		found = append(found, part...)
	}
	if len(found) == len(ids) {
		return nil
	}
	slices.Sort(found)
	for _, id := range ids {
		if _, ok := slices.BinarySearch(found, id); !ok {
			return fmt.Errorf("member %d: %w", id, ErrSCIMUnknownMember)
		}
	}
	return nil
}

// CreateGroup stores a pushed group with its members. ErrDuplicate when a
// group has the display name (ignoring case); ErrSCIMUnknownMember when a
// member is not a user the IdP manages.
func (t *SCIMTx) CreateGroup(ctx context.Context, g SCIMGroup) (SCIMGroup, error) {
	if err := t.displayNameTaken(ctx, g.DisplayName, 0); err != nil {
		return SCIMGroup{}, err
	}
	if err := t.checkMembers(ctx, g.Members); err != nil {
		return SCIMGroup{}, err
	}
	now := t.s.nowMS()
	row := SCIMGroupRow{DisplayName: g.DisplayName, DisplayNameKey: strings.ToLower(g.DisplayName), ExternalID: g.ExternalID, CreatedAt: now, UpdatedAt: now}
	if _, err := t.tx.NewInsert().Model(&row).Exec(ctx); err != nil {
		return SCIMGroup{}, err
	}
	added, err := t.setMembers(ctx, row.ID, row.DisplayName, nil, g.Members)
	if err != nil {
		return SCIMGroup{}, err
	}
	if err := t.s.insertAudit(ctx, t.tx, t.a, Event{Action: ActionSCIMGroupCreate, Target: row.DisplayName, Detail: map[string]any{
		"after": map[string]any{"displayName": row.DisplayName, "externalId": row.ExternalID, "members_added": added}}}); err != nil {
		return SCIMGroup{}, err
	}
	return t.Group(ctx, row.ID)
}

// auditedNames is how many member names one audit row lists; the counts
// are always exact.
const auditedNames = 50

// setMembers makes a group's members go from before to after, marking
// the users whose memberships a mapping of the group's name may change.
// It returns what it added and removed for the audit row.
func (t *SCIMTx) setMembers(ctx context.Context, groupID int64, name string, before, after []SCIMRef) (map[string]any, error) {
	had := map[int64]bool{}
	for _, m := range before {
		had[m.ID] = true
	}
	want := map[int64]bool{}
	var add, remove []int64
	for _, m := range after {
		if !want[m.ID] && !had[m.ID] {
			add = append(add, m.ID)
		}
		want[m.ID] = true
	}
	for _, m := range before {
		if !want[m.ID] {
			remove = append(remove, m.ID)
		}
	}
	if len(add) == 0 && len(remove) == 0 {
		return nil, nil
	}
	for chunk := range slices.Chunk(add, 500) {
		rows := make([]SCIMMemberRow, len(chunk))
		for i, id := range chunk {
			rows[i] = SCIMMemberRow{GroupID: groupID, UserID: id}
		}
		if _, err := t.tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
			return nil, err
		}
	}
	for chunk := range slices.Chunk(remove, 500) {
		if _, err := t.tx.NewDelete().Model((*SCIMMemberRow)(nil)).Where("group_id = ? AND user_id IN (?)", groupID, bun.In(chunk)).Exec(ctx); err != nil {
			return nil, err
		}
	}
	if t.mapped[name] {
		for _, id := range add {
			t.resync[id] = true
		}
		for _, id := range remove {
			t.resync[id] = true
		}
	}
	detail := map[string]any{"added": len(add), "removed": len(remove)}
	names, err := t.userNames(ctx, add)
	if err != nil {
		return nil, err
	}
	detail["added_users"] = names
	if names, err = t.userNames(ctx, remove); err != nil {
		return nil, err
	}
	detail["removed_users"] = names
	return detail, nil
}

// userNames returns the userNames of up to auditedNames of ids.
func (t *SCIMTx) userNames(ctx context.Context, ids []int64) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	ids = ids[:min(len(ids), auditedNames)]
	var out []string
	err := t.tx.NewSelect().Model((*SCIMUserRow)(nil)).Column("user_name").Where("user_id IN (?)", bun.In(ids)).Order("user_name").Scan(ctx, &out)
	return out, err
}

// SaveGroup writes what changed from before (as read in this transaction)
// to after: display name, externalId and members. A new display name is a
// new IdP group name: every member's mapped memberships follow it.
func (t *SCIMTx) SaveGroup(ctx context.Context, before, after SCIMGroup) error {
	renamed := after.DisplayName != before.DisplayName
	if renamed && !strings.EqualFold(after.DisplayName, before.DisplayName) {
		if err := t.displayNameTaken(ctx, after.DisplayName, before.ID); err != nil {
			return err
		}
	}
	if err := t.checkMembers(ctx, after.Members); err != nil {
		return err
	}
	detail := map[string]any{}
	if renamed || after.ExternalID != before.ExternalID {
		if _, err := t.tx.NewUpdate().Model((*SCIMGroupRow)(nil)).Set("display_name = ?", after.DisplayName).
			Set("display_name_key = ?", strings.ToLower(after.DisplayName)).Set("external_id = ?", after.ExternalID).
			Set("updated_at = ?", t.s.nowMS()).Where("id = ?", before.ID).Exec(ctx); err != nil {
			return err
		}
		detail["before"] = map[string]any{"displayName": before.DisplayName, "externalId": before.ExternalID}
		detail["after"] = map[string]any{"displayName": after.DisplayName, "externalId": after.ExternalID}
		if renamed && (t.mapped[before.DisplayName] || t.mapped[after.DisplayName]) {
			t.gone = append(t.gone, before.DisplayName)
			for _, m := range before.Members {
				t.resync[m.ID] = true
			}
		}
	}
	members, err := t.setMembers(ctx, before.ID, after.DisplayName, before.Members, after.Members)
	if err != nil {
		return err
	}
	if members != nil {
		detail["members"] = members
		if _, err := t.tx.NewUpdate().Model((*SCIMGroupRow)(nil)).Set("updated_at = ?", t.s.nowMS()).Where("id = ?", before.ID).Exec(ctx); err != nil {
			return err
		}
	}
	if len(detail) == 0 {
		return nil
	}
	return t.s.insertAudit(ctx, t.tx, t.a, Event{Action: ActionSCIMGroupUpdate, Target: after.DisplayName, Detail: detail})
}

// DeleteGroup removes a pushed group: its members lose the memberships it
// fed, as if the IdP's groups claim no longer named it.
func (t *SCIMTx) DeleteGroup(ctx context.Context, id int64) error {
	g, err := t.Group(ctx, id)
	if err != nil {
		return err
	}
	if t.mapped[g.DisplayName] {
		t.gone = append(t.gone, g.DisplayName)
		for _, m := range g.Members {
			t.resync[m.ID] = true
		}
	}
	if _, err := t.tx.NewDelete().Model((*SCIMGroupRow)(nil)).Where("id = ?", id).Exec(ctx); err != nil {
		return err
	}
	return t.s.insertAudit(ctx, t.tx, t.a, Event{Action: ActionSCIMGroupDelete, Target: g.DisplayName,
		Detail: map[string]any{"before": map[string]any{"displayName": g.DisplayName, "externalId": g.ExternalID, "members": len(g.Members)}}})
}

// syncPushedMembers makes the members of the pushed group named idpGroup
// follow a mapping just added, in tx.
func (s *Store) syncPushedMembers(ctx context.Context, tx bun.Tx, a Actor, idpGroup string) error {
	var ids []int64
	if err := tx.NewSelect().TableExpr("scim_members AS m").Join("JOIN scim_groups AS g ON g.id = m.group_id").
		ColumnExpr("m.user_id").Where("g.display_name = ?", idpGroup).OrderExpr("m.user_id").Scan(ctx, &ids); err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.syncSCIMUser(ctx, tx, a, id, nil); err != nil {
			return err
		}
	}
	return nil
}
