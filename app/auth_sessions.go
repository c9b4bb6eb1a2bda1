package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/gob"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/db"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
)

// UserIDKey is the session value holding the logged-in user's id.
const UserIDKey = "user_id"

// MethodKey is the session value holding how the session was authenticated
// (db.MethodPassword, db.MethodPasskey, …). Like the user id it has its own
// column; it is fixed when the session is created.
const MethodKey = "auth_method"

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

// SessionStore implements gorilla/sessions' Store over the database's
// session repository (db.Sessions): the cookie holds only a signed random id
// (256 bits from crypto/rand), and the row (keyed by the id's sha256) holds
// the user, times, IP and user agent. Deleting rows revokes sessions at once.
type SessionStore struct {
	repo  *db.Sessions
	codec *securecookie.SecureCookie
	cfg   SessionConfig
	name  string
	// ClientIP extracts the client address recorded with a new session; the
	// app sets it to honour its trusted-proxy setting.
	ClientIP func(*http.Request) string
	// verified remembers cookie values whose signature checked out.
	verified verifiedCookies
	// blank is a session named name without values or options, which
	// newSession copies.
	blank *sessions.Session
}

// NewSessionStore returns a session store over store whose signing key is
// generated on first start and shared through the database.
func NewSessionStore(ctx context.Context, store *db.Store, cfg SessionConfig) (*SessionStore, error) {
	repo := store.Sessions(db.SessionLimits{Idle: cfg.Idle, Absolute: cfg.Absolute})
	limits := repo.Limits()
	cfg.Idle, cfg.Absolute = limits.Idle, limits.Absolute
	key, err := store.Secret(ctx, "session_hash_key", 64)
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
	st := &SessionStore{repo: repo, codec: codec, cfg: cfg, name: name, ClientIP: remoteIP}
	st.blank = sessions.NewSession(st, name)
	st.blank.Values, st.blank.Options = nil, nil
	return st, nil
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
	c, err := r.Cookie(name)
	if err != nil {
		return st.newSession(name), nil
	}
	sess, _, err := st.loadValue(r.Context(), name, c.Value, time.Now())
	return sess, err
}

// LoadCookie returns the session named by a session cookie's value and its
// user, read together with one query or, under a db.Snapshot in ctx whose
// version is unchanged, from memory (see db/authz_cache.go). A value without
// a live session gets a new, empty session (IsNew) and the zero User. The
// user is returned whether active or not; the caller decides.
//
// Unlike Get, LoadCookie does not register the session in gorilla's
// per-request registry: the caller keeps the returned session.
func (st *SessionStore) LoadCookie(ctx context.Context, value string) (*sessions.Session, db.User, error) {
	return st.loadValue(ctx, st.name, value, time.Now())
}

// loadCookieAt is LoadCookie checking the cookie's age at now, for a
// request that has read the clock already.
func (st *SessionStore) loadCookieAt(ctx context.Context, value string, now time.Time) (*sessions.Session, db.User, error) {
	return st.loadValue(ctx, st.name, value, now)
}

// newSession returns a new, empty session named name with the store's
// options. Every request with a cookie makes one, so a session of the
// store's own cookie is a copy of blank (gorilla keeps a session's store
// and name unexported: only NewSession sets them) allocated together with
// its Options.
func (st *SessionStore) newSession(name string) *sessions.Session {
	if name != st.name || st.blank == nil {
		sess := sessions.NewSession(st, name)
		*sess.Options = *st.options() // NewSession allocated the Options; fill them in
		sess.IsNew = true
		return sess
	}
	b := &sessionAlloc{sess: *st.blank, opts: *st.options()}
	b.sess.Values = make(map[any]any)
	b.sess.Options = &b.opts
	b.sess.IsNew = true
	return &b.sess
}

// sessionAlloc is a session and its options in one allocation.
type sessionAlloc struct {
	sess sessions.Session
	opts sessions.Options
}

func (st *SessionStore) loadValue(ctx context.Context, name, value string, now time.Time) (*sessions.Session, db.User, error) {
	sess := st.newSession(name)
	id, ok := st.decode(name, value, now)
	if !ok {
		return sess, db.User{}, nil
	}
	e, err := st.repo.Lookup(ctx, id)
	if err != nil {
		if errors.Is(err, db.ErrNotFound) {
			return sess, db.User{}, nil
		}
		return sess, db.User{}, err
	}
	old := false // the method recorded in the data, before the column existed
	if len(e.Data) > 0 {
		if err := gob.NewDecoder(bytes.NewReader(e.Data)).Decode(&sess.Values); err != nil {
			return sess, db.User{}, nil
		}
		_, old = sess.Values[MethodKey]
	}
	sess.Values[UserIDKey] = e.UserID
	if !old || e.Method != db.MethodPassword {
		// The column, unless it holds the migration's default for a session
		// that recorded its method in its data before the column existed.
		sess.Values[MethodKey] = e.Method
	}
	sess.ID = e.ID
	sess.IsNew = false
	return sess, e.User, nil
}

// Deadline returns when the live session named by a session cookie's value
// ends unless it is used again (db.Session.Ends). A value without a live
// session is db.ErrNotFound. Like LoadCookie it may answer from memory
// under a snapshot.
func (st *SessionStore) Deadline(ctx context.Context, value string) (time.Time, error) {
	id, ok := st.decode(st.name, value, time.Now())
	if !ok {
		return time.Time{}, db.ErrNotFound
	}
	e, err := st.repo.Lookup(ctx, id)
	if err != nil {
		return time.Time{}, err
	}
	return e.Ends, nil
}

