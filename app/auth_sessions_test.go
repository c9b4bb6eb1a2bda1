package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"gatehouse/db"
)

// loginCookie logs userID in through st and returns the cookie the browser would get.
func loginCookie(t testing.TB, st *SessionStore, userID int64) *http.Cookie {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/login", nil)
	req.Header.Set("User-Agent", "test-agent")
	if err := st.Login(rec, req, userID); err != nil {
		t.Fatal(err)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("want one cookie, got %v", cookies)
	}
	return cookies[0]
}

// sessionOf loads the session the cookie names (a new, empty one if none).
func sessionOf(t testing.TB, st *SessionStore, c *http.Cookie) *sessions.Session {
	t.Helper()
	r := httptest.NewRequest("GET", "/", nil)
	if c != nil {
		r.AddCookie(c)
	}
	sess, err := st.New(r, st.CookieName())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return sess
}

func cookieUser(t testing.TB, st *SessionStore, c *http.Cookie) int64 {
	t.Helper()
	id, _ := sessionOf(t, st, c).Values[UserIDKey].(int64)
	return id
}

func TestSessionCookieHoldsOnlyASignedID(t *testing.T) {
	ta := newTestApp(t)
	u := ta.createUser(t, "ann@example.com", false)
	c := loginCookie(t, ta.sessions, u.ID)
	if cookieUser(t, ta.sessions, c) != u.ID {
		t.Fatal("cookie does not load the session")
	}
	rows, err := ta.store.ListSessions(context.Background(), u.ID)
	if err != nil || len(rows) != 1 {
		t.Fatalf("sessions: %+v %v", rows, err)
	}
	if strings.Contains(c.Value, rows[0].IDHash) || len(rows[0].IDHash) != 64 || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie %+v for row %+v", c, rows[0])
	}
	if rows[0].UserAgent != "test-agent" || rows[0].IP != "192.0.2.1" {
		t.Errorf("the row does not record the client: %+v", rows[0])
	}
}

func TestBadCookiesAreAnonymous(t *testing.T) {
	ta, other := newTestApp(t), newTestApp(t)
	good := loginCookie(t, ta.sessions, ta.createUser(t, "ann@example.com", false).ID)
	foreign := loginCookie(t, other.sessions, other.createUser(t, "eve@example.com", false).ID)
	flip := []byte(good.Value)
	flip[len(flip)/2] ^= 1
	for name, value := range map[string]string{
		"empty":     "",
		"truncated": good.Value[:len(good.Value)/2],
		"tampered":  string(flip),
		"garbage":   "%%%not base64%%%",
		"huge":      strings.Repeat("A", 5000),
		"foreign":   foreign.Value, // signed by another instance's key
	} {
		if id := cookieUser(t, ta.sessions, &http.Cookie{Name: ta.sessions.CookieName(), Value: value}); id != 0 {
			t.Errorf("%s cookie loaded user %d", name, id)
		}
	}
	if cookieUser(t, ta.sessions, good) == 0 {
		t.Error("the genuine cookie did not load")
	}
}

// Session values besides the user id round-trip, and a logout (MaxAge < 0)
// deletes the row.
func TestSessionValuesAndLogout(t *testing.T) {
	ta := newTestApp(t)
	ann := ta.createUser(t, "ann@example.com", false)
	c := loginCookie(t, ta.sessions, ann.ID)
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(c)
	sess, _ := ta.sessions.New(r, ta.sessions.CookieName())
	sess.Values["flash"] = "saved \x00 binary \xff"
	if err := ta.sessions.Save(r, httptest.NewRecorder(), sess); err != nil {
		t.Fatal(err)
	}
	got := sessionOf(t, ta.sessions, c)
	if got.Values["flash"] != "saved \x00 binary \xff" || got.Values[UserIDKey] != ann.ID {
		t.Errorf("session values did not round-trip: %#v", got.Values)
	}
	got.Options.MaxAge = -1
	rec := httptest.NewRecorder()
	if err := ta.sessions.Save(r, rec, got); err != nil {
		t.Fatal(err)
	}
	if cookieUser(t, ta.sessions, c) != 0 {
		t.Error("the session survived a logout")
	}
	if ck := rec.Result().Cookies(); len(ck) != 1 || ck[0].MaxAge >= 0 {
		t.Errorf("logout cookie: %v", ck)
	}
}

