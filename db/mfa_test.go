package db

import (
	"context"
	"errors"
	"testing"
)

func TestTOTPStepsAreUsedOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u := testUser(t, s, "tia@example.com")
		if err := s.UseTOTPStep(ctx, u.ID, 10); !errors.Is(err, ErrReplayed) {
			t.Errorf("a step for a user without an app: %v, want ErrReplayed", err)
		}
		if err := s.StartTOTP(ctx, u.ID, "SECRET1"); err != nil {
			t.Fatal(err)
		}
		if f, _ := s.Factors(ctx, u.ID); f.Any() {
			t.Errorf("an unconfirmed app counts as a factor: %+v", f)
		}
		if err := s.ConfirmTOTP(ctx, Actor{}, u.ID, "OTHER", 100, nil); !errors.Is(err, ErrConflict) {
			t.Errorf("confirming a secret that was replaced: %v, want ErrConflict", err)
		}
		if err := s.ConfirmTOTP(ctx, Actor{}, u.ID, "SECRET1", 100, []string{"h1", "h2"}); err != nil {
			t.Fatal(err)
		}
		if f, _ := s.Factors(ctx, u.ID); !f.TOTP || f.RecoveryLeft != 2 {
			t.Errorf("after confirming: %+v", f)
		}
		if err := s.StartTOTP(ctx, u.ID, "SECRET2"); !errors.Is(err, ErrDuplicate) {
			t.Errorf("starting over a confirmed app: %v, want ErrDuplicate", err)
		}
		for _, tc := range []struct {
			step int64
			want error
		}{{100, ErrReplayed}, {99, ErrReplayed}, {101, nil}, {101, ErrReplayed}, {103, nil}, {102, ErrReplayed}} {
			if err := s.UseTOTPStep(ctx, u.ID, tc.step); !errors.Is(err, tc.want) {
				t.Errorf("step %d: %v, want %v", tc.step, err, tc.want)
			}
		}
	})
}

func TestRecoveryCodesAreSingleUse(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u := testUser(t, s, "rex@example.com")
		other := testUser(t, s, "oz@example.com")
		if err := s.ReplaceRecoveryCodes(ctx, Actor{}, u.ID, []string{"a", "b"}); err != nil {
			t.Fatal(err)
		}
		if err := s.UseRecoveryCode(ctx, Actor{Email: other.Email}, other.ID, "a"); !errors.Is(err, ErrNotFound) {
			t.Errorf("someone else's code: %v, want ErrNotFound", err)
		}
		if err := s.UseRecoveryCode(ctx, Actor{Email: u.Email}, u.ID, "a"); err != nil {
			t.Fatal(err)
		}
		if err := s.UseRecoveryCode(ctx, Actor{Email: u.Email}, u.ID, "a"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a used code again: %v, want ErrNotFound", err)
		}
		if f, _ := s.Factors(ctx, u.ID); f.RecoveryLeft != 1 {
			t.Errorf("codes left = %d, want 1", f.RecoveryLeft)
		}
	})
}

func TestLastFactorAndReset(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u := testUser(t, s, "pat@example.com")
		p, err := s.AddPasskey(ctx, Actor{}, Passkey{UserID: u.ID, CredentialID: []byte{1, 2, 3}, Name: "Laptop", Credential: "{}"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddPasskey(ctx, Actor{}, Passkey{UserID: u.ID, CredentialID: []byte{1, 2, 3}, Name: "Again", Credential: "{}"}); !errors.Is(err, ErrDuplicate) {
			t.Errorf("the same credential twice: %v, want ErrDuplicate", err)
		}
		if got, err := s.PasskeyByCredentialID(ctx, []byte{1, 2, 3}); err != nil || got.ID != p.ID {
			t.Errorf("PasskeyByCredentialID = %+v, %v", got, err)
		}
		if err := s.ReplaceRecoveryCodes(ctx, Actor{}, u.ID, []string{"x"}); err != nil {
			t.Fatal(err)
		}
		if err := s.RemovePasskey(ctx, Actor{}, u.ID, p.ID, true); !errors.Is(err, ErrLastFactor) {
			t.Errorf("removing the last factor while one is required: %v, want ErrLastFactor", err)
		}
		if f, _ := s.Factors(ctx, u.ID); f.Passkeys != 1 {
			t.Errorf("a refused removal removed the passkey: %+v", f)
		}
		if err := s.RemovePasskey(ctx, Actor{}, u.ID, p.ID, false); err != nil {
			t.Fatal(err)
		}
		if f, _ := s.Factors(ctx, u.ID); f.Passkeys != 0 || f.RecoveryLeft != 0 {
			t.Errorf("after removing the last factor: %+v (recovery codes must go with it)", f)
		}

		// Reset: every factor and every session goes, in one audited change.
		if _, err := s.AddPasskey(ctx, Actor{}, Passkey{UserID: u.ID, CredentialID: []byte{4}, Name: "Key", Credential: "{}"}); err != nil {
			t.Fatal(err)
		}
		if err := s.StartTOTP(ctx, u.ID, "S"); err != nil {
			t.Fatal(err)
		}
		if err := s.ConfirmTOTP(ctx, Actor{}, u.ID, "S", 5, []string{"r1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB.NewInsert().Model(&SessionRow{IDHash: "h", UserID: u.ID, ExpiresAt: s.nowMS() + 1e6, AuthMethod: MethodPasswordTOTP}).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		before, err := s.ResetMFA(ctx, Actor{Email: "cli"}, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !before.TOTP || before.Passkeys != 1 || before.RecoveryLeft != 1 {
			t.Errorf("ResetMFA reported %+v", before)
		}
		if f, _ := s.Factors(ctx, u.ID); f.Any() || f.RecoveryLeft != 0 {
			t.Errorf("after reset: %+v", f)
		}
		if sess, _ := s.ListSessions(ctx, u.ID); len(sess) != 0 {
			t.Errorf("after reset %d sessions are left", len(sess))
		}
		events, _, _ := s.ListAudit(ctx, AuditFilter{Action: ActionMFAReset})
		if len(events) != 1 || events[0].Target != u.Email || events[0].ActorEmail != "cli" {
			t.Errorf("reset audit: %+v", events)
		}
		if _, err := s.ResetMFA(ctx, Actor{}, u.ID+99); !errors.Is(err, ErrNotFound) {
			t.Errorf("reset of an unknown user: %v", err)
		}
	})
}

func TestChallengesAreTakenOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if err := s.PutChallenge(ctx, WebAuthnChallenge{IDHash: "c1", Purpose: "signin", Data: "{}", ExpiresAt: s.nowMS() + 60_000}); err != nil {
			t.Fatal(err)
		}
		if c, err := s.TakeChallenge(ctx, "c1"); err != nil || c.Purpose != "signin" {
			t.Fatalf("TakeChallenge = %+v, %v", c, err)
		}
		if _, err := s.TakeChallenge(ctx, "c1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a challenge taken twice: %v", err)
		}
	})
}
