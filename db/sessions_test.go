package db

import (
	"context"
	"errors"
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

// newSession starts a session for userID and returns its id, as a login would.
func newSession(t *testing.T, r *Sessions, userID int64) string {
	t.Helper()
	id, err := r.Create(context.Background(), NewSession{UserID: userID, IP: "192.0.2.1", UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// userOf returns the user of the live session id, or 0 when there is none.
func userOf(t *testing.T, r *Sessions, id string) int64 {
	t.Helper()
	sess, err := r.Lookup(context.Background(), id)
	if errors.Is(err, ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	return sess.UserID
}

func TestSessionRowIsKeyedByAHashOfTheID(t *testing.T) {
	forEachStore(t, testSessionRowIsKeyedByAHashOfTheID)
}

func testSessionRowIsKeyedByAHashOfTheID(t *testing.T, s *Store) {
	r := s.Sessions(SessionLimits{})
	u := testUser(t, s, "ann@example.com")
	id := newSession(t, r, u.ID)
	if userOf(t, r, id) != u.ID {
		t.Fatal("the id does not load the session")
	}
	var row SessionRow
	if err := s.DB.NewSelect().Model(&row).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(row.IDHash, id) || row.IDHash != HashToken(id) || len(row.IDHash) != 64 || len(id) < 32 {
		t.Error("the database row is not keyed by a hash of a long random id")
	}
	for _, bad := range []string{"", id[:len(id)-1], strings.Repeat("A", 5000)} {
		if userOf(t, r, bad) != 0 {
			t.Errorf("id %.20q loaded a session", bad)
		}
	}
	if _, err := r.Create(context.Background(), NewSession{}); err == nil {
		t.Error("a session without a user was stored")
	}
}

func TestSessionIdleAndAbsoluteExpiry(t *testing.T) {
	forEachStore(t, testSessionIdleAndAbsoluteExpiry)
}

func testSessionIdleAndAbsoluteExpiry(t *testing.T, s *Store) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	r := s.Sessions(SessionLimits{Idle: time.Hour, Absolute: 3 * time.Hour})
	u := testUser(t, s, "ann@example.com")

	id := newSession(t, r, u.ID)
	now = now.Add(59 * time.Minute)
	if userOf(t, r, id) != u.ID {
		t.Fatal("session ended before the idle limit")
	}
	now = now.Add(59 * time.Minute) // used 59 minutes ago: still alive
	if userOf(t, r, id) != u.ID {
		t.Fatal("activity did not extend the idle limit")
	}
	now = now.Add(61 * time.Minute)
	if userOf(t, r, id) != 0 {
		t.Error("session survived the idle limit")
	}

	id = newSession(t, r, u.ID)
	for i := 0; i < 6; i++ { // active every 30 minutes for 3 hours
		now = now.Add(30 * time.Minute)
		userOf(t, r, id)
	}
	if userOf(t, r, id) != 0 {
		t.Error("session survived the absolute limit")
	}
}

func TestRevokeUserSessions(t *testing.T) { forEachStore(t, testRevokeUserSessions) }

func testRevokeUserSessions(t *testing.T, s *Store) {
	r := s.Sessions(SessionLimits{})
	u := testUser(t, s, "ann@example.com")
	id1, id2, id3 := newSession(t, r, u.ID), newSession(t, r, u.ID), newSession(t, r, u.ID)
	if err := r.Revoke(context.Background(), id3); err != nil {
		t.Fatal(err)
	}
	if userOf(t, r, id3) != 0 {
		t.Error("a revoked session still works")
	}
	if err := s.RevokeUserSessions(context.Background(), u.ID, id2); err != nil {
		t.Fatal(err)
	}
	if userOf(t, r, id1) != 0 || userOf(t, r, id2) != u.ID {
		t.Error("RevokeUserSessions did not revoke all but the kept session")
	}
	if err := s.RevokeUserSessions(context.Background(), u.ID, ""); err != nil {
		t.Fatal(err)
	}
	if userOf(t, r, id2) != 0 {
		t.Error("sessions survived revocation")
	}
}
