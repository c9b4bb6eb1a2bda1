package db

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// fixedState returns a resolver that asks for want whatever the database holds.
func fixedState(want AccessState) ResolveAccess {
	return func(AccessState, map[string]int64) (AccessState, error) { return want, nil }
}

func planLines(p AccessPlan) []string {
	var out []string
	for _, c := range p.Changes {
		out = append(out, c.String())
	}
	return out
}

func countRows(t *testing.T, s *Store, table, where string, args ...any) int {
	t.Helper()
	var n int
	q := "SELECT COUNT(*) FROM " + table
	if where != "" {
		q += " WHERE " + where
	}
	if err := s.DB.NewRaw(q, args...).Scan(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestApplyAccess(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
		s.Now = func() time.Time { return now }
		a := Actor{Email: "cli"}
		for _, e := range []string{"ann@example.com", "bob@example.com", "cy@example.com"} {
			if _, err := s.CreateUser(ctx, a, NewUser{Email: e, PasswordHash: "h"}); err != nil {
				t.Fatal(err)
			}
		}
		ann, _ := s.UserByEmail(ctx, "ann@example.com")
		bob, _ := s.UserByEmail(ctx, "bob@example.com")
		sales, _ := s.CreateGroup(ctx, a, "Sales", "sells")
		old, _ := s.CreateGroup(ctx, a, "old", "")
		_ = s.AddMember(ctx, a, sales.ID, ann.ID, 0)
		_ = s.AddMember(ctx, a, sales.ID, bob.ID, 0)
		_ = s.AddMember(ctx, a, old.ID, bob.ID, 0)
		_ = s.AddManager(ctx, a, sales.ID, bob.ID)
		_ = s.AddGrant(ctx, a, "sales", sales.ID)
		_ = s.AddGrant(ctx, a, "finance", old.ID)
		req, _ := s.CreateAccessRequest(ctx, a, ann.ID, "finance", "")
		_ = s.DecideAccessRequest(ctx, a, req.ID, true, old.ID, "")

		exp := time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC).UnixMilli()
		want := AccessState{
			Groups: []StateGroup{
				{Name: "ops", Description: "runs things", Managers: []string{"ann@example.com"}, Members: []StateMember{{Email: "cy@example.com"}}},
				{Name: "sales", Description: "sells", Managers: []string{"ann@example.com"},
					Members: []StateMember{{Email: "ann@example.com", ExpiresAt: exp}, {Email: "cy@example.com"}}},
			},
			Grants: []StateGrant{{Dashboard: "finance", Group: "ops"}, {Dashboard: "sales", Group: "sales"}},
		}
		plan, err := s.PlanAccess(ctx, fixedState(want))
		if err != nil {
			t.Fatal(err)
		}
		wantLines := []string{
			`+ group "ops" (description "runs things")`,
			`+ manager "ops" / ann@example.com`,
			`+ member "ops" / cy@example.com`,
			`~ group "sales": renamed from "Sales"`,
			`+ manager "sales" / ann@example.com`,
			`- manager "sales" / bob@example.com`,
			`~ expiry "sales" / ann@example.com: never → 2027-06-30`,
			`- member "sales" / bob@example.com`,
			`+ member "sales" / cy@example.com`,
			`- group "old" (2 members, 0 managers)`,
			`+ grant finance → "ops"`,
		}
		if got := planLines(plan); !reflect.DeepEqual(got, wantLines) {
			t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
		}
		versionBefore, _ := s.AuthzVersion(ctx)
		auditBefore := countRows(t, s, "audit_events", "")

		applied, err := s.ApplyAccess(ctx, a, "access.yaml", "cafe", fixedState(want))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(planLines(applied), wantLines) {
			t.Errorf("applied a different plan: %q", planLines(applied))
		}
		got, err := s.ReadAccessState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if plan := DiffAccess(got, want); len(plan.Changes) != 0 {
			t.Errorf("after apply the state still differs: %q", planLines(plan))
		}
		if v, _ := s.AuthzVersion(ctx); v <= versionBefore {
			t.Error("apply did not move the authorization version: servers would serve stale decisions")
		}
		// One change set: every change audited with the file's sha256, and one summary.
		if n := countRows(t, s, "audit_events", "") - auditBefore; n != len(wantLines)+1 {
			t.Errorf("%d audit events, want %d changes + 1 summary", n, len(wantLines))
		}
		if n := countRows(t, s, "audit_events", "detail LIKE ?", `%"apply":"cafe"%`); n != len(wantLines) {
			t.Errorf("%d audit events carry the sha256", n)
		}
		if n := countRows(t, s, "audit_events", "action = ? AND target = ? AND detail LIKE ?", ActionAccessApply, "access.yaml", `%"added":6%`); n != 1 {
			t.Error("no access.apply summary event")
		}
		// The removed group's request keeps its row, without the group.
		if r, _ := s.AccessRequestByID(ctx, req.ID); r.GroupName != "" || r.Status != RequestApproved {
			t.Errorf("request after its group was removed: %+v", r)
		}

		// Twice: nothing changes, nothing is written.
		auditBefore = countRows(t, s, "audit_events", "")
		versionBefore, _ = s.AuthzVersion(ctx)
		again, err := s.ApplyAccess(ctx, a, "access.yaml", "cafe", fixedState(want))
		if err != nil || len(again.Changes) != 0 {
			t.Errorf("second apply: %q, %v", planLines(again), err)
		}
		if countRows(t, s, "audit_events", "") != auditBefore {
			t.Error("a second apply wrote to the audit log")
		}
		if v, _ := s.AuthzVersion(ctx); v != versionBefore {
			t.Error("a second apply moved the authorization version")
		}

		// A resolver's error (a bad file) changes nothing.
		bad := errors.New("access.yaml:3:5: unknown email")
		if _, err := s.ApplyAccess(ctx, a, "access.yaml", "beef", func(AccessState, map[string]int64) (AccessState, error) {
			return AccessState{}, bad
		}); !errors.Is(err, bad) {
			t.Errorf("apply of a bad file: %v", err)
		}
		if countRows(t, s, "audit_events", "") != auditBefore {
			t.Error("a refused apply wrote to the audit log")
		}
		// A state naming an unknown user fails whole.
		broken := want
		broken.Groups = append([]StateGroup{{Name: "aaa", Members: []StateMember{{Email: "ghost@example.com"}}}}, want.Groups...)
		if _, err := s.ApplyAccess(ctx, a, "x", "x", fixedState(broken)); err == nil || !strings.Contains(err.Error(), "ghost@example.com") {
			t.Errorf("unknown user: %v", err)
		}
		if _, err := s.GroupByName(ctx, "aaa"); !errors.Is(err, ErrNotFound) {
			t.Error("a failed apply left a group behind")
		}
	})
}

