package db

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// Outbox statuses. A message is pending until a worker sends it (sent),
// finds nothing to send (skipped: an unknown address asked for a reset, a
// request decided before its notice went out) or gives up (failed).
const (
	MailPending = "pending"
	MailSent    = "sent"
	MailSkipped = "skipped"
	MailFailed  = "failed"
)

// Outbox message kinds: what a message is about. Its text is rendered when
// it is sent, so a link's secret token never rests in the outbox.
const (
	MailPasswordReset  = "password.reset"  // to_addr: the address typed on the form
	MailSignupVerify   = "signup.verify"   // ref_id: the new user
	MailRequestCreated = "request.created" // ref_id: the request; to_addr: an admin or manager
	MailRequestDecided = "request.decided" // ref_id: the request; to_addr: the requester
	MailSignupExists   = "signup.exists"   // to_addr: an address that has an account and was used to sign up
)

// Email token purposes.
const (
	TokenReset  = "reset"
	TokenVerify = "verify"
)

// Audit actions for mail-driven account changes.
const (
	ActionPasswordForgot          = "password.forgot"
	ActionPasswordForgotThrottled = "password.forgot_throttled"
	ActionPasswordReset           = "password.reset"
	ActionEmailConfirm            = "user.confirm_email"
	ActionMailFailed              = "mail.failed"
	ActionSignupExisting          = "user.signup_existing"
)

// OutboxMessage is one mail to one address, waiting in or sent from the outbox.
type OutboxMessage struct {
	bun.BaseModel `bun:"table:mail_outbox"`

	ID            int64  `bun:"id,pk,autoincrement"`
	Kind          string `bun:"kind,notnull"`
	To            string `bun:"to_addr,notnull"`
	RefID         int64  `bun:"ref_id,notnull"`
	Status        string `bun:"status,notnull"`
	Attempts      int    `bun:"attempts,notnull"`
	CreatedAt     int64  `bun:"created_at,notnull"`
	NextAttemptAt int64  `bun:"next_attempt_at,notnull"`
	ClaimedBy     string `bun:"claimed_by,notnull"`
	ClaimedUntil  int64  `bun:"claimed_until,notnull"`
	SentAt        int64  `bun:"sent_at,nullzero"`
	LastError     string `bun:"last_error,notnull"`
}

// MailToken is the stored (hashed) half of a link sent by mail.
type MailToken struct {
	bun.BaseModel `bun:"table:mail_tokens"`

	TokenHash string `bun:"token_hash,pk"`
	UserID    int64  `bun:"user_id,notnull"`
	Purpose   string `bun:"purpose,notnull"`
	CreatedAt int64  `bun:"created_at,notnull"`
	ExpiresAt int64  `bun:"expires_at,notnull"`
}

// enqueueMail adds a message to the outbox inside tx, due now.
func (s *Store) enqueueMail(ctx context.Context, tx bun.IDB, kind, to string, ref int64) error {
	now := s.nowMS()
	_, err := tx.NewInsert().Model(&OutboxMessage{Kind: kind, To: to, RefID: ref, Status: MailPending,
		CreatedAt: now, NextAttemptAt: now}).Exec(ctx)
	return err
}

// RequestPasswordReset records that someone asked to reset the password of
// email, and queues the mail, in one transaction. It does exactly the same
// work whether or not an account has that address (it does not even look):
// the worker decides when it sends, so the answer to the form cannot tell
// them apart, by content or by time.
func (s *Store) RequestPasswordReset(ctx context.Context, a Actor, email string) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := s.enqueueMail(ctx, tx, MailPasswordReset, email, 0); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionPasswordForgot, Target: email})
	})
}

