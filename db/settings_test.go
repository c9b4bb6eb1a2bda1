package db

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Instances starting at once on one database agree on one signing key, so a
// cookie signed by one is accepted by all.
func TestSecretIsSharedByInstances(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		stores := []*Store{s, openAgain(t, s), openAgain(t, s), openAgain(t, s)}
		keys := make([][]byte, len(stores))
		errs := make([]error, len(stores))
		var wg sync.WaitGroup
		for i, st := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				keys[i], errs[i] = st.Secret(ctx, "session_hash_key", 64)
			}()
		}
		wg.Wait()
		for i := range stores {
			if errs[i] != nil || len(keys[i]) != 64 || !bytes.Equal(keys[i], keys[0]) {
				t.Errorf("instance %d: key %x, %v; want the same 64 bytes as instance 0", i, keys[i], errs[i])
			}
		}
		again, _ := s.Secret(ctx, "session_hash_key", 64)
		if !bytes.Equal(again, keys[0]) {
			t.Error("the secret changed on a second read")
		}
		if other, _ := s.Secret(ctx, "another", 32); len(other) != 32 || bytes.Equal(other[:32], keys[0][:32]) {
			t.Error("another key is not independent")
		}

		// A session made through one instance is valid on the other.
		stA, stB := stores[0].Sessions(SessionLimits{}), stores[1].Sessions(SessionLimits{})
		u := testUser(t, s, "ann@example.com")
		id := newSession(t, stA, u.ID)
		if userOf(t, stB, id) != u.ID {
			t.Error("instance B does not accept a session made on A")
		}
		if err := stB.Revoke(ctx, id); err != nil {
			t.Fatal(err)
		}
		if userOf(t, stA, id) != 0 {
			t.Error("a session revoked on B still works on A")
		}
	})
}

func TestSetupTokens(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		s.Now = func() time.Time { return now }
		old, err := s.NewSetupToken(ctx, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := s.NewSetupToken(ctx, 30*time.Minute)
		for token, want := range map[string]bool{old: true, tok: true, "": false, "bogus": false} {
			if ok, err := s.SetupTokenValid(ctx, token); ok != want || err != nil {
				t.Errorf("SetupTokenValid(%q) = %v %v, want %v", token, ok, err, want)
			}
		}
		now = now.Add(2 * time.Minute)
		if ok, _ := s.SetupTokenValid(ctx, old); ok {
			t.Error("an expired token is valid")
		}
		if _, err := s.CompleteSetup(ctx, old, NewUser{Email: "x@example.com", PasswordHash: "h"}, "10.0.0.1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("setup with an expired token: %v", err)
		}
		u, err := s.CompleteSetup(ctx, tok, NewUser{Email: "root@example.com", Name: "Root", PasswordHash: "h"}, "10.0.0.1")
		if err != nil || !u.IsAdmin || u.ID == 0 {
			t.Fatalf("CompleteSetup: %+v %v", u, err)
		}
		if _, err := s.CompleteSetup(ctx, tok, NewUser{Email: "y@example.com", PasswordHash: "h"}, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("token used twice: %v", err)
		}
		// With an admin, a fresh token does not open setup.
		tok2, _ := s.NewSetupToken(ctx, time.Hour)
		if ok, _ := s.SetupTokenValid(ctx, tok2); ok {
			t.Error("setup open although an admin exists")
		}
		if _, err := s.CompleteSetup(ctx, tok2, NewUser{Email: "z@example.com", PasswordHash: "h"}, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("second admin through setup: %v", err)
		}
		if _, n, _ := s.ListAudit(ctx, AuditFilter{Action: ActionSetup}); n != 1 {
			t.Errorf("%d setup events, want 1", n)
		}
	})
}

// Two instances each printed a setup link; both are used at the same time.
// Only one first admin is created.
func TestConcurrentSetupCreatesOneAdmin(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		other := openAgain(t, s)
		t1, _ := s.NewSetupToken(ctx, time.Hour)
		t2, _ := other.NewSetupToken(ctx, time.Hour)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, job := range []struct {
			st    *Store
			token string
		}{{s, t1}, {other, t2}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = job.st.CompleteSetup(ctx, job.token, NewUser{Email: string(rune('a'+i)) + "@example.com", PasswordHash: "h"}, "")
			}()
		}
		wg.Wait()
		if n, _ := s.CountActiveAdmins(ctx); n != 1 {
			t.Errorf("%d admins after two concurrent setups (%v), want 1", n, errs)
		}
		for _, err := range errs {
			if err != nil && !errors.Is(err, ErrNotFound) {
				t.Errorf("unexpected error: %v", err)
			}
		}
	})
}

func TestSessionRowsAndSweeps(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		s.Now = func() time.Time { return now }
		st := s.Sessions(SessionLimits{Idle: time.Hour, Absolute: 24 * time.Hour})
		ann, bob := testUser(t, s, "ann@example.com"), testUser(t, s, "bob@example.com")

		// Session data round-trips through the data column (BYTEA / BLOB).
		annID, err := st.Create(ctx, NewSession{UserID: ann.ID, IP: "192.0.2.1", UserAgent: "test-agent"})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Update(ctx, annID, []byte("saved \x00 binary \xff")); err != nil {
			t.Fatal(err)
		}
		if sess, err := st.Lookup(ctx, annID); err != nil || string(sess.Data) != "saved \x00 binary \xff" || sess.UserID != ann.ID || sess.User.Email != ann.Email {
			t.Errorf("session data did not round-trip: %+v %v", sess, err)
		}

		newSession(t, st, bob.ID)
		now = now.Add(30 * time.Minute)
		bobNew := newSession(t, st, bob.ID)
		rows, err := s.ListSessions(ctx, bob.ID)
		if err != nil || len(rows) != 2 || rows[0].CreatedAt != now.UnixMilli() {
			t.Fatalf("ListSessions (newest first): %+v %v", rows, err)
		}
		if rows, _ := s.ListSessions(ctx, ann.ID); len(rows) != 1 || rows[0].UserAgent != "test-agent" || rows[0].IP == "" {
			t.Errorf("ann's session row: %+v", rows)
		}
		if n, err := s.CountActiveSessions(ctx); n != 3 || err != nil {
			t.Errorf("CountActiveSessions = %d %v", n, err)
		}
		if err := s.RevokeSession(ctx, Actor{}, bob.ID, rows[0].IDHash); err != nil {
			t.Fatal(err)
		}
		if userOf(t, st, bobNew) != 0 {
			t.Error("revoked session still works")
		}
		if err := s.RevokeSession(ctx, Actor{}, ann.ID, rows[1].IDHash); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoking another user's session: %v", err)
		}
		if _, n, _ := s.ListAudit(ctx, AuditFilter{Action: "session.revoke"}); n != 1 {
			t.Errorf("%d session.revoke events, want 1", n)
		}

		// 45 minutes later the first sessions have been idle for 75 minutes.
		now = now.Add(45 * time.Minute)
		n, err := s.DeleteExpiredSessions(ctx, time.Hour)
		if err != nil || n != 2 {
			t.Errorf("DeleteExpiredSessions = %d %v, want 2", n, err)
		}
		if left, _ := s.CountActiveSessions(ctx); left != 0 {
			t.Errorf("%d sessions left", left)
		}
	})
}
