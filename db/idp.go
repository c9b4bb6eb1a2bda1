package db

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/uptrace/bun"
)

// Membership sources: who put a user in a group.
const (
	// SourceManual is an admin, a manager, the CLI or an approved request.
	SourceManual = "manual"
	// SourceIdP is group sync from the identity provider: it adds and removes
	// only these.
	SourceIdP = "idp"
)

// Audit actions for sign-in with an identity provider.
const (
	ActionSSOFailed    = "login.sso.failed" // a refused SSO sign-in (detail: reason)
	ActionUserLink     = "user.link"        // a user linked to an IdP account
	ActionGroupMap     = "group.map"        // an IdP group now feeds a group
	ActionGroupUnmap   = "group.unmap"      // an IdP group no longer feeds a group
	ActionSessionEnded = "session.recheck"  // the IdP refused a re-check; the session ended
)

// Refusals of an SSO sign-in. Each leaves the database unchanged.
var (
	ErrEmailUnverified = errors.New("the identity provider has not verified this email address")
	ErrNoAccount       = errors.New("no Gatehouse account for this email, and its domain may not sign up")
	ErrDeactivated     = errors.New("the account is deactivated")
	ErrLinkedElsewhere = errors.New("the account is already linked to another account at this identity provider")
	ErrLinkRefused     = errors.New("an account has this email and is not linked to this identity provider account, and linking by email is off")
)

// MaxIdPGroupLen bounds an IdP group name (Entra ID uses 36-character ids,
// Keycloak full paths).
const MaxIdPGroupLen = 256

// CleanIdPGroup validates an IdP group name: trimmed, 1–256 characters,
// no control characters. Matching is exact (case matters).
func CleanIdPGroup(name string) (string, error) {
	return CleanName("IdP group", name, 1, MaxIdPGroupLen)
}

// UserIdentity links a user to an account at an identity provider.
type UserIdentity struct {
	bun.BaseModel `bun:"table:user_identities"`

	Issuer      string `bun:"issuer,pk"`
	Subject     string `bun:"subject,pk"`
	UserID      int64  `bun:"user_id,notnull"`
	Email       string `bun:"email,notnull"`
	CreatedAt   int64  `bun:"created_at,notnull"`
	LastLoginAt int64  `bun:"last_login_at,nullzero"`
}

// IdPGroupMapping makes an IdP group feed a Gatehouse group.
type IdPGroupMapping struct {
	bun.BaseModel `bun:"table:idp_group_mappings"`

	GroupID   int64  `bun:"group_id,pk"`
	IdPGroup  string `bun:"idp_group,pk"`
	CreatedAt int64  `bun:"created_at,notnull"`
}

// OIDCSession is the IdP side of a session signed in with SSO: what the
// periodic re-check needs when the IdP returned a refresh token (without
// one, RefreshToken is empty and the session is never due).
type OIDCSession struct {
	bun.BaseModel `bun:"table:oidc_sessions"`

	SessionHash  string `bun:"session_hash,pk"`
	UserID       int64  `bun:"user_id,notnull"`
	Issuer       string `bun:"issuer,notnull"`
	Subject      string `bun:"subject,notnull"`
	RefreshToken string `bun:"refresh_token,notnull"`
	NextCheckAt  int64  `bun:"next_check_at,notnull"`
	CreatedAt    int64  `bun:"created_at,notnull"`
}

// IdPIdentity is what a verified ID token (and the userinfo endpoint) say
// about the person signing in.
type IdPIdentity struct {
	Issuer        string
	Subject       string
	Email         string // as the IdP sent it; compared case-insensitively
	EmailVerified bool
	Name          string
	// Groups are the IdP's group names for the person; SyncGroups says
	// whether to apply them to mapped groups.
	Groups     []string
	SyncGroups bool
}

// SSOPolicy says who may be created at a first sign-in.
type SSOPolicy struct {
	// Domains lists the email domains whose unknown users are created
	// (lower case); empty: only existing users may sign in. It never
	// applies to existing users.
	Domains []string
	// NoEmailLink refuses (ErrLinkRefused) to link an existing user to an
	// IdP account by its email: only users already linked, and new ones,
	// may sign in (--oidc-link=never).
	NoEmailLink bool
}

