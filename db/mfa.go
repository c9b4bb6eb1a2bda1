package db

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// Audit actions for second factors and passkeys.
const (
	ActionPasskeyAdd      = "mfa.passkey.add"
	ActionPasskeyRemove   = "mfa.passkey.remove"
	ActionTOTPEnable      = "mfa.totp.enable"
	ActionTOTPRemove      = "mfa.totp.remove"
	ActionRecoveryNew     = "mfa.recovery.new"
	ActionRecoveryUsed    = "mfa.recovery.used"
	ActionMFAFailed       = "login.mfa_failed"
	ActionMFAThrottled    = "login.mfa_throttled"
	ActionMFAReset        = "mfa.reset"
	ActionPasskeyRejected = "login.passkey_failed"
	// ActionTOTPConfirmFailed is a wrong code while setting up an
	// authenticator app (detail: reason); counted for its own throttle.
	ActionTOTPConfirmFailed = "mfa.totp.confirm_failed"
)

// Session authentication methods, recorded on every session (sessions.auth_method).
const (
	MethodPassword         = "password"
	MethodPasswordTOTP     = "password+totp"
	MethodPasswordRecovery = "password+recovery"
	MethodPasswordPasskey  = "password+passkey"
	MethodPasskey          = "passkey"
	MethodSSO              = "sso"
	// MethodMFAPending is a half-authenticated session: the password was
	// right and the second factor is still to come. It can do nothing else.
	MethodMFAPending = "mfa-pending"
	// MethodEnrolPending is a half-authenticated session of a user who must
	// set up a second factor before anything else.
	MethodEnrolPending = "enrol-pending"
)

// PendingMethod reports whether a session method is half-authenticated.
func PendingMethod(m string) bool { return m == MethodMFAPending || m == MethodEnrolPending }

// MaxPasskeys bounds how many passkeys one user may register.
const MaxPasskeys = 20

// RecoveryCodeCount is how many recovery codes a user gets at a time.
const RecoveryCodeCount = 10

var (
	// ErrLastFactor refuses to remove a user's last second factor while
	// Gatehouse requires them to have one.
	ErrLastFactor = errors.New("this is your last second factor, and you are required to have one")
	// ErrTooMany refuses a passkey beyond MaxPasskeys.
	ErrTooMany = errors.New("too many passkeys")
	// ErrReplayed is a TOTP code already used (or older than the newest used).
	ErrReplayed = errors.New("code already used")
)

// Passkey is one of a user's WebAuthn credentials.
type Passkey struct {
	bun.BaseModel `bun:"table:webauthn_credentials"`

	ID           int64  `bun:"id,pk,autoincrement"`
	UserID       int64  `bun:"user_id,notnull"`
	CredentialID []byte `bun:"credential_id,notnull"`
	Name         string `bun:"name,notnull"`
	// Credential is go-webauthn's Credential as JSON (public key, sign
	// count, flags, transports); app/ owns its meaning.
	Credential string `bun:"credential,notnull"`
	CreatedAt  int64  `bun:"created_at,notnull"`
	LastUsedAt int64  `bun:"last_used_at,nullzero"`
}

// TOTPSecret is a user's authenticator app: confirmed once its first code
// was given.
type TOTPSecret struct {
	bun.BaseModel `bun:"table:totp_secrets"`

	UserID      int64  `bun:"user_id,pk"`
	Secret      string `bun:"secret,notnull"`
	ConfirmedAt int64  `bun:"confirmed_at,nullzero"`
	LastStep    int64  `bun:"last_step,notnull"`
	CreatedAt   int64  `bun:"created_at,notnull"`
	LastUsedAt  int64  `bun:"last_used_at,nullzero"`
}

// RecoveryCode is one single-use recovery code, by its hash.
type RecoveryCode struct {
	bun.BaseModel `bun:"table:recovery_codes"`

	CodeHash  string `bun:"code_hash,pk"`
	UserID    int64  `bun:"user_id,notnull"`
	CreatedAt int64  `bun:"created_at,notnull"`
	UsedAt    int64  `bun:"used_at,nullzero"`
}

