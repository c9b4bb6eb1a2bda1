package db

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAppsStore(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		actor := Actor{Email: "test"}
		a, err := CleanApp(App{Slug: "sales", Upstream: "http://127.0.0.1:9000/", Title: "Sales"})
		if err != nil {
			t.Fatal(err)
		}
		before, _ := s.AuthzVersion(ctx)
		if _, err := s.CreateApp(ctx, actor, a); err != nil {
			t.Fatal(err)
		}
		if after, _ := s.AuthzVersion(ctx); after == before {
			t.Error("adding an app did not move the authorization version: servers would not see it")
		}
		if _, err := s.CreateApp(ctx, actor, a); !errors.Is(err, ErrDuplicate) {
			t.Errorf("second create: %v, want ErrDuplicate", err)
		}
		a.Title = "Sales team"
		if _, err := s.UpdateApp(ctx, actor, a); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.AppBySlug(ctx, "sales"); got.Title != "Sales team" {
			t.Errorf("title after update: %q", got.Title)
		}
		if _, err := s.UpdateApp(ctx, actor, App{Slug: "nope", Upstream: "http://x/", Title: "x"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("update unknown: %v", err)
		}

		// Codes: bound to the app and the session, single use, short-lived.
		u, err := s.CreateUser(ctx, actor, NewUser{Email: "ann@example.com", Name: "Ann", PasswordHash: "x"})
		if err != nil {
			t.Fatal(err)
		}
		sessions := s.Sessions(SessionLimits{})
		sid := newSession(t, sessions, u.ID)
		code, err := s.IssueAppCode(ctx, "sales", HashToken(sid), "ticket")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RedeemAppCode(ctx, "other", code); !errors.Is(err, ErrNotFound) {
			t.Errorf("a code shown to another app: %v, want ErrNotFound", err)
		}
		if _, err := s.RedeemAppCode(ctx, "sales", code); !errors.Is(err, ErrNotFound) {
			t.Errorf("a code shown to the wrong app first is spent, yet redeemed: %v", err)
		}
		code, _ = s.IssueAppCode(ctx, "sales", HashToken(sid), "ticket")
		if row, err := s.RedeemAppCode(ctx, "sales", code); err != nil || row.Ticket != "ticket" || row.SessionHash != HashToken(sid) {
			t.Errorf("redeem: %+v, %v", row, err)
		}
		if _, err := s.RedeemAppCode(ctx, "sales", code); !errors.Is(err, ErrNotFound) {
			t.Errorf("a code redeemed twice: %v", err)
		}
		now := s.Now()
		code, _ = s.IssueAppCode(ctx, "sales", HashToken(sid), "ticket")
		s.Now = func() time.Time { return now.Add(AppCodeTTL) }
		if _, err := s.RedeemAppCode(ctx, "sales", code); !errors.Is(err, ErrNotFound) {
			t.Errorf("an expired code: %v", err)
		}
		s.Now = time.Now
		code, _ = s.IssueAppCode(ctx, "sales", HashToken(sid), "ticket")
		if err := sessions.Revoke(ctx, sid); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RedeemAppCode(ctx, "sales", code); !errors.Is(err, ErrNotFound) {
			t.Errorf("a code of a revoked session: %v", err)
		}

		if err := s.DeleteApp(ctx, actor, "sales"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteApp(ctx, actor, "sales"); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete twice: %v", err)
		}
		evs, _, err := s.ListAudit(ctx, AuditFilter{Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range evs {
			seen[e.Action] = true
		}
		for _, want := range []string{ActionAppCreate, ActionAppUpdate, ActionAppDelete} {
			if !seen[want] {
				t.Errorf("no %s in the audit log", want)
			}
		}
	})
}
