package db

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"

	"github.com/uptrace/bun"
)

// Setting is a key/value row (signing keys and other instance-wide state).
type Setting struct {
	bun.BaseModel `bun:"table:settings"`

	Key   string `bun:"key,pk"`
	Value string `bun:"value,notnull"`
}

// SetupToken is a hashed one-time token that lets its holder create the first admin.
type SetupToken struct {
	bun.BaseModel `bun:"table:setup_tokens"`

	TokenHash string `bun:"token_hash,pk"`
	ExpiresAt int64  `bun:"expires_at,notnull"`
}

// Secret returns the random secret stored under key, creating it with n
// random bytes on first use. Several instances starting at once agree on
// one value: the insert ignores conflicts and everyone reads it back.
func (s *Store) Secret(ctx context.Context, key string, n int) ([]byte, error) {
	fresh := make([]byte, n)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	row := &Setting{Key: key, Value: base64.StdEncoding.EncodeToString(fresh)}
	if _, err := s.DB.NewInsert().Model(row).On("CONFLICT (key) DO NOTHING").Exec(ctx); err != nil {
		return nil, storageErr(err)
	}
	var stored Setting
	if err := s.DB.NewSelect().Model(&stored).Where("key = ?", key).Scan(ctx); err != nil {
		return nil, storageErr(err)
	}
	return base64.StdEncoding.DecodeString(stored.Value)
}

// RandomToken returns n random bytes, base64url-encoded.
func RandomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashToken returns the hex sha256 of a token, the form tokens are stored in.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewSetupToken stores a fresh single-use setup token valid for ttl and
// returns it. Older unused tokens stay valid until they expire.
func (s *Store) NewSetupToken(ctx context.Context, ttl time.Duration) (string, error) {
	token := RandomToken(32)
	row := &SetupToken{TokenHash: HashToken(token), ExpiresAt: s.Now().Add(ttl).UnixMilli()}
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewDelete().Model((*SetupToken)(nil)).Where("expires_at < ?", s.nowMS()).Exec(ctx); err != nil {
			return err
		}
		_, err := tx.NewInsert().Model(row).Exec(ctx)
		return err
	})
	return token, err
}

// SetupTokenValid reports whether token is an unexpired, unused setup token
// and no admin exists yet.
func (s *Store) SetupTokenValid(ctx context.Context, token string) (bool, error) {
	if token == "" {
		return false, nil
	}
	n, err := s.DB.NewSelect().Model((*SetupToken)(nil)).
		Where("token_hash = ? AND expires_at > ?", HashToken(token), s.nowMS()).Count(ctx)
	if err != nil || n == 0 {
		return false, storageErr(err)
	}
	admins, err := s.CountActiveAdmins(ctx)
	return admins == 0, err
}

// CompleteSetup consumes the setup token and creates the first admin in one
// transaction; every setup token dies with it. It returns ErrNotFound when the
// token is unknown, used or expired, or an admin already exists.
func (s *Store) CompleteSetup(ctx context.Context, token string, nu NewUser, ip string) (User, error) {
	now := s.nowMS()
	// The new admin is signed in at once: that is their first login.
	u := User{Email: nu.Email, Name: nu.Name, PasswordHash: nu.PasswordHash, IsAdmin: true,
		IsActive: true, CreatedAt: now, UpdatedAt: now, LastLoginAt: now}
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := lockAdmins(ctx, tx); err != nil {
			return err
		}
		res, err := tx.NewDelete().Model((*SetupToken)(nil)).
			Where("token_hash = ? AND expires_at > ?", HashToken(token), now).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNotFound
		}
		admins, err := tx.NewSelect().Model((*User)(nil)).Where("is_admin AND is_active").Count(ctx)
		if err != nil {
			return err
		}
		if admins > 0 {
			return ErrNotFound
		}
		if _, err := tx.NewDelete().Model((*SetupToken)(nil)).Where("1 = 1").Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(&u).Exec(ctx); err != nil {
			return err
		}
		a := Actor{ID: u.ID, Email: u.Email, IP: ip}
		if err := s.insertAudit(ctx, tx, a, Event{Action: ActionSetup, Target: u.Email}); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionLogin, Target: u.Email, Detail: map[string]string{"method": "setup"}})
	})
	return u, err
}

// Flag reports whether the instance-wide flag key is set (see SetFlag).
func (s *Store) Flag(ctx context.Context, key string) (bool, error) {
	var row Setting
	err := s.DB.NewSelect().Model(&row).Where("key = ?", "flag:"+key).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, storageErr(err)
	}
	return row.Value == "1", nil
}

// SetFlag sets the instance-wide flag key (e.g. "demo": the database was
// seeded by `serve --demo`, so every command serves the demo dashboards).
func (s *Store) SetFlag(ctx context.Context, key string, on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	row := &Setting{Key: "flag:" + key, Value: v}
	_, err := s.DB.NewInsert().Model(row).On("CONFLICT (key) DO UPDATE").Set("value = EXCLUDED.value").Exec(ctx)
	return storageErr(err)
}