// WebAuthnChallenge is a WebAuthn ceremony in progress.
type WebAuthnChallenge struct {
	bun.BaseModel `bun:"table:webauthn_challenges"`

	IDHash      string `bun:"id_hash,pk"`
	Purpose     string `bun:"purpose,notnull"`
	UserID      int64  `bun:"user_id,nullzero"`
	SessionHash string `bun:"session_hash,notnull"`
	// Client is the network the ceremony was begun from (an IPv4 address,
	// an IPv6 /64), "" when not known.
	Client    string `bun:"client,notnull"`
	Data      string `bun:"data,notnull"`
	ExpiresAt int64  `bun:"expires_at,notnull"`
}

// Factors summarises a user's second factors.
type Factors struct {
	TOTP         bool // a confirmed authenticator app
	Passkeys     int
	RecoveryLeft int // unused recovery codes
}

// Any reports whether the user has a second factor (recovery codes alone
// are not one: they stand in for one).
func (f Factors) Any() bool { return f.TOTP || f.Passkeys > 0 }

// Factors returns a user's second factors.
func (s *Store) Factors(ctx context.Context, userID int64) (Factors, error) {
	return factorsOf(ctx, s.DB, userID)
}

func factorsOf(ctx context.Context, db bun.IDB, userID int64) (Factors, error) {
	var f Factors
	var res struct {
		TOTP     int `bun:"totp"`
		Passkeys int `bun:"passkeys"`
		Recovery int `bun:"recovery"`
	}
	err := db.NewRaw(`SELECT
		(SELECT COUNT(*) FROM totp_secrets WHERE user_id = ? AND confirmed_at IS NOT NULL) AS totp,
		(SELECT COUNT(*) FROM webauthn_credentials WHERE user_id = ?) AS passkeys,
		(SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL) AS recovery`,
		userID, userID, userID).Scan(ctx, &res)
	if err != nil {
		return f, storageErr(err)
	}
	return Factors{TOTP: res.TOTP > 0, Passkeys: res.Passkeys, RecoveryLeft: res.Recovery}, nil
}

// ListPasskeys returns a user's passkeys, oldest first.
func (s *Store) ListPasskeys(ctx context.Context, userID int64) ([]Passkey, error) {
	var ps []Passkey
	err := s.DB.NewSelect().Model(&ps).Where("user_id = ?", userID).Order("id").Scan(ctx)
	return ps, storageErr(err)
}

// PasskeyByCredentialID returns the passkey with an authenticator's
// credential id (ErrNotFound when none).
func (s *Store) PasskeyByCredentialID(ctx context.Context, credID []byte) (Passkey, error) {
	var p Passkey
	err := s.DB.NewSelect().Model(&p).Where("credential_id = ?", credID).Limit(1).Scan(ctx)
	return p, storageErr(err)
}

// AddPasskey stores a new passkey and audits it. A credential id already
// registered (by anyone) is ErrDuplicate; more than MaxPasskeys, ErrTooMany.
func (s *Store) AddPasskey(ctx context.Context, a Actor, p Passkey) (Passkey, error) {
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		u, err := lockUser(ctx, tx, p.UserID)
		if err != nil {
			return err
		}
		n, err := tx.NewSelect().Model((*Passkey)(nil)).Where("user_id = ?", p.UserID).Count(ctx)
		if err != nil {
			return err
		}
		if n >= MaxPasskeys {
			return ErrTooMany
		}
		p.CreatedAt = s.nowMS()
		if _, err := tx.NewInsert().Model(&p).Exec(ctx); err != nil {
			return storageErr(err)
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionPasskeyAdd, Target: u.Email,
			Detail: map[string]any{"name": p.Name}})
	})
	return p, err
}

// UsePasskey records a passkey's use: its updated credential (the new sign
// count) and the time.
func (s *Store) UsePasskey(ctx context.Context, id int64, credential string) error {
	markWrite(ctx)
	_, err := s.DB.NewUpdate().Model((*Passkey)(nil)).Set("credential = ?", credential).
		Set("last_used_at = ?", s.nowMS()).Where("id = ?", id).Exec(ctx)
	return storageErr(err)
}

