package db

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// SessionLimits bounds a session's life.
type SessionLimits struct {
	// Idle ends a session not used for this long.
	Idle time.Duration
	// Absolute ends a session this long after login, used or not.
	Absolute time.Duration
}

// DefaultSessionLimits holds the defaults: 12 hours idle, 7 days absolute.
var DefaultSessionLimits = SessionLimits{Idle: 12 * time.Hour, Absolute: 7 * 24 * time.Hour}

// Sessions is the session repository. A session is named by a random id
// (256 bits from crypto/rand) that only its holder knows; the row is keyed
// by the id's sha256 and holds the user, times, IP, user agent and opaque
// data. Deleting rows revokes sessions at once. It knows nothing of HTTP:
// carrying the id in a cookie is app's business.
type Sessions struct {
	store  *Store
	limits SessionLimits
	// touchEvery limits last-seen writes to one per session per interval.
	touchEvery time.Duration
}

// Sessions returns the session repository with the given limits (zero
// fields take the defaults).
func (s *Store) Sessions(limits SessionLimits) *Sessions {
	if limits.Idle <= 0 {
		limits.Idle = DefaultSessionLimits.Idle
	}
	if limits.Absolute <= 0 {
		limits.Absolute = DefaultSessionLimits.Absolute
	}
	touch := time.Minute
	if limits.Idle < 10*time.Minute {
		touch = limits.Idle / 10
	}
	return &Sessions{store: s, limits: limits, touchEvery: touch}
}

// Limits returns the repository's limits.
func (r *Sessions) Limits() SessionLimits { return r.limits }

// Session is a live session with its user.
type Session struct {
	// ID is the session's random id (never stored; the row holds its hash).
	ID     string
	UserID int64
	// Data is what Create or Update stored, returned as it is.
	Data []byte
	// Method is how the session was authenticated (MethodPassword, …).
	Method string
	// User is the session's user, active or not; the caller decides.
	User User
	// Ends is when the session ends unless it is used again: the earlier
	// of its absolute expiry and its idle limit.
	Ends time.Time
}

// NewSession is what Create stores.
type NewSession struct {
	UserID    int64
	IP        string
	UserAgent string // cut to 256 bytes
	Data      []byte
	// Method is how the session was authenticated (MethodPassword, …;
	// empty means MethodPassword).
	Method string
}

// sessionEntry is a live session row with its user, as Lookup needs them.
type sessionEntry struct {
	id, hash   string // the random id and its sha256 (the row's key)
	userID     int64
	expiresAt  int64
	lastSeenAt int64
	data       []byte // never modified
	method     string
	user       User
}

// sessionWithUser reads a session row joined with its user in one query.
type sessionWithUser struct {
	bun.BaseModel `bun:"table:sessions,alias:s"`

	IDHash     string `bun:"id_hash,pk"`
	UserID     int64  `bun:"user_id"`
	LastSeenAt int64  `bun:"last_seen_at"`
	ExpiresAt  int64  `bun:"expires_at"`
	Data       []byte `bun:"data"`
	AuthMethod string `bun:"auth_method"`
	User       *User  `bun:"rel:belongs-to,join:user_id=id"`
}

// Lookup returns the live session named by id with its user, read together
// with one query (sessions joined with users) or, under a Snapshot in ctx
// whose version is unchanged, from memory (see authz_cache.go). It deletes
// the session when it has outlived either limit, and refreshes last_seen at
// most once per touch interval. An unknown, expired or revoked id is
// ErrNotFound.
//
// Under a Snapshot the row may come from memory; a remembered row is used
// only while no touch is due, so its last_seen is at most touchEvery old
// and the idle limit is always judged on the database's own last_seen.
func (r *Sessions) Lookup(ctx context.Context, id string) (Session, error) {
	if id == "" {
		return Session{}, ErrNotFound
	}
	nowMS := r.store.Now().UnixMilli()
	e, cached := cacheGet(ctx, r.store, sessionTable, id)
	if !cached || nowMS-e.lastSeenAt >= r.touchEvery.Milliseconds() {
		hash := HashToken(id)
		row, err := shareLoad(ctx, r.store, id, func() (sessionWithUser, error) {
			var row sessionWithUser
			err := r.store.DB.NewSelect().Model(&row).Relation("User").Where("s.id_hash = ?", hash).Limit(1).Scan(ctx)
			return row, err
		})
		if err != nil {
			return Session{}, storageErr(err)
		}
		if row.User == nil || row.User.ID == 0 {
			return Session{}, ErrNotFound
		}
		e = sessionEntry{id: id, hash: hash, userID: row.UserID, expiresAt: row.ExpiresAt,
			lastSeenAt: row.LastSeenAt, data: row.Data, method: row.AuthMethod, user: *row.User}
		cached = false
	}
	if nowMS >= e.expiresAt || nowMS-e.lastSeenAt >= r.limits.Idle.Milliseconds() {
		markWrite(ctx)
		_, _ = r.store.DB.NewDelete().Model((*SessionRow)(nil)).Where("id_hash = ?", e.hash).Exec(ctx)
		return Session{}, ErrNotFound
	}
	if nowMS-e.lastSeenAt >= r.touchEvery.Milliseconds() {
		if _, err := r.store.DB.NewUpdate().Model((*SessionRow)(nil)).Set("last_seen_at = ?", nowMS).
			Where("id_hash = ?", e.hash).Exec(ctx); err != nil {
			return Session{}, storageErr(err)
		}
		e.lastSeenAt = nowMS
		cached = false
	}
	if !cached {
		cachePut(ctx, r.store, sessionTable, id, e)
	}
	ends := time.UnixMilli(min(e.expiresAt, e.lastSeenAt+r.limits.Idle.Milliseconds()))
	return Session{ID: e.id, UserID: e.userID, Data: e.data, Method: e.method, User: e.user, Ends: ends}, nil
}

