package db

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func groupNames(groups []Group) []string {
	out := make([]string, len(groups))
	for i, g := range groups {
		out[i] = g.Name
	}
	return out
}

func TestGroupsLifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		g, err := s.CreateGroup(ctx, Actor{}, "Security", "the security team")
		if err != nil || g.ID == 0 || g.NameKey != "security" {
			t.Fatalf("CreateGroup: %+v %v", g, err)
		}
		if _, err := s.CreateGroup(ctx, Actor{}, "SECURITY", ""); !errors.Is(err, ErrDuplicate) {
			t.Errorf("same name in another case: %v, want ErrDuplicate", err)
		}
		other, _ := s.CreateGroup(ctx, Actor{}, "Ops", "")
		if _, err := s.UpdateGroup(ctx, Actor{}, other.ID, "security", ""); !errors.Is(err, ErrDuplicate) {
			t.Errorf("rename onto another group's name: %v", err)
		}
		g2, err := s.UpdateGroup(ctx, Actor{}, g.ID, "SecOps", "new description")
		if err != nil || g2.Name != "SecOps" || g2.NameKey != "secops" {
			t.Fatalf("UpdateGroup: %+v %v", g2, err)
		}
		if _, err := s.UpdateGroup(ctx, Actor{}, g.ID+99, "x", ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("update unknown group: %v", err)
		}
		u := testUser(t, s, "ann@example.com")
		if err := s.AddMember(ctx, Actor{}, g.ID, u.ID, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.AddGrant(ctx, Actor{}, "access", g.ID); err != nil {
			t.Fatal(err)
		}
		for _, get := range []func() (Group, error){
			func() (Group, error) { return s.GroupByID(ctx, g.ID) },
			func() (Group, error) { return s.GroupByName(ctx, " secops ") },
		} {
			got, err := get()
			if err != nil || got.Name != "SecOps" || got.Description != "new description" || got.MemberCount != 1 || got.GrantCount != 1 {
				t.Errorf("lookup: %+v %v", got, err)
			}
		}
		if _, err := s.GroupByName(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown name: %v", err)
		}
		if err := s.DeleteGroup(ctx, Actor{}, g.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GroupByID(ctx, g.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted group still found: %v", err)
		}
		if gs, _ := s.GroupsOfUser(ctx, u.ID); len(gs) != 0 {
			t.Errorf("membership survived the group: %+v", gs)
		}
		if grants, _ := s.ListGrants(ctx); len(grants) != 0 {
			t.Errorf("grant survived the group: %+v", grants)
		}
		if err := s.DeleteGroup(ctx, Actor{}, g.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete: %v", err)
		}
		events, _, _ := s.ListAudit(ctx, AuditFilter{Action: ActionGroupDelete})
		if len(events) != 1 || events[0].Detail == "" {
			t.Errorf("delete audit: %+v", events)
		}
	})
}

func TestListGroupsSearchAndCounts(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, n := range []string{"beta", "Alpha", "gamma_ray", "Delta 50%"} {
			if _, err := s.CreateGroup(ctx, Actor{}, n, "about "+n); err != nil {
				t.Fatal(err)
			}
		}
		alpha, _ := s.GroupByName(ctx, "alpha")
		u1, u2 := testUser(t, s, "a@example.com"), testUser(t, s, "b@example.com")
		_ = s.AddMember(ctx, Actor{}, alpha.ID, u1.ID, 0)
		_ = s.AddMember(ctx, Actor{}, alpha.ID, u2.ID, 0)
		_ = s.AddGrant(ctx, Actor{}, "sales", alpha.ID)

		for _, tc := range []struct {
			search string
			want   []string
		}{
			{"", []string{"Alpha", "beta", "Delta 50%", "gamma_ray"}}, // by lower-cased name
			{"ALP", []string{"Alpha"}},
			{"about g", []string{"gamma_ray"}}, // description
			{"a_r", []string{"gamma_ray"}},
			{"0%", []string{"Delta 50%"}},
			{"%", []string{"Delta 50%"}},
		} {
			groups, total, err := s.ListGroups(ctx, GroupFilter{Search: tc.search})
			if err != nil {
				t.Fatal(err)
			}
			if got := groupNames(groups); !slices.Equal(got, tc.want) || total != len(tc.want) {
				t.Errorf("search %q: %v total %d, want %v", tc.search, got, total, tc.want)
			}
		}
		groups, total, _ := s.ListGroups(ctx, GroupFilter{Limit: 1, Offset: 0})
		if total != 4 || len(groups) != 1 || groups[0].MemberCount != 2 || groups[0].GrantCount != 1 {
			t.Errorf("first page: %+v total %d", groups, total)
		}
	})
}

