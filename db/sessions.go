package db

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"github.com/uptrace/bun"
)

// UserIDKey is the session value holding the logged-in user's id.
const UserIDKey = "user_id"

// SessionConfig configures a SessionStore.
type SessionConfig struct {
	// Secure marks the cookie Secure and names it with the __Host- prefix
	// (use when the base URL is https).
	Secure bool
	// Idle ends a session not used for this long.
	Idle time.Duration
	// Absolute ends a session this long after login, used or not.
	Absolute time.Duration
}

// DefaultSessionConfig holds the defaults: 12 hours idle, 7 days absolute.
var DefaultSessionConfig = SessionConfig{Idle: 12 * time.Hour, Absolute: 7 * 24 * time.Hour}

// SessionStore implements gorilla/sessions' Store over the database: the
// cookie holds only a signed random id (256 bits from crypto/rand), and the
// row (keyed by the id's sha256) holds the user, times, IP and user agent.
// Deleting rows revokes sessions at once.
type SessionStore struct {
	store *Store
	codec *securecookie.SecureCookie
	cfg   SessionConfig
	name  string
	// touchEvery limits last-seen writes to one per session per interval.
	touchEvery time.Duration
	// ClientIP extracts the client address recorded with a new session; the
	// app sets it to honour its trusted-proxy setting.
	ClientIP func(*http.Request) string
}

// NewSessionStore returns a session store whose signing key is generated on
// first start and shared through the database.
func (s *Store) NewSessionStore(ctx context.Context, cfg SessionConfig) (*SessionStore, error) {
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultSessionConfig.Idle
	}
	if cfg.Absolute <= 0 {
		cfg.Absolute = DefaultSessionConfig.Absolute
	}
	key, err := s.Secret(ctx, "session_hash_key", 64)
	if err != nil {
		return nil, err
	}
	codec := securecookie.New(key, nil)
	codec.SetSerializer(securecookie.NopEncoder{})
	codec.MaxAge(int(cfg.Absolute / time.Second))
	codec.MaxLength(512)
	name := "gatehouse_session"
	if cfg.Secure {
		name = "__Host-gatehouse_session"
	}
	touch := time.Minute
	if cfg.Idle < 10*time.Minute {
		touch = cfg.Idle / 10
	}
	return &SessionStore{store: s, codec: codec, cfg: cfg, name: name, touchEvery: touch, ClientIP: RemoteIP}, nil
}

// CookieName is the session cookie's name.
func (st *SessionStore) CookieName() string { return st.name }

// Config returns the store's limits.
func (st *SessionStore) Config() SessionConfig { return st.cfg }

func (st *SessionStore) options() *sessions.Options {
	return &sessions.Options{Path: "/", MaxAge: int(st.cfg.Absolute / time.Second), HttpOnly: true,
		Secure: st.cfg.Secure, SameSite: http.SameSiteLaxMode}
}

// Get returns the request's session, cached for the request by gorilla's registry.
func (st *SessionStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(st, name)
}

// New loads the session named by the request's cookie. A missing, tampered,
// truncated, foreign, expired or revoked cookie yields a new, empty session
// (IsNew) and no error: such a request is simply anonymous.
func (st *SessionStore) New(r *http.Request, name string) (*sessions.Session, error) {
	sess, _, err := st.load(r, name)
	return sess, err
}

// LoadCookie returns the session named by a session cookie's value and its
// user, read together with one query (sessions joined with users) or, under
// a Snapshot in ctx whose version is unchanged, from memory (see
// authz_cache.go). A value without a live session gets a new, empty session
// (IsNew) and the zero User. The user is returned whether active or not; the
// caller decides.
//
// Unlike Get, LoadCookie does not register the session in gorilla's
// per-request registry: the caller keeps the returned session.
func (st *SessionStore) LoadCookie(ctx context.Context, value string) (*sessions.Session, User, error) {
	return st.loadValue(ctx, st.name, value)
}

func (st *SessionStore) load(r *http.Request, name string) (*sessions.Session, User, error) {
	c, err := r.Cookie(name)
	if err != nil {
		return st.newSession(name), User{}, nil
	}
	return st.loadValue(r.Context(), name, c.Value)
}

