package db

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// Audit actions for user changes.
const (
	ActionUserCreate     = "user.create"
	ActionUserDeactivate = "user.deactivate"
	ActionUserActivate   = "user.activate"
	ActionUserPromote    = "user.promote"
	ActionUserDemote     = "user.demote"
	ActionUserUpdate     = "user.update"
)

// NormalizeEmail trims and lower-cases an email address and checks its
// form, returning a user-facing error for a bad one. A single-label domain
// (carol@corp, an intranet's mail) is an address like any other here; the
// public sign-up form refuses it unless --signup-domains lists it.
func NormalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", errors.New("email is required")
	}
	if len(s) > 254 || !utf8.ValidString(s) {
		return "", errors.New("email is too long")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return "", fmt.Errorf("%q is not a valid email address", s)
	}
	return s, nil
}

// CleanName trims a display or group name and checks its length and
// characters, returning a user-facing error.
func CleanName(what, s string, min, max int) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%s contains invalid characters", what)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("%s must not contain control characters", what)
		}
	}
	n := utf8.RuneCountInString(s)
	if n < min {
		if min == 1 {
			return "", fmt.Errorf("%s is required", what)
		}
		return "", fmt.Errorf("%s must be at least %d characters", what, min)
	}
	if n > max {
		return "", fmt.Errorf("%s must be at most %d characters", what, max)
	}
	return s, nil
}

// NewUser describes a user to create; Email must already be normalized.
type NewUser struct {
	Email              string
	Name               string
	PasswordHash       string
	IsAdmin            bool
	MustChangePassword bool
}

// CreateUser inserts a user and audits it in the same transaction. It
// returns ErrDuplicate when the email is taken.
func (s *Store) CreateUser(ctx context.Context, a Actor, nu NewUser) (User, error) {
	now := s.nowMS()
	u := User{Email: nu.Email, Name: nu.Name, PasswordHash: nu.PasswordHash, IsAdmin: nu.IsAdmin,
		IsActive: true, MustChangePassword: nu.MustChangePassword, CreatedAt: now, UpdatedAt: now}
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&u).Exec(ctx); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionUserCreate, Target: u.Email,
			Detail: map[string]any{"after": map[string]any{"name": u.Name, "admin": u.IsAdmin}}})
	})
	return u, err
}

// UserByEmail finds a user by email (case-insensitive).
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	var u User
	err := s.DB.NewSelect().Model(&u).Where("email = ?", strings.ToLower(strings.TrimSpace(email))).Limit(1).Scan(ctx)
	return u, storageErr(err)
}

// UserByID finds a user by id.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	var u User
	err := s.DB.NewSelect().Model(&u).Where("id = ?", id).Limit(1).Scan(ctx)
	return u, storageErr(err)
}

// CountActiveAdmins counts active admins.
func (s *Store) CountActiveAdmins(ctx context.Context) (int, error) {
	n, err := s.DB.NewSelect().Model((*User)(nil)).Where("is_admin AND is_active").Count(ctx)
	return int(n), storageErr(err)
}

// UserFilter narrows ListUsers.
type UserFilter struct {
	Search   string // substring of email or name
	GroupID  int64  // only members of this group
	Admin    bool   // only admins
	Inactive bool   // only deactivated users
	Limit    int
	Offset   int
}

// ListUsers returns users ordered by email, and the total matching.
func (s *Store) ListUsers(ctx context.Context, f UserFilter) ([]User, int, error) {
	var users []User
	q := s.DB.NewSelect().Model(&users)
	if f.Search != "" {
		like := "%" + escapeLike(strings.ToLower(f.Search)) + "%"
		q = q.WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where("email LIKE ? ESCAPE '\\'", like).WhereOr("lower(name) LIKE ? ESCAPE '\\'", like)
		})
	}
	if f.GroupID != 0 {
		q = q.Where("id IN (SELECT user_id FROM memberships WHERE group_id = ?)", f.GroupID)
	}
	if f.Admin {
		q = q.Where("is_admin")
	}
	if f.Inactive {
		q = q.Where("NOT is_active")
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	total, err := q.Order("email").Limit(int64(f.Limit)).Offset(int64(f.Offset)).ScanAndCount(ctx)
	return users, int(total), storageErr(err)
}