// SSOResult says what a sign-in did.
type SSOResult struct {
	User    User
	Created bool // the user was created
	Linked  bool // an existing user was linked to the IdP account
	Sync    GroupSync
}

// GroupSync lists the memberships a sync added and removed (group names).
type GroupSync struct {
	Added   []string
	Removed []string
}

// SignInWithIdP finds the user for an IdP account, linking an existing user
// by verified email (unless p.NoEmailLink) or creating one in an allowed domain at the first
// sign-in, refuses deactivated users, and syncs the memberships of mapped
// groups with id.Groups: all in one transaction, so a refusal (one of the
// Err* refusals above) or a fault changes nothing. The caller records the
// login itself (RecordLogin) once the session exists.
func (s *Store) SignInWithIdP(ctx context.Context, a Actor, id IdPIdentity, p SSOPolicy) (SSOResult, error) {
	var res SSOResult
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res = SSOResult{}
		now := s.nowMS()
		email := strings.ToLower(strings.TrimSpace(id.Email))
		var ident UserIdentity
		err := tx.NewSelect().Model(&ident).Where("issuer = ? AND subject = ?", id.Issuer, id.Subject).Limit(1).Scan(ctx)
		switch err = storageErr(err); {
		case err == nil:
			if res.User, err = lockUser(ctx, tx, ident.UserID); err != nil {
				return err
			}
		case !errors.Is(err, ErrNotFound):
			return err
		case !id.EmailVerified:
			return ErrEmailUnverified
		default:
			normalized, nerr := NormalizeEmail(email)
			if nerr != nil {
				return ErrEmailUnverified
			}
			email = normalized
			err := tx.NewSelect().Model(&res.User).Where("email = ?", email).Limit(1).Scan(ctx)
			switch err = storageErr(err); {
			case err == nil:
				if !res.User.IsActive {
					return ErrDeactivated
				}
				n, err := tx.NewSelect().Model((*UserIdentity)(nil)).Where("user_id = ? AND issuer = ?", res.User.ID, id.Issuer).Count(ctx)
				if err != nil {
					return err
				}
				if n > 0 {
					return ErrLinkedElsewhere
				}
				if p.NoEmailLink {
					return ErrLinkRefused
				}
				res.Linked = true
				detail := map[string]any{"issuer": id.Issuer, "subject": id.Subject}
				if res.User.EmailPending {
					// An unconfirmed sign-up was typed by whoever knew the
					// address, perhaps not its owner, who is the one the IdP
					// vouches for: it becomes the owner's, without the
					// sign-up's password, links and the name it was given.
					name, _ := CleanName("name", id.Name, 0, 100)
					if err := discardSignup(ctx, tx, res.User.ID, name, now); err != nil {
						return err
					}
					res.User.EmailPending, res.User.PasswordHash, res.User.MustChangePassword, res.User.Name = false, "", false, name
					detail["unconfirmed_signup"] = "password and links discarded"
				}
				if err := s.insertAudit(ctx, tx, a, Event{Action: ActionUserLink, Target: email, Detail: detail}); err != nil {
					return err
				}
			case !errors.Is(err, ErrNotFound):
				return err
			case !slices.Contains(p.Domains, email[strings.LastIndexByte(email, '@')+1:]):
				return ErrNoAccount
			default:
				name, _ := CleanName("name", id.Name, 0, 100)
				res.User = User{Email: email, Name: name, IsActive: true, CreatedAt: now, UpdatedAt: now}
				if _, err := tx.NewInsert().Model(&res.User).Exec(ctx); err != nil {
					return err
				}
				res.Created = true
				if err := s.insertAudit(ctx, tx, a, Event{Action: ActionUserCreate, Target: email,
					Detail: map[string]any{"after": map[string]any{"name": name, "admin": false, "source": SourceIdP, "issuer": id.Issuer}}}); err != nil {
					return err
				}
			}
			ident = UserIdentity{Issuer: id.Issuer, Subject: id.Subject, UserID: res.User.ID, CreatedAt: now}
			if _, err := tx.NewInsert().Model(&ident).Exec(ctx); err != nil {
				return err
			}
		}
		if !res.User.IsActive {
			return ErrDeactivated
		}
		if _, err := tx.NewUpdate().Model((*UserIdentity)(nil)).Set("email = ?", truncate(email, 254)).Set("last_login_at = ?", now).
			Where("issuer = ? AND subject = ?", id.Issuer, id.Subject).Exec(ctx); err != nil {
			return err
		}
		if !id.SyncGroups {
			// err still holds the identity lookup's answer (ErrNotFound at
			// a first sign-in): it must not end the transaction.
			return nil
		}
		res.Sync, err = s.syncIdPGroups(ctx, tx, a, res.User, id.Groups)
		return err
	})
	return res, err
}

