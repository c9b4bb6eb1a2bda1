package db

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestOutboxLeases: a claimed message belongs to one worker until its lease
// ends; a worker that lost the lease cannot finish the message; a retry
// waits until it is due.
func TestOutboxLeases(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
		s.Now = func() time.Time { return now }
		for _, e := range []string{"a@example.com", "b@example.com", "c@example.com"} {
			if err := s.RequestPasswordReset(ctx, Actor{IP: "10.0.0.1"}, e); err != nil {
				t.Fatal(err)
			}
		}
		first, err := s.ClaimMail(ctx, "A", 5*time.Minute, 2)
		if err != nil || len(first) != 2 || first[0].Attempts != 1 || first[0].ClaimedBy != "A" {
			t.Fatalf("A claims: %+v %v", first, err)
		}
		second, _ := s.ClaimMail(ctx, "B", 5*time.Minute, 10)
		if len(second) != 1 || second[0].To != "c@example.com" {
			t.Fatalf("B claims: %+v", second)
		}
		if again, _ := s.ClaimMail(ctx, "B", 5*time.Minute, 10); len(again) != 0 {
			t.Fatalf("leased messages claimed twice: %+v", again)
		}
		// Both die mid-send; when the leases run out a worker takes the
		// messages over.
		now = now.Add(6 * time.Minute)
		taken, _ := s.ClaimMail(ctx, "B", 5*time.Minute, 10)
		if len(taken) != 3 || taken[0].Attempts != 2 {
			t.Fatalf("after A's lease: %+v", taken)
		}
		if ok, err := s.FinishMail(ctx, taken[0].ID, "A", MailSent, ""); ok || err != nil {
			t.Errorf("A finished a message it no longer held: %v %v", ok, err)
		}
		if ok, err := s.FinishMail(ctx, taken[0].ID, "B", MailSent, ""); !ok || err != nil {
			t.Errorf("B could not finish: %v %v", ok, err)
		}
		if err := s.RetryMail(ctx, taken[1].ID, "B", now.Add(time.Minute), "421 try later"); err != nil {
			t.Fatal(err)
		}
		if early, _ := s.ClaimMail(ctx, "B", 5*time.Minute, 10); len(early) != 0 {
			t.Fatalf("a retry claimed before it was due: %+v", early)
		}
		now = now.Add(time.Minute)
		due, _ := s.ClaimMail(ctx, "B", 5*time.Minute, 10)
		if len(due) != 1 || due[0].ID != taken[1].ID || due[0].LastError != "421 try later" {
			t.Fatalf("due retry: %+v", due)
		}
		msgs, _ := s.ListMail(ctx, "", 10)
		sent := 0
		for _, m := range msgs {
			if m.Status == MailSent {
				sent++
				if m.SentAt == 0 {
					t.Error("sent without a time")
				}
			}
		}
		if sent != 1 {
			t.Errorf("%d sent, want 1", sent)
		}
		// Finished rows go after the keep period; pending ones stay.
		now = now.Add(8 * 24 * time.Hour)
		if err := s.SweepMail(ctx, 7*24*time.Hour); err != nil {
			t.Fatal(err)
		}
		if msgs, _ := s.ListMail(ctx, "", 10); len(msgs) != 2 {
			t.Errorf("after the sweep: %d rows, want the 2 pending", len(msgs))
		}
	})
}

// TestResetTokenExpiresAtTheStore: a reset token works until its expiry
// and not at or after it; an expired one changes nothing (password,
// sessions) and stays unusable.
func TestResetTokenExpiresAtTheStore(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
		s.Now = func() time.Time { return now }
		u, err := s.CreateUser(ctx, Actor{}, NewUser{Email: "ann@example.com", PasswordHash: "old-hash"})
		if err != nil {
			t.Fatal(err)
		}
		live, err := s.NewMailToken(ctx, u.ID, TokenReset, 30*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		expired, err := s.NewMailToken(ctx, u.ID, TokenReset, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(10 * time.Minute) // the second token's expiry, to the millisecond
		if _, err := s.MailTokenUser(ctx, expired, TokenReset); !errors.Is(err, ErrNotFound) {
			t.Errorf("an expired token finds its user: %v", err)
		}
		if _, err := s.ResetPasswordWithToken(ctx, expired, "new-hash", "", "10.0.0.1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("reset with an expired token: %v, want ErrNotFound", err)
		}
		if got, _ := s.UserByID(ctx, u.ID); got.PasswordHash != "old-hash" {
			t.Errorf("an expired token changed the password to %q", got.PasswordHash)
		}
		if n := countRows(t, s, "audit_events", "action = ?", ActionPasswordReset); n != 0 {
			t.Errorf("%d reset audit rows after an expired token", n)
		}
		// The live one still works, once.
		if _, err := s.ResetPasswordWithToken(ctx, live, "new-hash", "", "10.0.0.1"); err != nil {
			t.Fatalf("reset with a live token: %v", err)
		}
		if got, _ := s.UserByID(ctx, u.ID); got.PasswordHash != "new-hash" {
			t.Errorf("the live token did not set the password: %q", got.PasswordHash)
		}
	})
}