// SetPassword replaces a user's password hash and revokes all their
// sessions, in one transaction. mustChange marks a temporary password.
func (s *Store) SetPassword(ctx context.Context, a Actor, userID int64, hash string, mustChange bool) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		u, err := lockUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		if _, err := tx.NewUpdate().Model((*User)(nil)).
			Set("password_hash = ?", hash).Set("must_change_password = ?", mustChange).
			Set("updated_at = ?", s.nowMS()).Where("id = ?", userID).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.NewDelete().Model((*SessionRow)(nil)).Where("user_id = ?", userID).Exec(ctx); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionPasswordChange, Target: u.Email,
			Detail: map[string]any{"temporary": mustChange, "sessions_revoked": true}})
	})
}

// UpdatePasswordHash silently replaces a hash after a successful login with
// old parameters (a rehash); sessions are kept.
func (s *Store) UpdatePasswordHash(ctx context.Context, userID int64, oldHash, newHash string) error {
	markWrite(ctx)
	_, err := s.DB.NewUpdate().Model((*User)(nil)).Set("password_hash = ?", newHash).
		Where("id = ? AND password_hash = ?", userID, oldHash).Exec(ctx)
	return storageErr(err)
}

// SetActive activates or deactivates a user. Deactivation revokes all the
// user's sessions at once and refuses to remove the last active admin.
func (s *Store) SetActive(ctx context.Context, a Actor, userID int64, active bool) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		return s.setActive(ctx, tx, a, userID, active)
	})
}

// setActive is SetActive inside tx: the one deactivation path (the admin
// panel, the command line and SCIM), so every one of them ends the
// user's sessions and mail links, and the access feed cuts their open
// pages and app connections once tx commits.
func (s *Store) setActive(ctx context.Context, tx bun.Tx, a Actor, userID int64, active bool) error {
	if err := lockAdmins(ctx, tx); err != nil {
		return err
	}
	u, err := lockUser(ctx, tx, userID)
	if err != nil {
		return err
	}
	// Activating an unconfirmed sign-up confirms it: the admin vouches
	// for the address (the way out when mail is gone).
	confirm := active && u.EmailPending
	if u.IsActive == active && !confirm {
		return nil
	}
	if !active && u.IsAdmin {
		if err := ensureAnotherAdmin(ctx, tx, userID); err != nil {
			return err
		}
	}
	q := tx.NewUpdate().Model((*User)(nil)).Set("is_active = ?", active).Set("updated_at = ?", s.nowMS()).Where("id = ?", userID)
	if confirm {
		q = q.Set("email_pending = FALSE")
	}
	if _, err := q.Exec(ctx); err != nil {
		return err
	}
	action := ActionUserActivate
	if !active {
		action = ActionUserDeactivate
		if _, err := tx.NewDelete().Model((*SessionRow)(nil)).Where("user_id = ?", userID).Exec(ctx); err != nil {
			return err
		}
		if err := endMailLinks(ctx, tx, u); err != nil {
			return err
		}
	}
	before, after := map[string]any{"active": u.IsActive}, map[string]any{"active": active}
	if confirm {
		before["email_confirmed"], after["email_confirmed"] = false, true
	}
	return s.insertAudit(ctx, tx, a, Event{Action: action, Target: u.Email,
		Detail: map[string]any{"before": before, "after": after}})
}

// endMailLinks ends every emailed link of u (password reset, sign-up
// confirmation) inside tx, and the ones still waiting in the outbox, whose
// token would be made when they are sent: a link issued before a
// deactivation must not work after a reactivation.
func endMailLinks(ctx context.Context, tx bun.Tx, u User) error {
	if _, err := tx.NewDelete().Model((*MailToken)(nil)).Where("user_id = ?", u.ID).Exec(ctx); err != nil {
		return err
	}
	_, err := tx.NewUpdate().Model((*OutboxMessage)(nil)).Set("status = ?", MailSkipped).Set("claimed_until = 0").
		Set("last_error = ?", "the account was deactivated").
		Where("status = ?", MailPending).
		WhereGroup(" AND ", func(q *bun.UpdateQuery) *bun.UpdateQuery {
			return q.Where("kind = ? AND to_addr = ?", MailPasswordReset, u.Email).
				WhereOr("kind = ? AND ref_id = ?", MailSignupVerify, u.ID)
		}).Exec(ctx)
	return err
}