// decode returns the session id a cookie value carries, if its signature
// (by this deployment's key) and age (at now) check out.
//
// Every open dashboard polls its panels with the same cookie, so a value
// that checked out once is remembered (verifiedCookies): the next request
// compares strings and the cookie's age instead of decoding base64 and
// computing an HMAC. Only values that passed the full check are kept, so
// nothing a client makes up can be answered from memory, and the age is
// checked on every use exactly as securecookie checks it.
func (st *SessionStore) decode(name, value string, now time.Time) (string, bool) {
	if value == "" || len(value) > 512 {
		return "", false
	}
	cached := name == st.name
	if cached {
		if c, ok := st.verified.get(value); ok {
			if maxAge := int64(st.cfg.Absolute / time.Second); maxAge != 0 && c.issued < now.Unix()-maxAge {
				return "", false
			}
			return c.id, true
		}
	}
	var raw []byte
	if err := st.codec.Decode(name, value, &raw); err != nil || len(raw) < 32 || len(raw) > 64 {
		return "", false
	}
	id := string(raw)
	if cached {
		if issued, ok := cookieIssued(value); ok {
			st.verified.put(value, verifiedCookie{id: id, issued: issued})
		}
	}
	return id, true
}

// cookieIssued reads the issue time (Unix seconds) from a securecookie
// value that has already been verified: base64 of "date|value|mac".
func cookieIssued(value string) (int64, bool) {
	b, err := base64.URLEncoding.DecodeString(value)
	if err != nil {
		return 0, false
	}
	date, _, ok := bytes.Cut(b, []byte("|"))
	if !ok {
		return 0, false
	}
	t, err := strconv.ParseInt(string(date), 10, 64)
	return t, err == nil
}

// maxVerifiedCookies bounds verifiedCookies; a full cache is emptied (the
// next request of each session checks its signature again).
const maxVerifiedCookies = 20_000

// verifiedCookies maps cookie values that passed securecookie's check to
// the session id they carry and when they were issued. A revoked session's
// value may stay here: it names a row that is gone, so it is still
// anonymous (the database lookup decides, not this cache).
type verifiedCookies struct {
	m sync.Map // string -> verifiedCookie
	n atomic.Int64
}

type verifiedCookie struct {
	id     string
	issued int64
}

func (v *verifiedCookies) get(value string) (verifiedCookie, bool) {
	c, ok := v.m.Load(value)
	if !ok {
		return verifiedCookie{}, false
	}
	return c.(verifiedCookie), true
}

func (v *verifiedCookies) put(value string, c verifiedCookie) {
	if v.n.Add(1) > maxVerifiedCookies {
		v.m.Clear()
		v.n.Store(1)
	}
	v.m.Store(value, c)
}

// Save persists the session and sets its cookie. A session without an id
// gets a fresh random one (this is how login rotates the id); MaxAge < 0
// deletes the row and expires the cookie. Only sessions carrying a user id
// are stored: Gatehouse keeps no anonymous server-side sessions.
func (st *SessionStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	ctx := r.Context()
	if sess.Options == nil {
		sess.Options = st.options()
	}
	if sess.Options.MaxAge < 0 {
		if sess.ID != "" {
			if err := st.repo.Revoke(ctx, sess.ID); err != nil {
				return err
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
	if sess.ID == "" {
		method, _ := sess.Values[MethodKey].(string)
		id, err := st.repo.Create(ctx, db.NewSession{UserID: userID, IP: st.ClientIP(r), UserAgent: r.UserAgent(), Data: data, Method: method})
		if err != nil {
			return err
		}
		sess.ID = id
	} else if err := st.repo.Update(ctx, sess.ID, data); err != nil {
		return err
	}
	encoded, err := st.codec.Encode(sess.Name(), []byte(sess.ID))
	if err != nil {
		return err
	}
	http.SetCookie(w, sessions.NewCookie(sess.Name(), encoded, sess.Options))
	return nil
}

// encodeValues gob-encodes the session values other than the user id and
// the method (which have their own columns).
func encodeValues(values map[any]any) ([]byte, error) {
	rest := make(map[any]any, len(values))
	for k, v := range values {
		if k != UserIDKey && k != MethodKey {
			rest[k] = v
		}
	}
	if len(rest) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(rest); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Revoke deletes one session by its cookie id.
func (st *SessionStore) Revoke(ctx context.Context, id string) error {
	return st.repo.Revoke(ctx, id)
}

// Login starts a password session for userID (see LoginWith).
func (st *SessionStore) Login(w http.ResponseWriter, r *http.Request, userID int64) error {
	_, err := st.LoginWith(w, r, userID, nil)
	return err
}

// LoginWith is Login for a session that starts with values besides the
// user id (e.g. how it signed in); it returns the new session.
func (st *SessionStore) LoginWith(w http.ResponseWriter, r *http.Request, userID int64, values map[any]any) (*sessions.Session, error) {
	if old, err := st.Get(r, st.name); err == nil && old.ID != "" {
		if err := st.Revoke(r.Context(), old.ID); err != nil {
			return nil, err
		}
	}
	sess := st.newSession(st.name)
	for k, v := range values {
		sess.Values[k] = v
	}
	sess.Values[UserIDKey] = userID
	return sess, st.Save(r, w, sess)
}

// sessionMethod is how a loaded session was authenticated.
func sessionMethod(sess *sessions.Session) string {
	m, _ := sess.Values[MethodKey].(string)
	return m
}

// remoteIP is the request's remote address without the port.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