// Instances on one database accept each other's cookies and revocations.
func TestSessionCookiesWorkAcrossInstances(t *testing.T) {
	ta := newTestApp(t)
	ctx := context.Background()
	store, err := OpenStore(ctx, ta.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	store.Now = ta.Clock.Now
	other, err := NewSessionStore(ctx, store, SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	u := ta.createUser(t, "ann@example.com", false)
	c := loginCookie(t, ta.sessions, u.ID)
	sess := sessionOf(t, other, c)
	if sess.Values[UserIDKey] != u.ID {
		t.Fatal("instance B does not accept a session made on A")
	}
	if err := other.Revoke(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
	if cookieUser(t, ta.sessions, c) != 0 {
		t.Error("a session revoked on B still works on A")
	}
}

// FuzzSessionCookie: whatever the cookie holds, loading it never panics,
// never errors, and never yields a user unless it is a genuine cookie.
func FuzzSessionCookie(f *testing.F) {
	ta := newTestApp(f)
	u, err := ta.store.CreateUser(context.Background(), db.Actor{}, db.NewUser{Email: "ann@example.com", PasswordHash: "x"})
	if err != nil {
		f.Fatal(err)
	}
	genuine := loginCookie(f, ta.sessions, u.ID).Value
	f.Add(genuine)
	f.Add(genuine[:len(genuine)-1])
	f.Add("")
	f.Add("MTcwMDAwMDAwMHxhYmN8ZGVm")
	f.Add(strings.Repeat("A", 600))
	f.Fuzz(func(t *testing.T, value string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: ta.sessions.CookieName(), Value: value})
		sess, err := ta.sessions.New(r, ta.sessions.CookieName())
		if err != nil {
			t.Fatalf("error for cookie %q: %v", value, err)
		}
		if id, _ := sess.Values[UserIDKey].(int64); id != 0 && value != genuine {
			t.Fatalf("forged cookie %q loaded user %d", value, id)
		}
	})
}

// A cookie value that checked out once is answered from memory after that
// (verifiedCookies), so the memory must never accept what the full check
// refuses: a changed value, or a value older than the session's absolute
// lifetime.
func TestVerifiedCookieMemoryKeepsTheChecks(t *testing.T) {
	ta := newTestApp(t)
	u := ta.createUser(t, "ann@example.com", false)
	st := ta.sessions
	c := loginCookie(t, st, u.ID)

	if cookieUser(t, st, c) != u.ID || cookieUser(t, st, c) != u.ID {
		t.Fatal("a good cookie does not load its session twice in a row")
	}
	known, ok := st.verified.get(c.Value)
	if !ok {
		t.Fatal("a verified cookie value was not remembered")
	}
	issued, ok := cookieIssued(c.Value)
	if !ok || known.issued != issued || issued > time.Now().Unix() || issued < time.Now().Unix()-60 {
		t.Fatalf("remembered issue time %d, parsed %d (%v)", known.issued, issued, ok)
	}

	// One character changed: refused, and not remembered.
	b := []byte(c.Value)
	b[len(b)/2] ^= 1
	forged := &http.Cookie{Name: c.Name, Value: string(b)}
	if got := cookieUser(t, st, forged); got != 0 {
		t.Fatalf("a changed cookie loaded user %d", got)
	}
	if _, ok := st.verified.get(forged.Value); ok {
		t.Fatal("a refused cookie value was remembered")
	}

	// Past the absolute lifetime the remembered value is refused too, as
	// securecookie refuses it.
	maxAge := int64(st.Config().Absolute / time.Second)
	st.verified.put(c.Value, verifiedCookie{id: known.id, issued: time.Now().Unix() - maxAge - 5})
	if got := cookieUser(t, st, c); got != 0 {
		t.Fatalf("a cookie older than the session lifetime loaded user %d from memory", got)
	}

	// A revoked session stays anonymous although its value is remembered.
	st.verified.put(c.Value, known)
	if cookieUser(t, st, c) != u.ID {
		t.Fatal("the restored memory does not load the session")
	}
	if err := st.Revoke(context.Background(), known.id); err != nil {
		t.Fatal(err)
	}
	if got := cookieUser(t, st, c); got != 0 {
		t.Fatalf("a revoked session loaded user %d", got)
	}
}

// TestRememberedCookieAgesOut: a cookie value remembered after its first
// full check is still refused, from memory, once it is older than the
// session's absolute limit at the time the request is checked.
func TestRememberedCookieAgesOut(t *testing.T) {
	ta := newTestApp(t)
	u := ta.createUser(t, "ann@example.com", false)
	c := loginCookie(t, ta.sessions, u.ID)
	now := time.Now()
	id, ok := ta.sessions.decode(ta.sessions.CookieName(), c.Value, now)
	if !ok || id == "" {
		t.Fatal("a fresh cookie does not decode")
	}
	if _, ok := ta.sessions.verified.get(c.Value); !ok {
		t.Fatal("a cookie that passed the full check is not remembered")
	}
	limit := ta.sessions.Config().Absolute
	if _, ok := ta.sessions.decode(ta.sessions.CookieName(), c.Value, now.Add(limit-time.Minute)); !ok {
		t.Error("a remembered cookie within its age is refused")
	}
	if _, ok := ta.sessions.decode(ta.sessions.CookieName(), c.Value, now.Add(limit+time.Minute)); ok {
		t.Error("a remembered cookie past the absolute limit is accepted")
	}
}

// TestNewSessionsAreIndependent: sessions made from the store's blank one
// carry its name, store and options, and share nothing with each other.
func TestNewSessionsAreIndependent(t *testing.T) {
	ta := newTestApp(t)
	st := ta.sessions
	a, b := st.newSession(st.CookieName()), st.newSession(st.CookieName())
	for _, s := range []*sessions.Session{a, b} {
		if s.Name() != st.CookieName() || s.Store() != st || !s.IsNew || *s.Options != *st.options() || len(s.Values) != 0 {
			t.Fatalf("new session %+v (name %q, options %+v), want the store's name, store and options", s, s.Name(), *s.Options)
		}
	}
	a.Values["k"] = 1
	a.Options.MaxAge = -1
	if len(b.Values) != 0 || b.Options.MaxAge == -1 || st.blank.Values != nil || st.blank.Options != nil {
		t.Fatal("sessions made by newSession share their values or options")
	}
	if other := st.newSession("other"); other.Name() != "other" || other.Store() != st || *other.Options != *st.options() {
		t.Fatalf("a session of another name: %q, %+v", other.Name(), *other.Options)
	}
}