// RemovePasskey deletes one of a user's passkeys and audits it. With
// keepOne, removing the user's last second factor is ErrLastFactor. When no
// second factor is left, the recovery codes go too.
func (s *Store) RemovePasskey(ctx context.Context, a Actor, userID, id int64, keepOne bool) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		u, err := lockUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		var p Passkey
		if err := tx.NewSelect().Model(&p).Where("id = ? AND user_id = ?", id, userID).Limit(1).Scan(ctx); err != nil {
			return storageErr(err)
		}
		if _, err := tx.NewDelete().Model((*Passkey)(nil)).Where("id = ?", id).Exec(ctx); err != nil {
			return err
		}
		if err := s.afterFactorRemoved(ctx, tx, userID, keepOne); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionPasskeyRemove, Target: u.Email,
			Detail: map[string]any{"name": p.Name}})
	})
}

// afterFactorRemoved enforces keepOne and drops the recovery codes when the
// user has no second factor left.
func (s *Store) afterFactorRemoved(ctx context.Context, tx bun.Tx, userID int64, keepOne bool) error {
	f, err := factorsOf(ctx, tx, userID)
	if err != nil {
		return err
	}
	if f.Any() {
		return nil
	}
	if keepOne {
		return ErrLastFactor
	}
	_, err = tx.NewDelete().Model((*RecoveryCode)(nil)).Where("user_id = ?", userID).Exec(ctx)
	return err
}

// StartTOTP stores a new, unconfirmed authenticator-app secret for a user,
// replacing an unconfirmed one. A user whose app is confirmed gets
// ErrDuplicate: they remove it first.
func (s *Store) StartTOTP(ctx context.Context, userID int64, secret string) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := lockUser(ctx, tx, userID); err != nil {
			return err
		}
		var cur TOTPSecret
		err := tx.NewSelect().Model(&cur).Where("user_id = ?", userID).Limit(1).Scan(ctx)
		switch {
		case err == nil && cur.ConfirmedAt != 0:
			return ErrDuplicate
		case err == nil:
			_, err = tx.NewUpdate().Model((*TOTPSecret)(nil)).Set("secret = ?", secret).Set("created_at = ?", s.nowMS()).
				Set("last_step = 0").Where("user_id = ?", userID).Exec(ctx)
			return err
		case errors.Is(storageErr(err), ErrNotFound):
			_, err = tx.NewInsert().Model(&TOTPSecret{UserID: userID, Secret: secret, CreatedAt: s.nowMS()}).Exec(ctx)
			return err
		default:
			return err
		}
	})
}

// TOTP returns a user's authenticator-app secret, confirmed or not
// (ErrNotFound when none).
func (s *Store) TOTP(ctx context.Context, userID int64) (TOTPSecret, error) {
	var t TOTPSecret
	err := s.DB.NewSelect().Model(&t).Where("user_id = ?", userID).Limit(1).Scan(ctx)
	return t, storageErr(err)
}

// ConfirmTOTP confirms a user's pending authenticator app with the step of
// the code they gave (so it cannot be given again), replaces their recovery
// codes with codeHashes, and audits it. The secret must still be the one
// the code was checked against: a secret replaced meanwhile (another tab
// started over) is ErrConflict.
func (s *Store) ConfirmTOTP(ctx context.Context, a Actor, userID int64, secret string, step int64, codeHashes []string) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		u, err := lockUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		res, err := tx.NewUpdate().Model((*TOTPSecret)(nil)).Set("confirmed_at = ?", s.nowMS()).
			Set("last_step = ?", step).Set("last_used_at = ?", s.nowMS()).
			Where("user_id = ? AND secret = ? AND confirmed_at IS NULL", userID, secret).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrConflict
		}
		if err := s.replaceRecoveryCodes(ctx, tx, userID, codeHashes); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionTOTPEnable, Target: u.Email})
	})
}