// TestApplyAccessWithConcurrentEdits: panel edits made while an apply is
// running wait for it and land wholly after it (or fail against its result);
// readers see the state before or after the apply, never part of it.
func TestApplyAccessWithConcurrentEdits(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		a := Actor{Email: "cli"}
		const n = 1500
		var want StateGroup
		want.Name = "big"
		var first, last User
		for i := range n {
			u, err := s.CreateUser(ctx, a, NewUser{Email: fmt.Sprintf("u%04d@example.com", i), PasswordHash: "h"})
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = u
			}
			last = u
			want.Members = append(want.Members, StateMember{Email: u.Email})
		}
		big, _ := s.CreateGroup(ctx, a, "big", "")
		side, _ := s.CreateGroup(ctx, a, "side", "")
		_ = s.AddMember(ctx, a, side.ID, last.ID, 0)
		target := AccessState{Groups: []StateGroup{want, {Name: "side", Members: []StateMember{{Email: last.Email}}}}}

		var wg sync.WaitGroup
		stop := make(chan struct{})
		var partial []int
		var mu sync.Mutex
		wg.Add(1)
		go func() { // a reader: the members of big, over and over
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var c int
				if err := s.DB.NewRaw("SELECT COUNT(*) FROM memberships WHERE group_id = ?", big.ID).Scan(ctx, &c); err == nil && c != 0 && c != n {
					mu.Lock()
					partial = append(partial, c)
					mu.Unlock()
				}
			}
		}()
		var addErr, removeErr error
		plan, err := s.ApplyAccess(ctx, a, "f", "s", func(have AccessState, _ map[string]int64) (AccessState, error) {
			// The apply has read the state: now the panel edits, from
			// other connections, while the apply's transaction is open.
			wg.Add(2)
			go func() { defer wg.Done(); addErr = s.AddMember(ctx, Actor{Email: "admin"}, big.ID, first.ID, 0) }()
			go func() { defer wg.Done(); removeErr = s.RemoveMember(ctx, Actor{Email: "admin"}, side.ID, last.ID) }()
			time.Sleep(300 * time.Millisecond) // give them every chance to slip in
			return target, nil
		})
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatalf("apply failed beside panel edits: %v", err)
		}
		if len(plan.Changes) != n {
			t.Errorf("plan has %d changes, want %d", len(plan.Changes), n)
		}
		if len(partial) > 0 {
			t.Errorf("a reader saw a partly applied state: %d of %d members", partial[0], n)
		}
		// The add waited and found the member the apply added; the remove
		// waited and then took effect, after the apply.
		if !errors.Is(addErr, ErrDuplicate) {
			t.Errorf("the panel's add during the apply: %v, want ErrDuplicate (it ran after the apply)", addErr)
		}
		if removeErr != nil {
			t.Errorf("the panel's remove during the apply: %v", removeErr)
		}
		got, _ := s.ReadAccessState(ctx)
		if lines := planLines(DiffAccess(got, target)); !reflect.DeepEqual(lines, []string{`+ member "side" / ` + last.Email}) {
			t.Errorf("after apply and edits, the file would change: %q (want only the panel's later removal undone)", lines)
		}
	})
}