// ClaimMail leases up to limit due messages to owner for lease and counts
// the attempt. A message is claimed by one worker at a time: on PostgreSQL
// concurrent claimers skip each other's rows (FOR UPDATE SKIP LOCKED); on
// SQLite the write transaction serialises them. A worker that dies holding
// a lease delays its messages until the lease ends, then another sends them.
func (s *Store) ClaimMail(ctx context.Context, owner string, lease time.Duration, limit int) ([]OutboxMessage, error) {
	var msgs []OutboxMessage
	now := s.nowMS()
	// A read first: an idle outbox (the usual case) costs no write
	// transaction, so polling never queues behind or blocks SQLite writers.
	due, err := s.DB.NewSelect().Model((*OutboxMessage)(nil)).
		Where("status = ? AND next_attempt_at <= ? AND claimed_until <= ?", MailPending, now, now).Exists(ctx)
	if err != nil || !due {
		return nil, storageErr(err)
	}
	err = s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		q := tx.NewSelect().Model((*OutboxMessage)(nil)).Column("id").
			Where("status = ? AND next_attempt_at <= ? AND claimed_until <= ?", MailPending, now, now).
			Order("next_attempt_at", "id").Limit(int64(limit))
		if tx.Dialect().Name() == dialect.PG {
			q = q.For("UPDATE SKIP LOCKED")
		}
		var ids []int64
		if err := q.Scan(ctx, &ids); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		if _, err := tx.NewUpdate().Model((*OutboxMessage)(nil)).Set("claimed_by = ?", owner).
			Set("claimed_until = ?", now+lease.Milliseconds()).Set("attempts = attempts + 1").
			Where("id IN (?)", bun.In(ids)).Exec(ctx); err != nil {
			return err
		}
		return tx.NewSelect().Model(&msgs).Where("id IN (?)", bun.In(ids)).Order("next_attempt_at", "id").Scan(ctx)
	})
	return msgs, err
}