// discardSignup makes an unconfirmed sign-up an account without a password,
// named name: it is no longer pending, its password is gone, and every
// emailed link and session of it ends, inside tx. A confirmation link of the
// old sign-up then does nothing.
func discardSignup(ctx context.Context, tx bun.Tx, userID int64, name string, now int64) error {
	if _, err := tx.NewUpdate().Model((*User)(nil)).Set("email_pending = FALSE").Set("password_hash = ''").Set("name = ?", name).
		Set("must_change_password = FALSE").Set("updated_at = ?", now).Where("id = ?", userID).Exec(ctx); err != nil {
		return err
	}
	if _, err := tx.NewDelete().Model((*MailToken)(nil)).Where("user_id = ?", userID).Exec(ctx); err != nil {
		return err
	}
	_, err := tx.NewDelete().Model((*SessionRow)(nil)).Where("user_id = ?", userID).Exec(ctx)
	return err
}

// SyncIdPGroups sets userID's memberships in mapped groups to match the
// IdP's groups (the periodic re-check), in one transaction.
func (s *Store) SyncIdPGroups(ctx context.Context, a Actor, userID int64, groups []string) (GroupSync, error) {
	var sync GroupSync
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		u, err := lockUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		sync, err = s.syncIdPGroups(ctx, tx, a, u, groups)
		return err
	})
	return sync, err
}

