package scim_test

import (
	"context"
	"strconv"
	"testing"

	"gatehouse/db"
)

// TestSCIMCannotTakeOverAnAdmin: an account the IdP provisioned and an
// admin later promoted keeps its email whatever SCIM sends (a new email
// would let whoever holds the token reset the admin's password by mail),
// and an admin's account the IdP once deleted is not taken back by a new
// POST. Deactivating such an admin still works (offboarding).
func TestSCIMCannotTakeOverAnAdmin(t *testing.T) {
	dialects(t, testSCIMCannotTakeOverAnAdmin)
}

func testSCIMCannotTakeOverAnAdmin(t *testing.T, dsn string) {
	ctx := context.Background()
	e := newEnv(t, dsn, db.SSOPolicy{Domains: []string{"corp.example"}})
	if _, err := e.store.CreateUser(ctx, admin, db.NewUser{Email: "root@corp.example", Name: "Root", PasswordHash: "x", IsAdmin: true}); err != nil {
		t.Fatal(err)
	}
	id := e.pushUser("ann@corp.example", map[string]any{"name": map[string]any{"givenName": "Ann", "familyName": "Lee"}})
	uid, _ := strconv.ParseInt(id, 10, 64)
	if err := e.store.SetAdmin(ctx, admin, uid, true); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method string
		body   map[string]any
	}{
		{"PATCH", patch(map[string]any{"op": "replace", "path": "emails", "value": []any{map[string]any{"value": "mallory@evil.example", "primary": true}}})},
		{"PATCH", patch(map[string]any{"op": "replace", "value": map[string]any{"emails": []any{map[string]any{"value": "mallory@evil.example"}}}})},
		{"PUT", map[string]any{"userName": "mallory@evil.example", "active": true}},
	} {
		status, got, _ := e.do(c.method, "/Users/"+id, c.body)
		wantError(t, c.method+" of an admin's email", 403, got, status, "", "admin")
	}
	if u := e.user("ann@corp.example"); !u.IsAdmin || !u.IsActive {
		t.Errorf("ann after the refused changes: admin %v, active %v", u.IsAdmin, u.IsActive)
	}
	if n := e.audited("scim:okta", db.ActionUserUpdate, ""); n != 0 {
		t.Errorf("%d user.update rows by scim:okta, want 0", n)
	}
	// A name and deactivation are still the IdP's to change.
	if status, got, _ := e.do("PATCH", "/Users/"+id, patch(map[string]any{"op": "replace", "value": map[string]any{"active": false}})); status != 200 {
		t.Fatalf("deactivating an admin: %d %v", status, got)
	}
	if u := e.user("ann@corp.example"); u.IsActive {
		t.Error("ann is still active")
	}

	// Deleted by the IdP, then made an admin: a new POST is refused.
	bid := e.pushUser("bob@corp.example", nil)
	if status, got, _ := e.do("DELETE", "/Users/"+bid, nil); status != 204 {
		t.Fatalf("delete bob: %d %v", status, got)
	}
	bob := e.user("bob@corp.example")
	if err := e.store.SetActive(ctx, admin, bob.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := e.store.SetAdmin(ctx, admin, bob.ID, true); err != nil {
		t.Fatal(err)
	}
	status, got, _ := e.do("POST", "/Users", map[string]any{"userName": "bob@corp.example", "active": false})
	wantError(t, "taking back an admin", 409, got, status, "uniqueness", "admin")
	if u := e.user("bob@corp.example"); !u.IsAdmin || !u.IsActive {
		t.Errorf("bob after the refused POST: admin %v, active %v", u.IsAdmin, u.IsActive)
	}
}