// FinishMail records the end of a claimed message (MailSent, MailSkipped or
// MailFailed) with an optional note. It reports false when owner no longer
// held the lease (another worker took the message over).
func (s *Store) FinishMail(ctx context.Context, id int64, owner, status, note string) (bool, error) {
	markWrite(ctx)
	now := s.nowMS()
	q := s.DB.NewUpdate().Model((*OutboxMessage)(nil)).Set("status = ?", status).Set("claimed_until = 0").
		Set("last_error = ?", clipText(note, 500)).Where("id = ? AND claimed_by = ? AND status = ?", id, owner, MailPending)
	if status == MailSent {
		q = q.Set("sent_at = ?", now)
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return false, storageErr(err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// RetryMail gives a claimed message back to the queue, due at next, with
// the error that stopped it.
func (s *Store) RetryMail(ctx context.Context, id int64, owner string, next time.Time, errText string) error {
	markWrite(ctx)
	_, err := s.DB.NewUpdate().Model((*OutboxMessage)(nil)).Set("claimed_until = 0").
		Set("next_attempt_at = ?", next.UnixMilli()).Set("last_error = ?", clipText(errText, 500)).
		Where("id = ? AND claimed_by = ? AND status = ?", id, owner, MailPending).Exec(ctx)
	return storageErr(err)
}

// ListMail returns outbox messages, newest first (kind "" for all kinds).
func (s *Store) ListMail(ctx context.Context, kind string, limit int) ([]OutboxMessage, error) {
	var msgs []OutboxMessage
	q := s.DB.NewSelect().Model(&msgs).Order("id DESC").Limit(int64(limit))
	if kind != "" {
		q = q.Where("kind = ?", kind)
	}
	err := q.Scan(ctx)
	return msgs, storageErr(err)
}

// CountRecentMail counts the messages of kind to an address queued since t.
func (s *Store) CountRecentMail(ctx context.Context, kind, to string, since time.Time) (int, error) {
	n, err := s.DB.NewSelect().Model((*OutboxMessage)(nil)).
		Where("kind = ? AND to_addr = ? AND created_at >= ?", kind, to, since.UnixMilli()).Count(ctx)
	return int(n), storageErr(err)
}

// QueueMail queues one message outside any other change (e.g. a new
// confirmation link for a pending sign-up that tried to log in).
func (s *Store) QueueMail(ctx context.Context, kind, to string, ref int64) error {
	markWrite(ctx)
	return storageErr(s.enqueueMail(ctx, s.DB, kind, to, ref))
}

// SweepMail deletes expired email tokens and the outbox rows finished more
// than keep ago.
func (s *Store) SweepMail(ctx context.Context, keep time.Duration) error {
	markWrite(ctx)
	now := s.nowMS()
	if _, err := s.DB.NewDelete().Model((*MailToken)(nil)).Where("expires_at <= ?", now).Exec(ctx); err != nil {
		return storageErr(err)
	}
	_, err := s.DB.NewDelete().Model((*OutboxMessage)(nil)).
		Where("status <> ? AND created_at < ?", MailPending, now-keep.Milliseconds()).Exec(ctx)
	return storageErr(err)
}

// NewMailToken stores a fresh token for userID and purpose, valid for ttl,
// and returns it; only its hash is kept.
func (s *Store) NewMailToken(ctx context.Context, userID int64, purpose string, ttl time.Duration) (string, error) {
	markWrite(ctx)
	token := RandomToken(32)
	now := s.Now()
	_, err := s.DB.NewInsert().Model(&MailToken{TokenHash: HashToken(token), UserID: userID, Purpose: purpose,
		CreatedAt: now.UnixMilli(), ExpiresAt: now.Add(ttl).UnixMilli()}).Exec(ctx)
	return token, storageErr(err)
}

// MailTokenUser returns the active user a valid (unused, unexpired) token
// of purpose belongs to, without using it up; ErrNotFound otherwise.
func (s *Store) MailTokenUser(ctx context.Context, token, purpose string) (User, error) {
	var u User
	if token == "" || len(token) > 200 {
		return u, ErrNotFound
	}
	err := s.DB.NewSelect().Model(&u).
		Where("id = (SELECT user_id FROM mail_tokens WHERE token_hash = ? AND purpose = ? AND expires_at > ?)",
			HashToken(token), purpose, s.nowMS()).
		Where("is_active").Limit(1).Scan(ctx)
	return u, storageErr(err)
}

// consumeMailToken deletes a valid token of purpose inside tx and returns
// its active user, locked for the change; ErrNotFound when the token is
// unknown, used, expired or its user deactivated.
func consumeMailToken(ctx context.Context, tx bun.Tx, token, purpose string, now int64) (User, error) {
	if token == "" || len(token) > 200 {
		return User{}, ErrNotFound
	}
	var userID int64
	err := tx.QueryRowContext(ctx, "DELETE FROM mail_tokens WHERE token_hash = ? AND purpose = ? AND expires_at > ? RETURNING user_id",
		HashToken(token), purpose, now).Scan(&userID)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	} else if err != nil {
		return User{}, err
	}
	u, err := lockUser(ctx, tx, userID)
	if err != nil {
		return u, err
	}
	if !u.IsActive {
		return u, ErrNotFound
	}
	return u, nil
}

// ResetPasswordWithToken uses a reset token: it sets the user's password
// to hash, ends all their sessions and voids every other reset link of
// theirs, audited, in one transaction. ErrNotFound: the link is unknown,
// used or expired (nothing changed).
//
// For a sign-up that was never confirmed the link proves the address too:
// the account is confirmed and joins signupGroup (ErrGroupMissing when
// that group does not exist). This is how the owner of an address takes
// back an account someone else signed up with it: the password becomes
// the one the owner chose.
func (s *Store) ResetPasswordWithToken(ctx context.Context, token, hash, signupGroup, ip string) (User, error) {
	var u User
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		now := s.nowMS()
		var err error
		if u, err = consumeMailToken(ctx, tx, token, TokenReset, now); err != nil {
			return err
		}
		actor := Actor{ID: u.ID, Email: u.Email, IP: ip}
		if u.EmailPending {
			if err := s.confirmPending(ctx, tx, actor, u, signupGroup, now); err != nil {
				return err
			}
		}
		if _, err := tx.NewUpdate().Model((*User)(nil)).Set("password_hash = ?", hash).
			Set("must_change_password = FALSE").Set("updated_at = ?", now).Where("id = ?", u.ID).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.NewDelete().Model((*SessionRow)(nil)).Where("user_id = ?", u.ID).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.NewDelete().Model((*MailToken)(nil)).Where("user_id = ? AND purpose = ?", u.ID, TokenReset).Exec(ctx); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, actor, Event{Action: ActionPasswordReset, Target: u.Email,
			Detail: map[string]any{"via": "emailed link", "sessions_revoked": true}})
	})
	u.EmailPending = false
	return u, err
}

