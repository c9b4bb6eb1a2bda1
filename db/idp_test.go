package db

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSignInWithIdPWithoutGroupSync: a first sign-in without group sync
// (--oidc-groups-claim "") links an existing user or creates one of an
// allowed domain, on both dialects, and so does the next one.
func TestSignInWithIdPWithoutGroupSync(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		old, err := s.CreateUser(ctx, Actor{}, NewUser{Email: "old@corp.example.org", PasswordHash: "hash"})
		if err != nil {
			t.Fatal(err)
		}
		policy := SSOPolicy{Domains: []string{"example.com"}}
		for _, round := range []string{"first", "second"} {
			res, err := s.SignInWithIdP(ctx, Actor{Email: "idp"}, IdPIdentity{Issuer: "https://idp", Subject: "old",
				Email: "old@corp.example.org", EmailVerified: true}, policy)
			if err != nil || res.User.ID != old.ID || res.Linked != (round == "first") {
				t.Errorf("%s sign-in of an existing user: %+v %v", round, res, err)
			}
			res, err = s.SignInWithIdP(ctx, Actor{Email: "idp"}, IdPIdentity{Issuer: "https://idp", Subject: "nia",
				Email: "nia@example.com", EmailVerified: true}, policy)
			if err != nil || res.User.Email != "nia@example.com" || res.Created != (round == "first") {
				t.Errorf("%s sign-in of a new person: %+v %v", round, res, err)
			}
		}
		if n := countRows(t, s, "user_identities", ""); n != 2 {
			t.Errorf("%d identities, want 2", n)
		}
		// --oidc-link=never: an unlinked account with the email is refused,
		// and nothing is linked.
		if _, err := s.CreateUser(ctx, Actor{}, NewUser{Email: "kit@example.com", PasswordHash: "hash"}); err != nil {
			t.Fatal(err)
		}
		_, err = s.SignInWithIdP(ctx, Actor{Email: "idp"}, IdPIdentity{Issuer: "https://idp", Subject: "kit",
			Email: "kit@example.com", EmailVerified: true}, SSOPolicy{Domains: policy.Domains, NoEmailLink: true})
		if !errors.Is(err, ErrLinkRefused) {
			t.Errorf("never linking by email: %v, want ErrLinkRefused", err)
		}
		if n := countRows(t, s, "user_identities", ""); n != 2 {
			t.Errorf("%d identities after the refusal, want 2", n)
		}
	})
}

// TestSignInWithIdPDiscardsAnUnconfirmedSignup: linking an unconfirmed
// sign-up keeps neither its password nor its pending state nor its links,
// so confirming it afterwards does nothing.
func TestSignInWithIdPDiscardsAnUnconfirmedSignup(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u, err := s.SignupPendingUser(ctx, Actor{IP: "192.0.2.1"}, NewUser{Email: "vic@example.com", Name: "Not Vic", PasswordHash: "attacker"})
		if err != nil {
			t.Fatal(err)
		}
		confirm, err := s.NewMailToken(ctx, u.ID, TokenVerify, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.SignInWithIdP(ctx, Actor{Email: "idp"}, IdPIdentity{Issuer: "https://idp", Subject: "vic",
			Email: "vic@example.com", EmailVerified: true, Name: "Vic"}, SSOPolicy{})
		if err != nil || !res.Linked || res.User.PasswordHash != "" || res.User.EmailPending {
			t.Fatalf("linking the sign-up: %+v %v", res, err)
		}
		got, _ := s.UserByID(ctx, u.ID)
		if got.PasswordHash != "" || got.EmailPending || got.Name != "Vic" {
			t.Errorf("after linking: password kept %v, pending %v, name %q", got.PasswordHash != "", got.EmailPending, got.Name)
		}
		if _, err := s.ConfirmEmail(ctx, confirm, "", "192.0.2.1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("confirming the old sign-up: %v, want ErrNotFound", err)
		}
		if n := countRows(t, s, "mail_tokens", "user_id = ?", u.ID); n != 0 {
			t.Errorf("%d emailed links of the sign-up left", n)
		}
	})
}