// syncIdPGroups makes u's memberships in mapped groups follow idpGroups:
// a mapped group fed by one of them gains u (source "idp"); one fed by none
// loses u's "idp" membership. Manual memberships and unmapped groups are
// never touched. Every change is audited with source "idp".
func (s *Store) syncIdPGroups(ctx context.Context, tx bun.Tx, a Actor, u User, idpGroups []string) (GroupSync, error) {
	var sync GroupSync
	var rows []struct {
		GroupID  int64  `bun:"group_id"`
		Name     string `bun:"name"`
		IdPGroup string `bun:"idp_group"`
	}
	if err := tx.NewSelect().TableExpr("idp_group_mappings AS mp").Join("JOIN groups AS g ON g.id = mp.group_id").
		ColumnExpr("mp.group_id, g.name, mp.idp_group").OrderExpr("g.name_key, mp.idp_group").Scan(ctx, &rows); err != nil {
		return sync, err
	}
	if len(rows) == 0 {
		return sync, nil
	}
	type mapped struct {
		name  string
		feeds []string // the user's IdP groups that feed it
	}
	var order []int64
	groups := map[int64]*mapped{}
	for _, r := range rows {
		g := groups[r.GroupID]
		if g == nil {
			g = &mapped{name: r.Name}
			groups[r.GroupID] = g
			order = append(order, r.GroupID)
		}
		if slices.Contains(idpGroups, r.IdPGroup) {
			g.feeds = append(g.feeds, r.IdPGroup)
		}
	}
	var current []Membership
	if err := tx.NewSelect().Model(&current).Where("user_id = ?", u.ID).Where("group_id IN (?)", bun.In(order)).Scan(ctx); err != nil {
		return sync, err
	}
	have := map[int64]Membership{}
	for _, m := range current {
		have[m.GroupID] = m
	}
	now := s.nowMS()
	for _, gid := range order {
		g := groups[gid]
		m, member := have[gid]
		target := g.name + " / " + u.Email
		switch {
		case len(g.feeds) > 0 && !member:
			nm := &Membership{GroupID: gid, UserID: u.ID, CreatedAt: now, Source: SourceIdP, IdPGroup: g.feeds[0]}
			if _, err := tx.NewInsert().Model(nm).Exec(ctx); err != nil {
				return sync, err
			}
			sync.Added = append(sync.Added, g.name)
			if err := s.insertAudit(ctx, tx, a, Event{Action: ActionMemberAdd, Target: target, Detail: map[string]any{
				"after": map[string]any{"group": g.name, "user": u.Email, "source": SourceIdP, "idp_group": g.feeds[0]}}}); err != nil {
				return sync, err
			}
		case len(g.feeds) > 0 && m.Source == SourceIdP && !slices.Contains(g.feeds, m.IdPGroup):
			// Still a member, now through another IdP group: say which.
			if _, err := tx.NewUpdate().Model((*Membership)(nil)).Set("idp_group = ?", g.feeds[0]).
				Where("group_id = ? AND user_id = ?", gid, u.ID).Exec(ctx); err != nil {
				return sync, err
			}
			if err := s.insertAudit(ctx, tx, a, Event{Action: ActionMemberAdd, Target: target, Detail: map[string]any{
				"before": map[string]any{"source": SourceIdP, "idp_group": m.IdPGroup},
				"after":  map[string]any{"group": g.name, "user": u.Email, "source": SourceIdP, "idp_group": g.feeds[0]}}}); err != nil {
				return sync, err
			}
		case len(g.feeds) == 0 && member && m.Source == SourceIdP:
			if _, err := tx.NewDelete().Model((*Membership)(nil)).Where("group_id = ? AND user_id = ?", gid, u.ID).Exec(ctx); err != nil {
				return sync, err
			}
			sync.Removed = append(sync.Removed, g.name)
			if err := s.insertAudit(ctx, tx, a, Event{Action: ActionMemberRemove, Target: target, Detail: map[string]any{
				"before": map[string]any{"group": g.name, "user": u.Email, "source": SourceIdP, "idp_group": m.IdPGroup}}}); err != nil {
				return sync, err
			}
		}
	}
	return sync, nil
}

// MapIdPGroup makes idpGroup feed a group from the next SSO sign-in on,
// and at once for the members of the pushed SCIM group of that name.
// ErrDuplicate when it already does.
func (s *Store) MapIdPGroup(ctx context.Context, a Actor, groupID int64, idpGroup string) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		g, err := groupByID(ctx, tx, groupID)
		if err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(&IdPGroupMapping{GroupID: groupID, IdPGroup: idpGroup, CreatedAt: s.nowMS()}).Exec(ctx); err != nil {
			return err
		}
		if err := s.insertAudit(ctx, tx, a, Event{Action: ActionGroupMap, Target: g.Name + " ← " + idpGroup,
			Detail: map[string]any{"after": map[string]any{"group": g.Name, "idp_group": idpGroup}}}); err != nil {
			return err
		}
		// The members SCIM already pushed in idpGroup join now, not at
		// their next sign-in.
		return s.syncPushedMembers(ctx, tx, a, idpGroup)
	})
}

// UnmapIdPGroup stops idpGroup feeding a group. Memberships it added stay
// (marked "idp") until removed by hand or, while another IdP group still
// feeds the group, until the member's next sign-in. ErrNotFound when it
// was not mapped.
func (s *Store) UnmapIdPGroup(ctx context.Context, a Actor, groupID int64, idpGroup string) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		g, err := groupByID(ctx, tx, groupID)
		if err != nil {
			return err
		}
		res, err := tx.NewDelete().Model((*IdPGroupMapping)(nil)).Where("group_id = ? AND idp_group = ?", groupID, idpGroup).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%q does not feed %s: %w", idpGroup, g.Name, ErrNotFound)
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionGroupUnmap, Target: g.Name + " ← " + idpGroup,
			Detail: map[string]any{"before": map[string]any{"group": g.Name, "idp_group": idpGroup}}})
	})
}