func (st *SessionStore) newSession(name string) *sessions.Session {
	sess := sessions.NewSession(st, name)
	sess.Options = st.options()
	sess.IsNew = true
	return sess
}

func (st *SessionStore) loadValue(ctx context.Context, name, value string) (*sessions.Session, User, error) {
	sess := st.newSession(name)
	e, err := st.entry(ctx, name, value)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return sess, User{}, nil
		}
		return sess, User{}, err
	}
	if len(e.data) > 0 {
		if err := gob.NewDecoder(bytes.NewReader(e.data)).Decode(&sess.Values); err != nil {
			return sess, User{}, nil
		}
	}
	sess.Values[UserIDKey] = e.userID
	sess.ID = e.id
	sess.IsNew = false
	return sess, e.user, nil
}

func (st *SessionStore) decode(name, value string) (string, bool) {
	if value == "" || len(value) > 512 {
		return "", false
	}
	var raw []byte
	if err := st.codec.Decode(name, value, &raw); err != nil || len(raw) < 32 || len(raw) > 64 {
		return "", false
	}
	return string(raw), true
}

// sessionEntry is a live session row with its user, as load needs them.
type sessionEntry struct {
	id, hash   string // the cookie's random id and its sha256 (the row's key)
	userID     int64
	expiresAt  int64
	lastSeenAt int64
	data       []byte // gob-encoded values other than the user id; never modified
	user       User
}

// cookieKey is a session cookie as the browser sent it. The cache is keyed
// by it, so a remembered cookie skips decoding (its signature was checked
// when it was first loaded, and the key that signed it does not change).
type cookieKey struct{ name, value string }

// sessionWithUser reads a session row joined with its user in one query.
type sessionWithUser struct {
	bun.BaseModel `bun:"table:sessions,alias:s"`

	IDHash     string `bun:"id_hash,pk"`
	UserID     int64  `bun:"user_id"`
	LastSeenAt int64  `bun:"last_seen_at"`
	ExpiresAt  int64  `bun:"expires_at"`
	Data       []byte `bun:"data"`
	User       *User  `bun:"rel:belongs-to,join:user_id=id"`
}

// entry returns the live session named by the cookie value with its user,
// deleting it when it has expired, and refreshes last_seen at most once per
// touchEvery. A bad cookie or a missing session is ErrNotFound.
//
// Under a Snapshot the row may come from memory; a remembered row is used
// only while no touch is due, so its last_seen is at most touchEvery old
// and the idle limit is always judged on the database's own last_seen.
func (st *SessionStore) entry(ctx context.Context, name, value string) (sessionEntry, error) {
	key := cookieKey{name, value}
	nowMS := st.store.Now().UnixMilli()
	e, cached := cacheGet(ctx, st.store, sessionTable, key)
	if !cached || nowMS-e.lastSeenAt >= st.touchEvery.Milliseconds() {
		id, ok := st.decode(name, value)
		if !ok {
			return e, ErrNotFound
		}
		hash := HashToken(id)
		var row sessionWithUser
		err := st.store.DB.NewSelect().Model(&row).Relation("User").Where("s.id_hash = ?", hash).Limit(1).Scan(ctx)
		if err != nil {
			return e, storageErr(err)
		}
		if row.User == nil || row.User.ID == 0 {
			return e, ErrNotFound
		}
		e = sessionEntry{id: id, hash: hash, userID: row.UserID, expiresAt: row.ExpiresAt,
			lastSeenAt: row.LastSeenAt, data: row.Data, user: *row.User}
		cached = false
	}
	if nowMS >= e.expiresAt || nowMS-e.lastSeenAt >= st.cfg.Idle.Milliseconds() {
		markWrite(ctx)
		_, _ = st.store.DB.NewDelete().Model((*SessionRow)(nil)).Where("id_hash = ?", e.hash).Exec(ctx)
		return e, ErrNotFound
	}
	if nowMS-e.lastSeenAt >= st.touchEvery.Milliseconds() {
		if _, err := st.store.DB.NewUpdate().Model((*SessionRow)(nil)).Set("last_seen_at = ?", nowMS).
			Where("id_hash = ?", e.hash).Exec(ctx); err != nil {
			return e, storageErr(err)
		}
		e.lastSeenAt = nowMS
		cached = false
	}
	if !cached {
		cachePut(ctx, st.store, sessionTable, key, e)
	}
	return e, nil
}