// UseTOTPStep marks the 30-second step of an accepted code as used. It is
// ErrReplayed when that step (or a later one) was already used: a code is
// accepted once, even by two requests racing with it.
func (s *Store) UseTOTPStep(ctx context.Context, userID, step int64) error {
	markWrite(ctx)
	res, err := s.DB.NewUpdate().Model((*TOTPSecret)(nil)).Set("last_step = ?", step).Set("last_used_at = ?", s.nowMS()).
		Where("user_id = ? AND confirmed_at IS NOT NULL AND last_step < ?", userID, step).Exec(ctx)
	if err != nil {
		return storageErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrReplayed
	}
	return nil
}

// RemoveTOTP deletes a user's authenticator app and audits it (see
// RemovePasskey for keepOne and the recovery codes).
func (s *Store) RemoveTOTP(ctx context.Context, a Actor, userID int64, keepOne bool) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		u, err := lockUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		res, err := tx.NewDelete().Model((*TOTPSecret)(nil)).Where("user_id = ? AND confirmed_at IS NOT NULL", userID).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if err := s.afterFactorRemoved(ctx, tx, userID, keepOne); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionTOTPRemove, Target: u.Email})
	})
}

// ReplaceRecoveryCodes replaces a user's recovery codes with codeHashes and
// audits it.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, a Actor, userID int64, codeHashes []string) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		u, err := lockUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		if err := s.replaceRecoveryCodes(ctx, tx, userID, codeHashes); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionRecoveryNew, Target: u.Email})
	})
}

func (s *Store) replaceRecoveryCodes(ctx context.Context, tx bun.Tx, userID int64, codeHashes []string) error {
	if _, err := tx.NewDelete().Model((*RecoveryCode)(nil)).Where("user_id = ?", userID).Exec(ctx); err != nil {
		return err
	}
	if len(codeHashes) == 0 {
		return nil
	}
	rows := make([]RecoveryCode, len(codeHashes))
	for i, h := range codeHashes {
		rows[i] = RecoveryCode{CodeHash: h, UserID: userID, CreatedAt: s.nowMS()}
	}
	_, err := tx.NewInsert().Model(&rows).Exec(ctx)
	return err
}

// UseRecoveryCode spends one of a user's unused recovery codes by its hash
// and audits it; ErrNotFound when no such unused code exists.
func (s *Store) UseRecoveryCode(ctx context.Context, a Actor, userID int64, codeHash string) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model((*RecoveryCode)(nil)).Set("used_at = ?", s.nowMS()).
			Where("code_hash = ? AND user_id = ? AND used_at IS NULL", codeHash, userID).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		left, err := tx.NewSelect().Model((*RecoveryCode)(nil)).Where("user_id = ? AND used_at IS NULL", userID).Count(ctx)
		if err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionRecoveryUsed, Target: a.Email,
			Detail: map[string]any{"codes_left": left}})
	})
}

// ResetMFA removes all of a user's second factors (passkeys, authenticator
// app, recovery codes, ceremonies in progress) and ends all their sessions,
// in one audited transaction. It reports what was removed.
func (s *Store) ResetMFA(ctx context.Context, a Actor, userID int64) (Factors, error) {
	var before Factors
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		u, err := lockUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		if before, err = factorsOf(ctx, tx, userID); err != nil {
			return err
		}
		for _, m := range []any{(*Passkey)(nil), (*TOTPSecret)(nil), (*RecoveryCode)(nil), (*WebAuthnChallenge)(nil), (*SessionRow)(nil)} {
			if _, err := tx.NewDelete().Model(m).Where("user_id = ?", userID).Exec(ctx); err != nil {
				return err
			}
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionMFAReset, Target: u.Email,
			Detail: map[string]any{"totp": before.TOTP, "passkeys": before.Passkeys, "recovery_codes": before.RecoveryLeft, "sessions_revoked": true}})
	})
	return before, err
}

// MaxChallenges bounds the WebAuthn ceremonies in progress at once. Anyone
// may begin a passkey sign-in, so without a bound a flood of begins would
// fill the table for the few minutes a challenge lives.
var MaxChallenges = 10_000

