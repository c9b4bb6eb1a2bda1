package db

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func memberEmails(ms []Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Email
	}
	return out
}

// TestListGroupMembersBothPlans: a small and a big group (past the size
// where the query walks users in email order) page exactly like the
// straightforward sorted query.
func TestListGroupMembersBothPlans(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		res, err := s.SeedBulk(ctx, SeedSpec{Users: 6000, Groups: 10, Memberships: 55000, PasswordHash: "x", Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if res.Users != 6000 || res.Groups != 10 || res.Memberships != 55000 {
			t.Fatalf("seeded %+v", res)
		}
		for _, gid := range []int64{res.BigGroup, res.TypicalGroup} {
			_, total, err := s.ListMembers(ctx, gid, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			if gid == res.BigGroup && total < bigGroup {
				t.Fatalf("big group has %d members, want at least %d", total, bigGroup)
			}
			for _, offset := range []int{0, 50, total / 2, total - 20, total} {
				want, wantTotal, err := s.ListMembers(ctx, gid, 50, offset)
				if err != nil {
					t.Fatal(err)
				}
				got, gotTotal, err := s.ListGroupMembers(ctx, gid, 50, offset)
				if err != nil {
					t.Fatal(err)
				}
				if gotTotal != wantTotal || !slices.Equal(memberEmails(got), memberEmails(want)) {
					t.Errorf("group %d offset %d: got %d %v…, want %d %v…", gid, offset, gotTotal, head(memberEmails(got)), wantTotal, head(memberEmails(want)))
				}
				for i := range got {
					if i < len(want) && got[i].ExpiresAt != want[i].ExpiresAt {
						t.Errorf("expiry of %s differs", got[i].Email)
					}
				}
			}
		}
		// Ids keep working after a seed (sequences advanced on PostgreSQL).
		if _, err := s.CreateUser(ctx, Actor{}, NewUser{Email: "after@example.com", PasswordHash: "x"}); err != nil {
			t.Errorf("create after seed: %v", err)
		}
		if _, err := s.CreateGroup(ctx, Actor{}, "after", ""); err != nil {
			t.Errorf("create group after seed: %v", err)
		}
	})
}

func head(xs []string) []string {
	if len(xs) > 3 {
		return xs[:3]
	}
	return xs
}

func TestMemberCandidatesAndGroupChoices(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		a := Actor{}
		ann, _ := s.CreateUser(ctx, a, NewUser{Email: "ann@example.com", Name: "Ann Smith", PasswordHash: "x"})
		bob, _ := s.CreateUser(ctx, a, NewUser{Email: "bob@example.com", Name: "Bob Annan", PasswordHash: "x"})
		s.CreateUser(ctx, a, NewUser{Email: "carl@example.com", Name: "Carl", PasswordHash: "x"})
		g, _ := s.CreateGroup(ctx, a, "Sales", "")
		s.CreateGroup(ctx, a, "Support", "")
		s.CreateGroup(ctx, a, "Ops", "")
		if err := s.AddMember(ctx, a, g.ID, ann.ID, 0); err != nil {
			t.Fatal(err)
		}
		users, err := s.MemberCandidates(ctx, g.ID, "ANN", 10)
		if err != nil || len(users) != 1 || users[0].ID != bob.ID {
			t.Errorf("candidates for ann: %v %v", users, err)
		}
		if users, _ := s.MemberCandidates(ctx, g.ID, "%", 10); len(users) != 0 {
			t.Errorf("%% is not literal: %v", users)
		}
		choices, total, err := s.GroupChoicesForUser(ctx, ann.ID, "", 2, 0)
		if err != nil || total != 3 || len(choices) != 2 || choices[0].Name != "Sales" || !choices[0].Member || choices[1].Member {
			t.Errorf("choices: %+v %d %v", choices, total, err)
		}
		choices, total, _ = s.GroupChoicesForUser(ctx, ann.ID, "su", 10, 0)
		if total != 1 || choices[0].Name != "Support" {
			t.Errorf("search choices: %+v", choices)
		}
		c, err := s.GroupChoice(ctx, ann.ID, g.ID)
		if err != nil || !c.Member {
			t.Errorf("choice: %+v %v", c, err)
		}
		if _, err := s.GroupChoice(ctx, ann.ID, 9999); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown group: %v", err)
		}
		if m, err := s.MemberOf(ctx, g.ID, ann.ID); err != nil || m.Email != "ann@example.com" {
			t.Errorf("MemberOf: %+v %v", m, err)
		}
		if _, err := s.MemberOf(ctx, g.ID, bob.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("MemberOf non-member: %v", err)
		}
	})
}

func TestUpdateGroupCheckedRefusesStaleEdits(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		g, _ := s.CreateGroup(ctx, Actor{}, "Sales", "")
		if _, err := s.UpdateGroupChecked(ctx, Actor{}, g.ID, "Sales", "", "Sales", "EU"); err != nil {
			t.Fatal(err)
		}
		cur, err := s.UpdateGroupChecked(ctx, Actor{}, g.ID, "Sales", "", "Sales US", "")
		if !errors.Is(err, ErrConflict) || cur.Description != "EU" {
			t.Errorf("stale edit: %+v %v", cur, err)
		}
		// Saving what is already stored is never a conflict.
		if _, err := s.UpdateGroupChecked(ctx, Actor{}, g.ID, "old", "old", "Sales", "EU"); err != nil {
			t.Errorf("no-op: %v", err)
		}
		if _, err := s.UpdateGroupChecked(ctx, Actor{}, 9999, "", "", "x", ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown: %v", err)
		}
	})
}

func TestSignupUserIsAllOrNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.SignupUser(ctx, Actor{IP: "1.2.3.4"}, NewUser{Email: "a@example.com", PasswordHash: "x"}, "Missing"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing group: %v", err)
		}
		if _, err := s.UserByEmail(ctx, "a@example.com"); !errors.Is(err, ErrNotFound) {
			t.Error("user left behind")
		}
		g, _ := s.CreateGroup(ctx, Actor{}, "Newcomers", "")
		u, err := s.SignupUser(ctx, Actor{IP: "1.2.3.4"}, NewUser{Email: "a@example.com", PasswordHash: "x"}, "newcomers")
		if err != nil || u.IsAdmin || !u.IsActive {
			t.Fatalf("signup: %+v %v", u, err)
		}
		if _, err := s.MemberOf(ctx, g.ID, u.ID); err != nil {
			t.Error("not in the group")
		}
		events, _, _ := s.ListAuditPage(ctx, AuditFilter{Action: ActionUserSignup})
		if len(events) != 1 || events[0].ActorEmail != "a@example.com" || events[0].IP != "1.2.3.4" {
			t.Errorf("audit: %+v", events)
		}
		if _, err := s.SignupUser(ctx, Actor{}, NewUser{Email: "a@example.com", PasswordHash: "x"}, "newcomers"); !errors.Is(err, ErrDuplicate) {
			t.Errorf("twice: %v", err)
		}
	})
}

func TestListAuditPageAndDecidedRequests(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
		s.Now = func() time.Time { return now }
		for i := 0; i < 7; i++ {
			if err := s.Audit(ctx, Actor{Email: fmt.Sprintf("User%d@Example.com", i%2)}, Event{Action: ActionLogin}); err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Hour)
		}
		page, more, err := s.ListAuditPage(ctx, AuditFilter{Limit: 3, Offset: 3})
		if err != nil || len(page) != 3 || !more || page[0].At <= page[1].At {
			t.Errorf("page 2: %d more=%v %v", len(page), more, err)
		}
		page, more, _ = s.ListAuditPage(ctx, AuditFilter{Limit: 3, Offset: 6})
		if len(page) != 1 || more {
			t.Errorf("last page: %d more=%v", len(page), more)
		}
		page, _, _ = s.ListAuditPage(ctx, AuditFilter{Actor: "user1@example", Limit: 10})
		if len(page) != 3 {
			t.Errorf("actor filter ignores case: %d", len(page))
		}
		u, _ := s.CreateUser(ctx, Actor{}, NewUser{Email: "r@example.com", PasswordHash: "x"})
		r1, _ := s.CreateAccessRequest(ctx, Actor{}, u.ID, "a", "")
		s.CreateAccessRequest(ctx, Actor{}, u.ID, "b", "")
		if err := s.DecideAccessRequest(ctx, Actor{Email: "boss"}, r1.ID, false, 0, "no"); err != nil {
			t.Fatal(err)
		}
		decided, err := s.ListDecidedRequests(ctx, 10)
		if err != nil || len(decided) != 1 || decided[0].Dashboard != "a" || decided[0].DecidedBy != "boss" || decided[0].UserEmail != "r@example.com" {
			t.Errorf("decided: %+v %v", decided, err)
		}
	})
}

// TestSearchUsersMatchesListUsers: the admin list's two-step query returns
// exactly what the plain one does, for every filter.
func TestSearchUsersMatchesListUsers(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		res, err := s.SeedBulk(ctx, SeedSpec{Users: 700, Groups: 5, Memberships: 2000, PasswordHash: "x", Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateUser(ctx, Actor{}, NewUser{Email: "boss@example.com", Name: "Anna Boss", PasswordHash: "x", IsAdmin: true}); err != nil {
			t.Fatal(err)
		}
		for _, f := range []UserFilter{
			{}, {Offset: 650}, {Search: "ANNA"}, {Search: "smith", Offset: 10, Limit: 5}, {Search: "nobody"},
			{GroupID: res.TypicalGroup}, {GroupID: res.BigGroup, Search: "a"}, {Admin: true}, {Inactive: true},
			{Search: "%"}, {Search: "_"}, {Offset: 5000},
		} {
			want, wantTotal, err := s.ListUsers(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			got, gotTotal, err := s.SearchUsers(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			wantEmails, gotEmails := make([]string, len(want)), make([]string, len(got))
			for i := range want {
				wantEmails[i] = want[i].Email
			}
			for i := range got {
				gotEmails[i] = got[i].Email
			}
			if gotTotal != wantTotal || !slices.Equal(gotEmails, wantEmails) {
				t.Errorf("%+v: got %d %v, want %d %v", f, gotTotal, head(gotEmails), wantTotal, head(wantEmails))
			}
		}
	})
}