// TestApplyAccessIdP: IdP group mappings are part of the file; the
// memberships group sync manages are left to it unless the file lists them.
func TestApplyAccessIdP(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		a := Actor{Email: "cli"}
		ann, _ := s.CreateUser(ctx, a, NewUser{Email: "ann@example.com", PasswordHash: "h"})
		bob, _ := s.CreateUser(ctx, a, NewUser{Email: "bob@example.com", PasswordHash: "h"})
		sales, _ := s.CreateGroup(ctx, a, "sales", "")
		if err := s.MapIdPGroup(ctx, a, sales.ID, "idp-sales"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SyncIdPGroups(ctx, a, ann.ID, []string{"idp-sales"}); err != nil {
			t.Fatal(err)
		}
		_ = s.AddMember(ctx, a, sales.ID, bob.ID, 0)
		have, err := s.ReadAccessState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		g := have.Groups[0]
		if !reflect.DeepEqual(g.IdPGroups, []string{"idp-sales"}) || !reflect.DeepEqual(g.IdPMembers, []string{"ann@example.com"}) ||
			len(g.Members) != 1 || g.Members[0].Email != "bob@example.com" {
			t.Fatalf("state: %+v", g)
		}

		// The file: mapped to idp-team instead; bob only. ann (from the IdP) stays.
		want := AccessState{Groups: []StateGroup{{Name: "sales", IdPGroups: []string{"idp-team"}, Members: []StateMember{{Email: "bob@example.com"}}}}}
		plan, err := s.ApplyAccess(ctx, a, "f", "s", fixedState(want))
		if err != nil {
			t.Fatal(err)
		}
		if got := planLines(plan); !reflect.DeepEqual(got, []string{`- mapping "sales" ← IdP group "idp-sales"`, `+ mapping "sales" ← IdP group "idp-team"`}) {
			t.Errorf("plan: %q", got)
		}
		if got, _ := s.IdPGroupsOf(ctx, sales.ID); !reflect.DeepEqual(got, []string{"idp-team"}) {
			t.Errorf("mappings after apply: %q", got)
		}
		if _, err := s.MemberOf(ctx, sales.ID, ann.ID); err != nil {
			t.Errorf("the IdP's member was removed by a file that does not list them: %v", err)
		}
		if n := countRows(t, s, "audit_events", "action = ? AND target = ?", ActionGroupMap, "sales ← idp-team"); n != 1 {
			t.Error("the mapping was not audited")
		}

		// Listing ann makes hers a membership the file manages.
		want.Groups[0].Members = append([]StateMember{{Email: "ann@example.com"}}, want.Groups[0].Members...)
		plan, err = s.ApplyAccess(ctx, a, "f", "s2", fixedState(want))
		if err != nil {
			t.Fatal(err)
		}
		if got := planLines(plan); !reflect.DeepEqual(got, []string{`~ member "sales" / ann@example.com: added by the IdP → kept by the file`}) {
			t.Errorf("plan: %q", got)
		}
		if st, _ := s.ReadAccessState(ctx); len(st.Groups[0].IdPMembers) != 0 || len(st.Groups[0].Members) != 2 {
			t.Errorf("ann's membership after the file listed her: %+v", st.Groups[0])
		}
		if again, _ := s.PlanAccess(ctx, fixedState(want)); len(again.Changes) != 0 {
			t.Errorf("plan after apply: %q", planLines(again))
		}
	})
}