// MaxChallengesPerClient and MaxChallengesPerSession bound the ceremonies
// one client network and one session have in progress: past them a new
// one replaces the oldest, so that one client's flood of begins holds a
// few rows and never reaches MaxChallenges, and a person who starts again
// (another tab, a cancelled prompt) is never refused.
var (
	MaxChallengesPerClient  = 32
	MaxChallengesPerSession = 8
)

// ErrChallengesFull refuses a ceremony while MaxChallenges are in progress.
var ErrChallengesFull = errors.New("too many passkey requests in progress")

// PutChallenge stores a WebAuthn ceremony in progress, clearing expired
// ones and the oldest of its client's and its session's past
// MaxChallengesPerClient and MaxChallengesPerSession; ErrChallengesFull
// when MaxChallenges are still in progress.
func (s *Store) PutChallenge(ctx context.Context, c WebAuthnChallenge) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewDelete().Model((*WebAuthnChallenge)(nil)).Where("expires_at <= ?", s.nowMS()).Exec(ctx); err != nil {
			return err
		}
		for _, by := range []struct {
			column, value string
			most          int
		}{{"client", c.Client, MaxChallengesPerClient}, {"session_hash", c.SessionHash, MaxChallengesPerSession}} {
			if by.value == "" {
				continue
			}
			if s.Dialect == Postgres {
				// Begins from one client (or session) take turns here, so
				// that two at once cannot both count one below the bound;
				// SQLite's IMMEDIATE transactions already take turns.
				if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", "webauthn "+by.column+" "+by.value); err != nil {
					return err
				}
			}
			n, err := tx.NewSelect().Model((*WebAuthnChallenge)(nil)).Where("? = ?", bun.Ident(by.column), by.value).Count(ctx)
			if err != nil {
				return err
			}
			if over := n - int64(max(by.most, 1)) + 1; over > 0 {
				oldest := tx.NewSelect().Model((*WebAuthnChallenge)(nil)).Column("id_hash").
					Where("? = ?", bun.Ident(by.column), by.value).Order("expires_at", "id_hash").Limit(over)
				if _, err := tx.NewDelete().Model((*WebAuthnChallenge)(nil)).Where("id_hash IN (?)", oldest).Exec(ctx); err != nil {
					return err
				}
			}
		}
		n, err := tx.NewSelect().Model((*WebAuthnChallenge)(nil)).Count(ctx)
		if err != nil {
			return err
		}
		if int(n) >= MaxChallenges {
			return ErrChallengesFull
		}
		_, err = tx.NewInsert().Model(&c).Exec(ctx)
		return err
	})
}

// TakeChallenge removes and returns a ceremony by its id hash: a challenge
// is answered at most once, right or wrong. An expired one is returned too
// (the caller says so); a missing one is ErrNotFound.
func (s *Store) TakeChallenge(ctx context.Context, idHash string) (WebAuthnChallenge, error) {
	var c WebAuthnChallenge
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := tx.NewSelect().Model(&c).Where("id_hash = ?", idHash).Limit(1).Scan(ctx); err != nil {
			return storageErr(err)
		}
		_, err := tx.NewDelete().Model((*WebAuthnChallenge)(nil)).Where("id_hash = ?", idHash).Exec(ctx)
		return err
	})
	return c, err
}

// SessionCreatedAt returns when the session with id hash idHash began
// (ErrNotFound when it does not exist).
func (s *Store) SessionCreatedAt(ctx context.Context, idHash string) (time.Time, error) {
	var row SessionRow
	err := s.DB.NewSelect().Model(&row).Column("created_at").Where("id_hash = ?", idHash).Limit(1).Scan(ctx)
	if err != nil {
		return time.Time{}, storageErr(err)
	}
	return FromMS(row.CreatedAt), nil
}

// CleanPasskeyName trims a passkey's name and checks its length.
func CleanPasskeyName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	return CleanName("name", s, 1, 60)
}
