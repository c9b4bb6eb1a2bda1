package db

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAccessRequests(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		s.Now = func() time.Time { return now }
		ann, bob := testUser(t, s, "ann@example.com"), testUser(t, s, "bob@example.com")
		sales, _ := s.CreateGroup(ctx, Actor{}, "Sales", "")
		actor := Actor{ID: ann.ID, Email: ann.Email}

		r1, err := s.CreateAccessRequest(ctx, actor, ann.ID, "sales", "please")
		if err != nil || r1.ID == 0 || r1.Status != RequestPending {
			t.Fatalf("CreateAccessRequest: %+v %v", r1, err)
		}
		// The partial unique index allows one pending request per user and dashboard.
		if _, err := s.CreateAccessRequest(ctx, actor, ann.ID, "sales", "again"); !errors.Is(err, ErrDuplicate) {
			t.Errorf("second pending request: %v, want ErrDuplicate", err)
		}
		now = now.Add(time.Minute)
		r2, err := s.CreateAccessRequest(ctx, actor, ann.ID, "finance", "")
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
		r3, err := s.CreateAccessRequest(ctx, Actor{ID: bob.ID, Email: bob.Email}, bob.ID, "sales", "")
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s.CountPendingRequests(ctx); n != 3 || err != nil {
			t.Errorf("pending = %d %v", n, err)
		}
		queue, total, err := s.ListAccessRequests(ctx, RequestPending, 10, 0)
		if err != nil || total != 3 || queue[0].ID != r1.ID || queue[2].ID != r3.ID || queue[0].UserEmail != "ann@example.com" || queue[0].GroupName != "" {
			t.Errorf("pending queue (oldest first): %+v %d %v", queue, total, err)
		}

		now = now.Add(time.Minute)
		if err := s.DecideAccessRequest(ctx, Actor{Email: "admin@example.com"}, r1.ID, true, sales.ID, "ok"); err != nil {
			t.Fatal(err)
		}
		if err := s.DecideAccessRequest(ctx, Actor{Email: "admin@example.com"}, r1.ID, false, 0, ""); !errors.Is(err, ErrAlreadyDecided) {
			t.Errorf("deciding twice: %v", err)
		}
		if err := s.DecideAccessRequest(ctx, Actor{Email: "admin@example.com"}, r2.ID, false, 0, "no"); err != nil {
			t.Fatal(err)
		}
		if err := s.DecideAccessRequest(ctx, Actor{}, r3.ID+99, false, 0, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown request: %v", err)
		}
		got, err := s.AccessRequestByID(ctx, r1.ID)
		if err != nil || got.Status != RequestApproved || got.DecidedBy != "admin@example.com" || got.GroupName != "Sales" ||
			got.DecidedAt != now.UnixMilli() || got.Note != "ok" || got.UserEmail != "ann@example.com" {
			t.Errorf("approved request: %+v %v", got, err)
		}
		if m, err := s.MembershipIn(ctx, ann.ID, "sales"); err != nil || m.ExpiresAt != 0 {
			t.Errorf("approval did not add the membership: %+v %v", m, err)
		}
		if got, _ := s.AccessRequestByID(ctx, r2.ID); got.Status != RequestDenied || got.GroupID != 0 {
			t.Errorf("denied request: %+v", got)
		}
		if _, err := s.AccessRequestByID(ctx, r3.ID+99); !errors.Is(err, ErrNotFound) {
			t.Errorf("AccessRequestByID unknown: %v", err)
		}

		// A decided request no longer blocks a new one.
		now = now.Add(time.Minute)
		r4, err := s.CreateAccessRequest(ctx, actor, ann.ID, "finance", "really")
		if err != nil {
			t.Fatalf("request after a denial: %v", err)
		}
		latest, err := s.LatestRequests(ctx, ann.ID)
		if err != nil || len(latest) != 2 || latest["finance"].ID != r4.ID || latest["sales"].Status != RequestApproved {
			t.Errorf("LatestRequests: %+v %v", latest, err)
		}
		all, total, _ := s.ListAccessRequests(ctx, "", 2, 0)
		if total != 4 || len(all) != 2 || all[0].ID != r4.ID {
			t.Errorf("all requests (newest first): %+v %d", all, total)
		}

		// Approving into a group the user's membership expired in renews it.
		fin, _ := s.CreateGroup(ctx, Actor{}, "Finance", "")
		if err := s.AddMember(ctx, Actor{}, fin.ID, ann.ID, now.Add(time.Hour).UnixMilli()); err != nil {
			t.Fatal(err)
		}
		now = now.Add(2 * time.Hour)
		if err := s.DecideAccessRequest(ctx, Actor{}, r4.ID, true, fin.ID, ""); err != nil {
			t.Fatal(err)
		}
		if m, _ := s.MembershipIn(ctx, ann.ID, "finance"); m.ExpiresAt != 0 {
			t.Errorf("expired membership not renewed: %+v", m)
		}
		// Deleting the group keeps the request, without a group.
		if err := s.DeleteGroup(ctx, Actor{}, fin.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := s.AccessRequestByID(ctx, r4.ID); err != nil || got.GroupID != 0 || got.GroupName != "" {
			t.Errorf("request after its group was deleted: %+v %v", got, err)
		}
	})
}