// confirmPending marks a pending sign-up's address confirmed, puts it in
// the group named groupName (when not empty), voids its confirmation
// links and audits it, inside tx.
func (s *Store) confirmPending(ctx context.Context, tx bun.Tx, a Actor, u User, groupName string, now int64) error {
	detail := map[string]any{}
	if groupName != "" {
		var g Group
		if err := tx.NewSelect().Model(&g).Where("name_key = ?", strings.ToLower(groupName)).Limit(1).Scan(ctx); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrGroupMissing
			}
			return err
		}
		if _, err := tx.NewInsert().Model(&Membership{GroupID: g.ID, UserID: u.ID, CreatedAt: now}).
			On("CONFLICT DO NOTHING").Exec(ctx); err != nil {
			return err
		}
		detail["group"] = g.Name
	}
	if _, err := tx.NewUpdate().Model((*User)(nil)).Set("email_pending = FALSE").
		Set("updated_at = ?", now).Where("id = ?", u.ID).Exec(ctx); err != nil {
		return err
	}
	if _, err := tx.NewDelete().Model((*MailToken)(nil)).Where("user_id = ? AND purpose = ?", u.ID, TokenVerify).Exec(ctx); err != nil {
		return err
	}
	return s.insertAudit(ctx, tx, a, Event{Action: ActionEmailConfirm, Target: u.Email, Detail: map[string]any{"after": detail}})
}

// SignupPendingUser creates a self-registered user whose email is not
// confirmed yet (they cannot log in and join no group until they open the
// emailed link) and queues the confirmation mail, audited, in one
// transaction. ErrDuplicate when the email is taken.
func (s *Store) SignupPendingUser(ctx context.Context, a Actor, nu NewUser) (User, error) {
	now := s.nowMS()
	u := User{Email: nu.Email, Name: nu.Name, PasswordHash: nu.PasswordHash, IsActive: true, EmailPending: true,
		CreatedAt: now, UpdatedAt: now}
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&u).Exec(ctx); err != nil {
			return err
		}
		if err := s.enqueueMail(ctx, tx, MailSignupVerify, u.Email, u.ID); err != nil {
			return err
		}
		a.ID, a.Email = u.ID, u.Email
		return s.insertAudit(ctx, tx, a, Event{Action: ActionUserSignup, Target: u.Email,
			Detail: map[string]any{"after": map[string]any{"name": u.Name, "email_confirmed": false}}})
	})
	return u, err
}

// SignupExisting records a sign-up attempt with an address that already
// has an account and, when notify, queues a mail telling its owner, in one
// transaction. The sign-up form answers as for a new address, so it cannot
// be used to find out which addresses have accounts.
func (s *Store) SignupExisting(ctx context.Context, a Actor, email string, notify bool) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if notify {
			if err := s.enqueueMail(ctx, tx, MailSignupExists, email, 0); err != nil {
				return err
			}
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionSignupExisting, Target: email,
			Detail: map[string]any{"owner_notified": notify}})
	})
}

// ConfirmEmail uses a confirmation token: the pending sign-up may log in
// from now on and joins the group named groupName (when not empty), audited,
// in one transaction. ErrNotFound: the link is unknown, used or expired;
// ErrGroupMissing: the group does not exist (nothing changed, the link
// still works).
func (s *Store) ConfirmEmail(ctx context.Context, token, groupName, ip string) (User, error) {
	var u User
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		now := s.nowMS()
		var err error
		if u, err = consumeMailToken(ctx, tx, token, TokenVerify, now); err != nil {
			return err
		}
		if !u.EmailPending {
			return ErrNotFound // confirmed already, e.g. through a reset link
		}
		return s.confirmPending(ctx, tx, Actor{ID: u.ID, Email: u.Email, IP: ip}, u, groupName, now)
	})
	u.EmailPending = false
	return u, err
}

// ErrGroupMissing means the sign-up group named in the configuration does
// not exist.
var ErrGroupMissing = errors.New("the sign-up group does not exist")

// clipText cuts s to at most n bytes of valid UTF-8.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