func TestMembershipsAndGrants(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		s.Now = func() time.Time { return now }
		sales, _ := s.CreateGroup(ctx, Actor{}, "Sales", "")
		leads, _ := s.CreateGroup(ctx, Actor{}, "leads", "")
		ann, bob := testUser(t, s, "ann@example.com"), testUser(t, s, "bob@example.com")
		tomorrow := now.Add(24 * time.Hour).UnixMilli()

		if err := s.AddMember(ctx, Actor{}, sales.ID, ann.ID, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.AddMember(ctx, Actor{}, sales.ID, ann.ID, 0); !errors.Is(err, ErrDuplicate) {
			t.Errorf("second AddMember: %v", err)
		}
		if err := s.AddMember(ctx, Actor{}, sales.ID, bob.ID, tomorrow); err != nil {
			t.Fatal(err)
		}
		if err := s.AddMember(ctx, Actor{}, leads.ID, ann.ID, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.AddMember(ctx, Actor{}, sales.ID+99, ann.ID, 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown group: %v", err)
		}
		if err := s.AddMember(ctx, Actor{}, sales.ID, ann.ID+99, 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown user: %v", err)
		}

		members, total, err := s.ListMembers(ctx, sales.ID, 10, 0)
		if err != nil || total != 2 || len(members) != 2 || members[0].Email != "ann@example.com" ||
			members[0].ExpiresAt != 0 || members[1].ExpiresAt != tomorrow || members[1].AddedAt != now.UnixMilli() {
			t.Errorf("ListMembers: %+v total %d %v", members, total, err)
		}
		if members[1].Expired(now.UnixMilli()) || !members[1].Expired(tomorrow) {
			t.Error("Member.Expired is wrong")
		}
		if page, total, _ := s.ListMembers(ctx, sales.ID, 1, 1); total != 2 || len(page) != 1 || page[0].Email != "bob@example.com" {
			t.Errorf("second page: %+v", page)
		}
		groups, err := s.GroupsOfUser(ctx, ann.ID)
		if err != nil || len(groups) != 2 || groups[0].Name != "leads" || groups[1].Name != "Sales" {
			t.Errorf("GroupsOfUser: %+v %v", groups, err)
		}

		if err := s.SetMemberExpiry(ctx, Actor{}, sales.ID, ann.ID, tomorrow); err != nil {
			t.Fatal(err)
		}
		if err := s.SetMemberExpiry(ctx, Actor{}, sales.ID, bob.ID, 0); err != nil {
			t.Fatal(err)
		}
		m, err := s.MembershipIn(ctx, ann.ID, "SALES")
		if err != nil || m.ExpiresAt != tomorrow || m.GroupID != sales.ID {
			t.Errorf("MembershipIn: %+v %v", m, err)
		}
		if m, _ := s.MembershipIn(ctx, bob.ID, "sales"); m.ExpiresAt != 0 {
			t.Errorf("expiry not cleared: %+v", m)
		}
		if _, err := s.MembershipIn(ctx, bob.ID, "leads"); !errors.Is(err, ErrNotFound) {
			t.Errorf("MembershipIn non-member: %v", err)
		}
		if err := s.SetMemberExpiry(ctx, Actor{}, leads.ID, bob.ID, 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("expiry of a non-member: %v", err)
		}

		// Grants and the facts an access decision reads.
		if err := s.AddGrant(ctx, Actor{}, "sales", sales.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.AddGrant(ctx, Actor{}, "sales", sales.ID); !errors.Is(err, ErrDuplicate) {
			t.Errorf("second grant: %v", err)
		}
		if err := s.AddGrant(ctx, Actor{}, "sales", leads.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.AddGrant(ctx, Actor{}, "access", leads.ID); err != nil {
			t.Fatal(err)
		}
		grants, err := s.ListGrants(ctx)
		if err != nil || len(grants) != 3 || grants[0] != (GrantRow{"access", leads.ID, "leads"}) ||
			grants[1] != (GrantRow{"sales", leads.ID, "leads"}) || grants[2] != (GrantRow{"sales", sales.ID, "Sales"}) {
			t.Errorf("ListGrants: %+v %v", grants, err)
		}
		gg, err := s.GrantingGroups(ctx, bob.ID, "sales")
		want := []GrantingGroup{{leads.ID, "leads", false, 0, ""}, {sales.ID, "Sales", true, 0, ""}}
		if err != nil || !slices.Equal(gg, want) {
			t.Errorf("GrantingGroups(bob): %+v %v, want %+v", gg, err, want)
		}
		gg, _ = s.GrantingGroups(ctx, ann.ID, "sales")
		if want := []GrantingGroup{{leads.ID, "leads", true, 0, ""}, {sales.ID, "Sales", true, tomorrow, ""}}; !slices.Equal(gg, want) {
			t.Errorf("GrantingGroups(ann): %+v, want %+v", gg, want)
		}
		if gg, _ := s.GrantingGroups(ctx, ann.ID, "nothing"); len(gg) != 0 {
			t.Errorf("ungranted dashboard: %+v", gg)
		}

		if err := s.RemoveGrant(ctx, Actor{}, "sales", leads.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveGrant(ctx, Actor{}, "sales", leads.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("second RemoveGrant: %v", err)
		}
		if err := s.RemoveMember(ctx, Actor{}, sales.ID, bob.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveMember(ctx, Actor{}, sales.ID, bob.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("second RemoveMember: %v", err)
		}
		if gg, _ := s.GrantingGroups(ctx, bob.ID, "sales"); len(gg) != 1 || gg[0].Member {
			t.Errorf("after removal: %+v", gg)
		}
		for action, want := range map[string]int{ActionMemberAdd: 3, ActionMemberRemove: 1, ActionMemberExpires: 2, ActionGrantAdd: 3, ActionGrantRemove: 1} {
			if _, n, _ := s.ListAudit(ctx, AuditFilter{Action: action}); n != want {
				t.Errorf("%d %s events, want %d", n, action, want)
			}
		}
	})
}

// A change written through one instance is what another reads on its very
// next query: there is no cache between them.
func TestChangesAreSeenByAnotherInstance(t *testing.T) {
	forEachStore(t, func(t *testing.T, a *Store) {
		ctx := context.Background()
		b := openAgain(t, a)
		g, _ := a.CreateGroup(ctx, Actor{}, "Sales", "")
		u := testUser(t, a, "ann@example.com")
		_ = a.AddGrant(ctx, Actor{}, "sales", g.ID)
		_ = a.AddMember(ctx, Actor{}, g.ID, u.ID, 0)
		if gg, err := b.GrantingGroups(ctx, u.ID, "sales"); err != nil || len(gg) != 1 || !gg[0].Member {
			t.Fatalf("B before removal: %+v %v", gg, err)
		}
		if err := a.RemoveMember(ctx, Actor{}, g.ID, u.ID); err != nil {
			t.Fatal(err)
		}
		if gg, _ := b.GrantingGroups(ctx, u.ID, "sales"); len(gg) != 1 || gg[0].Member {
			t.Errorf("B after removal on A: %+v", gg)
		}
	})
}