// SetAdmin promotes or demotes a user, refusing to demote the last active admin.
func (s *Store) SetAdmin(ctx context.Context, a Actor, userID int64, admin bool) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := lockAdmins(ctx, tx); err != nil {
			return err
		}
		u, err := lockUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		if u.IsAdmin == admin {
			return nil
		}
		if !admin && u.IsActive {
			if err := ensureAnotherAdmin(ctx, tx, userID); err != nil {
				return err
			}
		}
		if _, err := tx.NewUpdate().Model((*User)(nil)).Set("is_admin = ?", admin).
			Set("updated_at = ?", s.nowMS()).Where("id = ?", userID).Exec(ctx); err != nil {
			return err
		}
		action := ActionUserPromote
		if !admin {
			action = ActionUserDemote
		}
		return s.insertAudit(ctx, tx, a, Event{Action: action, Target: u.Email,
			Detail: map[string]any{"before": map[string]any{"admin": u.IsAdmin}, "after": map[string]any{"admin": admin}}})
	})
}

// UpdateUserName changes a user's display name.
func (s *Store) UpdateUserName(ctx context.Context, a Actor, userID int64, name string) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		u, err := lockUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		if u.Name == name {
			return nil
		}
		if _, err := tx.NewUpdate().Model((*User)(nil)).Set("name = ?", name).
			Set("updated_at = ?", s.nowMS()).Where("id = ?", userID).Exec(ctx); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionUserUpdate, Target: u.Email,
			Detail: map[string]any{"before": map[string]any{"name": u.Name}, "after": map[string]any{"name": name}}})
	})
}

// RecordLogin stamps a successful password login and audits it.
func (s *Store) RecordLogin(ctx context.Context, a Actor, userID int64) error {
	return s.RecordLoginVia(ctx, a, userID, "")
}

// RecordLoginVia is RecordLogin for a sign-in by another method than a
// password (e.g. "oidc"), which the audit row names.
func (s *Store) RecordLoginVia(ctx context.Context, a Actor, userID int64, method string) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewUpdate().Model((*User)(nil)).Set("last_login_at = ?", s.nowMS()).
			Where("id = ?", userID).Exec(ctx); err != nil {
			return err
		}
		ev := Event{Action: ActionLogin, Target: a.Email}
		if method != "" {
			ev.Detail = map[string]string{"method": method}
		}
		return s.insertAudit(ctx, tx, a, ev)
	})
}

func lockUser(ctx context.Context, tx bun.Tx, id int64) (User, error) {
	var u User
	q := tx.NewSelect().Model(&u).Where("id = ?", id).Limit(1)
	if tx.Dialect().Name() == dialect.PG {
		q = q.For("UPDATE")
	}
	if err := q.Scan(ctx); err != nil {
		return u, storageErr(err)
	}
	return u, nil
}

// ensureAnotherAdmin fails with ErrLastAdmin unless an active admin other
// than userID exists. Callers run it inside the write transaction after
// lockAdmins, so two admins demoting each other at once cannot both succeed
// (SQLite serializes writers; on PostgreSQL the advisory lock does, and the
// admin rows are locked too).
func ensureAnotherAdmin(ctx context.Context, tx bun.Tx, userID int64) error {
	q := tx.NewSelect().Model((*User)(nil)).Column("id").Where("is_admin AND is_active AND id <> ?", userID)
	if tx.Dialect().Name() == dialect.PG {
		q = q.For("UPDATE")
	}
	var ids []int64
	if err := q.Scan(ctx, &ids); err != nil {
		return err
	}
	if len(ids) == 0 {
		return ErrLastAdmin
	}
	return nil
}

// CleanText reports whether s is valid UTF-8 without a NUL byte; strict
// also refuses every other C0 and C1 control character and DEL.
func CleanText(s string, strict bool) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == 0 || strict && (c < 0x20 || c == 0x7f) {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		if strict && r >= 0x80 && r <= 0x9f {
			return false
		}
		i += size
	}
	return true
}