// Create stores a new session for ns.UserID with a fresh random id and
// returns the id. Gatehouse keeps no anonymous sessions: a zero user id is
// refused.
func (r *Sessions) Create(ctx context.Context, ns NewSession) (string, error) {
	if ns.UserID == 0 {
		return "", errors.New("sessions: refusing to store a session without a user")
	}
	if ns.Method == "" {
		ns.Method = MethodPassword
	}
	markWrite(ctx)
	now := r.store.Now()
	id := RandomToken(32)
	row := &SessionRow{IDHash: HashToken(id), UserID: ns.UserID, CreatedAt: now.UnixMilli(),
		LastSeenAt: now.UnixMilli(), ExpiresAt: now.Add(r.limits.Absolute).UnixMilli(),
		IP: ns.IP, UserAgent: truncate(ns.UserAgent, 256), Data: ns.Data, AuthMethod: ns.Method}
	if _, err := r.store.DB.NewInsert().Model(row).Exec(ctx); err != nil {
		return "", storageErr(err)
	}
	return id, nil
}

// Update replaces a session's data and marks it used now.
func (r *Sessions) Update(ctx context.Context, id string, data []byte) error {
	markWrite(ctx)
	_, err := r.store.DB.NewUpdate().Model((*SessionRow)(nil)).Set("data = ?", data).
		Set("last_seen_at = ?", r.store.nowMS()).Where("id_hash = ?", HashToken(id)).Exec(ctx)
	return storageErr(err)
}

// Revoke deletes one session by its id.
func (r *Sessions) Revoke(ctx context.Context, id string) error {
	markWrite(ctx)
	_, err := r.store.DB.NewDelete().Model((*SessionRow)(nil)).Where("id_hash = ?", HashToken(id)).Exec(ctx)
	return storageErr(err)
}

// ListSessions returns a user's live sessions, newest first.
func (s *Store) ListSessions(ctx context.Context, userID int64) ([]SessionRow, error) {
	var rows []SessionRow
	err := s.DB.NewSelect().Model(&rows).Where("user_id = ? AND expires_at > ?", userID, s.nowMS()).
		Order("last_seen_at DESC").Scan(ctx)
	return rows, storageErr(err)
}

// RevokeSession deletes one of a user's sessions by its stored hash and audits it.
func (s *Store) RevokeSession(ctx context.Context, a Actor, userID int64, idHash string) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		u, err := lockUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		res, err := tx.NewDelete().Model((*SessionRow)(nil)).Where("id_hash = ? AND user_id = ?", idHash, userID).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return s.insertAudit(ctx, tx, a, Event{Action: ActionSessionRevoke, Target: u.Email})
	})
}

// RevokeUserSessions deletes all of a user's sessions except keepID's (may be "").
func (s *Store) RevokeUserSessions(ctx context.Context, userID int64, keepID string) error {
	markWrite(ctx)
	q := s.DB.NewDelete().Model((*SessionRow)(nil)).Where("user_id = ?", userID)
	if keepID != "" {
		q = q.Where("id_hash <> ?", HashToken(keepID))
	}
	_, err := q.Exec(ctx)
	return storageErr(err)
}

// CountActiveSessions counts unexpired sessions.
func (s *Store) CountActiveSessions(ctx context.Context) (int, error) {
	n, err := s.DB.NewSelect().Model((*SessionRow)(nil)).Where("expires_at > ?", s.nowMS()).Count(ctx)
	return int(n), storageErr(err)
}

// DeleteExpiredSessions removes sessions past their absolute or idle limit.
func (s *Store) DeleteExpiredSessions(ctx context.Context, idle time.Duration) (int64, error) {
	markWrite(ctx)
	now := s.nowMS()
	res, err := s.DB.NewDelete().Model((*SessionRow)(nil)).
		Where("expires_at <= ? OR last_seen_at <= ?", now, now-idle.Milliseconds()).Exec(ctx)
	if err != nil {
		return 0, storageErr(err)
	}
	return res.RowsAffected()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
