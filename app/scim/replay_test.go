package scim_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"gatehouse/db"
)

var admin = db.Actor{Email: "admin@example.com"}

// mapGroup makes a Gatehouse group fed by idpGroup.
func (e *env) mapGroup(name, idpGroup string) db.Group {
	e.t.Helper()
	ctx := context.Background()
	g, err := e.store.GroupByName(ctx, name)
	if errors.Is(err, db.ErrNotFound) {
		g, err = e.store.CreateGroup(ctx, admin, name, "")
	}
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.MapIdPGroup(ctx, admin, g.ID, idpGroup); err != nil {
		e.t.Fatal(err)
	}
	return g
}

// membership is a user's membership in a Gatehouse group ("" when none,
// else its source).
func (e *env) membership(email, group string) string {
	e.t.Helper()
	ctx := context.Background()
	u, err := e.store.UserByEmail(ctx, email)
	if err != nil {
		e.t.Fatalf("%s: %v", email, err)
	}
	m, err := e.store.MembershipIn(ctx, u.ID, group)
	if errors.Is(err, db.ErrNotFound) {
		return ""
	} else if err != nil {
		e.t.Fatal(err)
	}
	return m.Source
}

func (e *env) user(email string) db.User {
	e.t.Helper()
	u, err := e.store.UserByEmail(context.Background(), email)
	if err != nil {
		e.t.Fatalf("%s: %v", email, err)
	}
	return u
}

// audited counts audit rows by actor, action and target.
func (e *env) audited(actor, action, target string) int {
	e.t.Helper()
	evs, _, err := e.store.ListAudit(context.Background(), db.AuditFilter{Actor: actor, Action: action, Limit: 10000})
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.ActorEmail == actor && ev.Action == action && (target == "" || ev.Target == target) {
			n++
		}
	}
	return n
}

// Okta's sequence: the connection test, a lookup before each create,
// profile pushes, deactivation by a path-less replace of active, and
// Group Push, whose members feed the mapped Gatehouse group exactly as an
// SSO sign-in's groups claim would.
func TestOktaReplay(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, db.SSOPolicy{})
		e.mapGroup("sales", "Sales")
		e.mapGroup("old", "Old team")
		e.replay(t, "okta.json")

		if got := e.membership("test.user@okta.local", "sales"); got != db.SourceIdP {
			t.Errorf("test.user in sales: %q, want an idp membership", got)
		}
		if got := e.membership("second.user@okta.local", "sales"); got != "" {
			t.Errorf("second.user in sales after Okta removed them: %q", got)
		}
		if got := e.membership("test.user@okta.local", "old"); got != "" {
			t.Errorf("test.user in old after its pushed group was deleted: %q", got)
		}
		if u := e.user("second.user@okta.local"); u.IsActive {
			t.Error("second.user is still active")
		}
		if u := e.user("test.user@okta.local"); !u.IsActive || u.Name != "Another User" || u.HasPassword() {
			t.Errorf("test.user: %+v", u)
		}
		if n := e.audited("scim:okta", db.ActionUserDeactivate, "second.user@okta.local"); n != 2 {
			t.Errorf("%d deactivation rows by scim:okta, want 2 (the repeat changes nothing)", n)
		}
		if n := e.audited("scim:okta", db.ActionUserCreate, "test.user@okta.local"); n != 1 {
			t.Errorf("%d user.create rows", n)
		}
		if n := e.audited("scim:okta", db.ActionMemberAdd, "sales / test.user@okta.local"); n != 1 {
			t.Errorf("%d member.add rows for sales / test.user", n)
		}
		if n := e.audited("scim:okta", db.ActionMemberRemove, "sales / second.user@okta.local"); n != 1 {
			t.Errorf("%d member.remove rows for sales / second.user", n)
		}
		for _, c := range []struct {
			action, target string
			want           int
		}{
			{db.ActionSCIMGroupCreate, "Test SCIMv2", 1},
			{db.ActionSCIMGroupUpdate, "Sales", 3}, // the rename, the add, the removal; the repeats change nothing
			{db.ActionSCIMGroupDelete, "Old team", 1},
			{db.ActionSCIMUserUpdate, "test.user@okta.local", 1},
		} {
			if n := e.audited("scim:okta", c.action, c.target); n != c.want {
				t.Errorf("%d %s rows for %s, want %d", n, c.action, c.target, c.want)
			}
		}
	})
}

// Entra's sequence, with and without ?aadOptscim062020.
func TestEntraReplay(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, db.SSOPolicy{})
		e.mapGroup("finance", "Finance")
		e.replay(t, "entra.json")

		// The deleted user keeps their account and history, deactivated.
		u := e.user("updatedemail@microsoft.com")
		if u.IsActive || u.Name != "Ellen Reckert" {
			t.Errorf("deleted user: %+v", u)
		}
		if got := e.membership("updatedemail@microsoft.com", "finance"); got != "" {
			t.Errorf("deleted user still in finance: %q", got)
		}
		if n := e.audited("scim:okta", db.ActionSCIMUserDelete, "updatedemail@microsoft.com"); n != 1 {
			t.Errorf("%d scim.user.delete rows", n)
		}
		if n := e.audited("scim:okta", db.ActionMemberAdd, "finance / updatedemail@microsoft.com"); n != 1 {
			t.Errorf("%d member.add rows for finance", n)
		}
		if u := e.user("kim@testuser.com"); u.IsActive {
			t.Error(`kim is active after "active": "False"`)
		}
	})
}

// pushUser creates a user over SCIM and returns its id.
func (e *env) pushUser(userName string, extra map[string]any) string {
	e.t.Helper()
	body := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": userName, "active": true}
	for k, v := range extra {
		body[k] = v
	}
	status, got, _ := e.do("POST", "/Users", body)
	if status != 201 {
		e.t.Fatalf("create %s: %d %v", userName, status, got)
	}
	return got["id"].(string)
}

func (e *env) pushGroup(name string, members ...string) string {
	e.t.Helper()
	var ms []any
	for _, m := range members {
		ms = append(ms, map[string]any{"value": m})
	}
	status, got, _ := e.do("POST", "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": name, "members": ms})
	if status != 201 {
		e.t.Fatalf("create group %s: %d %v", name, status, got)
	}
	return got["id"].(string)
}

func patch(ops ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops}
}

func itoa(i int) string { return strconv.Itoa(i) }