// IdPGroupsOf returns the IdP groups that feed a group, in order.
func (s *Store) IdPGroupsOf(ctx context.Context, groupID int64) ([]string, error) {
	var out []string
	err := s.DB.NewSelect().Model((*IdPGroupMapping)(nil)).Column("idp_group").Where("group_id = ?", groupID).
		Order("idp_group").Scan(ctx, &out)
	return out, storageErr(err)
}

// IdPMappingRow is one mapping with its group's name.
type IdPMappingRow struct {
	GroupID   int64  `bun:"group_id"`
	GroupName string `bun:"group_name"`
	IdPGroup  string `bun:"idp_group"`
}

// ListIdPMappings returns every mapping, ordered by group and IdP group.
func (s *Store) ListIdPMappings(ctx context.Context) ([]IdPMappingRow, error) {
	var out []IdPMappingRow
	err := s.DB.NewSelect().TableExpr("idp_group_mappings AS mp").Join("JOIN groups AS g ON g.id = mp.group_id").
		ColumnExpr("mp.group_id, g.name AS group_name, mp.idp_group").OrderExpr("g.name_key, mp.idp_group").Scan(ctx, &out)
	return out, storageErr(err)
}

// IdentitiesOf returns a user's links to IdP accounts.
func (s *Store) IdentitiesOf(ctx context.Context, userID int64) ([]UserIdentity, error) {
	var out []UserIdentity
	err := s.DB.NewSelect().Model(&out).Where("user_id = ?", userID).Order("issuer").Scan(ctx)
	return out, storageErr(err)
}

// SaveOIDCSession stores the IdP side of a new SSO session.
func (s *Store) SaveOIDCSession(ctx context.Context, o OIDCSession) error {
	markWrite(ctx)
	o.CreatedAt = s.nowMS()
	_, err := s.DB.NewInsert().Model(&o).Exec(ctx)
	return storageErr(err)
}

// ClaimOIDCRecheck takes the re-check of a session that is due at now: it
// moves next_check_at to next only if it is still due, so of several
// requests or instances exactly one re-checks. ok is false when the session
// has no IdP side or another one took it.
func (s *Store) ClaimOIDCRecheck(ctx context.Context, sessionHash string, next int64) (o OIDCSession, ok bool, err error) {
	err = s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		now := s.nowMS()
		res, err := tx.NewUpdate().Model((*OIDCSession)(nil)).Set("next_check_at = ?", next).
			Where("session_hash = ? AND next_check_at <= ? AND refresh_token <> ''", sessionHash, now).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		ok = true
		return tx.NewSelect().Model(&o).Where("session_hash = ?", sessionHash).Limit(1).Scan(ctx)
	})
	return o, ok, err
}

// UpdateOIDCSession stores a session's new refresh token (the IdP may
// rotate it) and when it is next due.
func (s *Store) UpdateOIDCSession(ctx context.Context, sessionHash, refreshToken string, next int64) error {
	markWrite(ctx)
	q := s.DB.NewUpdate().Model((*OIDCSession)(nil)).Set("next_check_at = ?", next).Where("session_hash = ?", sessionHash)
	if refreshToken != "" {
		q = q.Set("refresh_token = ?", refreshToken)
	}
	_, err := q.Exec(ctx)
	return storageErr(err)
}

// OIDCNextCheck returns when a session's IdP side is next due for a
// re-check; found is false when the session has none.
func (s *Store) OIDCNextCheck(ctx context.Context, sessionHash string) (next int64, found bool, err error) {
	err = s.DB.NewSelect().Model((*OIDCSession)(nil)).Column("next_check_at").Where("session_hash = ?", sessionHash).
		Limit(1).Scan(ctx, &next)
	if err = storageErr(err); errors.Is(err, ErrNotFound) {
		return 0, false, nil
	}
	return next, err == nil, err
}