// Save persists the session and sets its cookie. A session without an id
// gets a fresh random one (this is how login rotates the id); MaxAge < 0
// deletes the row and expires the cookie. Only sessions carrying a user id
// are stored: Gatehouse keeps no anonymous server-side sessions.
func (st *SessionStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	ctx := r.Context()
	markWrite(ctx)
	if sess.Options == nil {
		sess.Options = st.options()
	}
	if sess.Options.MaxAge < 0 {
		if sess.ID != "" {
			if _, err := st.store.DB.NewDelete().Model((*SessionRow)(nil)).
				Where("id_hash = ?", HashToken(sess.ID)).Exec(ctx); err != nil {
				return storageErr(err)
			}
		}
		http.SetCookie(w, sessions.NewCookie(sess.Name(), "", sess.Options))
		return nil
	}
	userID, _ := sess.Values[UserIDKey].(int64)
	if userID == 0 {
		return errors.New("sessions: refusing to store a session without a user")
	}
	data, err := encodeValues(sess.Values)
	if err != nil {
		return err
	}
	now := st.store.Now()
	if sess.ID == "" {
		sess.ID = RandomToken(32)
		row := &SessionRow{IDHash: HashToken(sess.ID), UserID: userID, CreatedAt: now.UnixMilli(),
			LastSeenAt: now.UnixMilli(), ExpiresAt: now.Add(st.cfg.Absolute).UnixMilli(),
			IP: st.ClientIP(r), UserAgent: truncate(r.UserAgent(), 256), Data: data}
		if _, err := st.store.DB.NewInsert().Model(row).Exec(ctx); err != nil {
			return storageErr(err)
		}
	} else {
		if _, err := st.store.DB.NewUpdate().Model((*SessionRow)(nil)).Set("data = ?", data).
			Set("last_seen_at = ?", now.UnixMilli()).Where("id_hash = ?", HashToken(sess.ID)).Exec(ctx); err != nil {
			return storageErr(err)
		}
	}
	encoded, err := st.codec.Encode(sess.Name(), []byte(sess.ID))
	if err != nil {
		return err
	}
	http.SetCookie(w, sessions.NewCookie(sess.Name(), encoded, sess.Options))
	return nil
}

// encodeValues gob-encodes the session values other than the user id (which
// has its own column).
func encodeValues(values map[any]any) ([]byte, error) {
	if len(values) <= 1 {
		if _, only := values[UserIDKey]; only || len(values) == 0 {
			return nil, nil
		}
	}
	rest := make(map[any]any, len(values))
	for k, v := range values {
		if k != UserIDKey {
			rest[k] = v
		}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(rest); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Revoke deletes one session by its cookie id.
func (st *SessionStore) Revoke(ctx context.Context, id string) error {
	markWrite(ctx)
	_, err := st.store.DB.NewDelete().Model((*SessionRow)(nil)).Where("id_hash = ?", HashToken(id)).Exec(ctx)
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

// RemoteIP is the request's remote address without the port.
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// Login starts a session for userID with a fresh random id and sets its
// cookie, first deleting the request's current session (if any): the id
// rotates on every login, so a session id planted before login is dead.
func (st *SessionStore) Login(w http.ResponseWriter, r *http.Request, userID int64) error {
	if old, err := st.Get(r, st.name); err == nil && old.ID != "" {
		if err := st.Revoke(r.Context(), old.ID); err != nil {
			return err
		}
	}
	sess := sessions.NewSession(st, st.name)
	sess.Options = st.options()
	sess.IsNew = true
	sess.Values[UserIDKey] = userID
	return st.Save(r, w, sess)
}
