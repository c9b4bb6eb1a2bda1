package db

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testStore returns a fresh, migrated SQLite store. Tests that should hold
// on both dialects use forEachStore instead.
func testStore(t *testing.T) *Store {
	t.Helper()
	return newSQLiteStore(t)
}

func testUser(t *testing.T, s *Store, email string) User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), Actor{}, NewUser{Email: email, PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// loginCookie logs userID in and returns the cookie the browser would get.
func loginCookie(t *testing.T, st *SessionStore, userID int64) *http.Cookie {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := st.Login(rec, httptest.NewRequest("POST", "/login", nil), userID); err != nil {
		t.Fatal(err)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("want one cookie, got %v", cookies)
	}
	return cookies[0]
}

func userOf(t *testing.T, st *SessionStore, c *http.Cookie) int64 {
	t.Helper()
	r := httptest.NewRequest("GET", "/", nil)
	if c != nil {
		r.AddCookie(c)
	}
	sess, err := st.New(r, st.CookieName())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	id, _ := sess.Values[UserIDKey].(int64)
	return id
}

func TestSessionCookieHoldsOnlyASignedID(t *testing.T) {
	forEachStore(t, testSessionCookieHoldsOnlyASignedID)
}

func testSessionCookieHoldsOnlyASignedID(t *testing.T, s *Store) {
	st, err := s.NewSessionStore(context.Background(), SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	u := testUser(t, s, "ann@example.com")
	c := loginCookie(t, st, u.ID)
	if userOf(t, st, c) != u.ID {
		t.Fatal("cookie does not load the session")
	}
	var row SessionRow
	if err := s.DB.NewSelect().Model(&row).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(c.Value, row.IDHash) || len(row.IDHash) != 64 {
		t.Error("the database row is not keyed by a hash of the id")
	}
}

func TestBadCookiesAreAnonymous(t *testing.T) { forEachStore(t, testBadCookiesAreAnonymous) }

func testBadCookiesAreAnonymous(t *testing.T, s *Store) {
	st, _ := s.NewSessionStore(context.Background(), SessionConfig{})
	u := testUser(t, s, "ann@example.com")
	good := loginCookie(t, st, u.ID)
	otherStore := freshStoreLike(t, s)
	other, _ := otherStore.NewSessionStore(context.Background(), SessionConfig{})
	foreign := loginCookie(t, other, testUser(t, otherStore, "eve@example.com").ID)
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
		if id := userOf(t, st, &http.Cookie{Name: st.CookieName(), Value: value}); id != 0 {
			t.Errorf("%s cookie loaded user %d", name, id)
		}
	}
}

func TestSessionIdleAndAbsoluteExpiry(t *testing.T) {
	forEachStore(t, testSessionIdleAndAbsoluteExpiry)
}

func testSessionIdleAndAbsoluteExpiry(t *testing.T, s *Store) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	st, _ := s.NewSessionStore(context.Background(), SessionConfig{Idle: time.Hour, Absolute: 3 * time.Hour})
	u := testUser(t, s, "ann@example.com")

	c := loginCookie(t, st, u.ID)
	now = now.Add(59 * time.Minute)
	if userOf(t, st, c) != u.ID {
		t.Fatal("session ended before the idle limit")
	}
	now = now.Add(59 * time.Minute) // used 59 minutes ago: still alive
	if userOf(t, st, c) != u.ID {
		t.Fatal("activity did not extend the idle limit")
	}
	now = now.Add(61 * time.Minute)
	if userOf(t, st, c) != 0 {
		t.Error("session survived the idle limit")
	}

	c = loginCookie(t, st, u.ID)
	for i := 0; i < 6; i++ { // active every 30 minutes for 3 hours
		now = now.Add(30 * time.Minute)
		userOf(t, st, c)
	}
	if userOf(t, st, c) != 0 {
		t.Error("session survived the absolute limit")
	}
}

func TestRevokeUserSessions(t *testing.T) { forEachStore(t, testRevokeUserSessions) }

func testRevokeUserSessions(t *testing.T, s *Store) {
	st, _ := s.NewSessionStore(context.Background(), SessionConfig{})
	u := testUser(t, s, "ann@example.com")
	c1, c2 := loginCookie(t, st, u.ID), loginCookie(t, st, u.ID)
	if err := s.RevokeUserSessions(context.Background(), u.ID, ""); err != nil {
		t.Fatal(err)
	}
	if userOf(t, st, c1) != 0 || userOf(t, st, c2) != 0 {
		t.Error("sessions survived revocation")
	}
}
