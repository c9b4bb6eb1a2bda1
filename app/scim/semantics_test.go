package scim_test

import (
	"context"
	"fmt"
	"testing"

	"gatehouse/db"
)

// Every PATCH form on a user: path-less and pathed, add, replace and
// remove, dotted keys, filtered paths, capitalised ops, and repeats that
// change nothing more.
func TestSCIMPatchUserForms(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, db.SSOPolicy{})
		id := e.pushUser("ann@example.com", map[string]any{"externalId": "x1", "name": map[string]any{"givenName": "Ann", "familyName": "Lee"}})
		steps := []struct {
			name string
			op   map[string]any
			want map[string]any
		}{
			{"path-less replace, plain and dotted keys", map[string]any{"op": "replace", "value": map[string]any{"displayName": "Ann L", "name.familyName": "Lo"}},
				map[string]any{"displayName": "Ann L", "name": map[string]any{"givenName": "Ann", "familyName": "Lo"}}},
			{"path-less Replace, capitalised, with the core URN", map[string]any{"op": "Replace", "value": map[string]any{"urn:ietf:params:scim:schemas:core:2.0:User": map[string]any{"displayName": "Ann M"}}},
				map[string]any{"displayName": "Ann M"}},
			{"path-less add of a complex attribute merges", map[string]any{"op": "add", "value": map[string]any{"name": map[string]any{"givenName": "Anne"}}},
				map[string]any{"name": map[string]any{"givenName": "Anne", "familyName": "Lo"}}},
			{"pathed replace of a sub-attribute", map[string]any{"op": "REPLACE", "path": "name.givenName", "value": "Annie"},
				map[string]any{"name": map[string]any{"givenName": "Annie", "familyName": "Lo"}}},
			{"pathed remove of a sub-attribute", map[string]any{"op": "remove", "path": "name.familyName"},
				map[string]any{"name": map[string]any{"givenName": "Annie"}}},
			{"pathed remove of externalId", map[string]any{"op": "Remove", "path": "externalId"}, nil},
			{"pathed add of externalId", map[string]any{"op": "Add", "path": "externalId", "value": "x2"}, map[string]any{"externalId": "x2"}},
			{"filtered replace of the work email", map[string]any{"op": "replace", "path": `emails[type eq "work"].value`, "value": "Ann.New@Example.com"},
				map[string]any{"emails": []any{map[string]any{"value": "ann.new@example.com", "type": "work", "primary": true}}}},
			{"replace of emails whole", map[string]any{"op": "replace", "path": "emails", "value": []any{map[string]any{"value": "ann3@example.com", "primary": true}}},
				map[string]any{"emails": []any{map[string]any{"value": "ann3@example.com"}}}},
			{"an attribute Gatehouse does not keep is accepted", map[string]any{"op": "add", "path": `phoneNumbers[type eq "mobile"].value`, "value": "+1 555"}, nil},
			{"an extension attribute is accepted", map[string]any{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales"}, nil},
			{"pathed replace of active", map[string]any{"op": "replace", "path": "active", "value": false}, map[string]any{"active": false}},
			{"path-less replace of active, again", map[string]any{"op": "replace", "value": map[string]any{"active": false}}, map[string]any{"active": false}},
			{"pathed replace of active, true", map[string]any{"op": "Replace", "path": "active", "value": "True"}, map[string]any{"active": true}},
			{"userName", map[string]any{"op": "replace", "path": "userName", "value": "ann.lee"}, map[string]any{"userName": "ann.lee"}},
		}
		for _, s := range steps {
			for try := range 2 { // the second time changes nothing and answers the same
				status, got, _ := e.do("PATCH", "/Users/"+id, patch(s.op))
				if status != 200 {
					t.Fatalf("%s (try %d): %d %v", s.name, try+1, status, got)
				}
				if msg := subset(s.want, got, ""); s.want != nil && msg != "" {
					t.Fatalf("%s (try %d): %s\n%v", s.name, try+1, msg, got)
				}
			}
		}
		_, got, _ := e.do("GET", "/Users/"+id, nil)
		if _, ok := got["name"].(map[string]any)["familyName"]; ok {
			t.Errorf("familyName is back: %v", got["name"])
		}
		u := e.user("ann3@example.com")
		if !u.IsActive || u.Name != "Ann M" {
			t.Errorf("account: %+v", u)
		}
		if n := e.audited("scim:okta", db.ActionUserDeactivate, "ann3@example.com"); n != 1 {
			t.Errorf("%d deactivations audited, want 1 (repeats change nothing)", n)
		}
		if n := e.audited("scim:okta", db.ActionUserActivate, "ann3@example.com"); n != 1 {
			t.Errorf("%d activations audited", n)
		}
	})
}

// Every PATCH form on a group's members, and PUT.
func TestSCIMPatchGroupForms(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, db.SSOPolicy{})
		var u []string
		for i := range 4 {
			u = append(u, e.pushUser(fmt.Sprintf("u%d@example.com", i), nil))
		}
		g := e.pushGroup("Team", u[0])
		member := func(ids ...string) map[string]any {
			var out []any
			for _, id := range ids {
				out = append(out, map[string]any{"value": id})
			}
			return map[string]any{"members": out}
		}
		for _, s := range []struct {
			name string
			op   map[string]any
			want []string
		}{
			{"add a list", map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": u[1]}, map[string]any{"value": u[2]}}}, []string{u[0], u[1], u[2]}},
			{"add one, as an object", map[string]any{"op": "Add", "path": "members", "value": map[string]any{"value": u[3]}}, []string{u[0], u[1], u[2], u[3]}},
			{"remove by filter", map[string]any{"op": "remove", "path": fmt.Sprintf(`members[value eq "%s"]`, u[3])}, []string{u[0], u[1], u[2]}},
			{"remove by value list (Entra)", map[string]any{"op": "Remove", "path": "members", "value": []any{map[string]any{"value": u[2]}}}, []string{u[0], u[1]}},
			{"path-less add of members", map[string]any{"op": "add", "value": member(u[2])}, []string{u[0], u[1], u[2]}},
			{"replace all", map[string]any{"op": "replace", "path": "members", "value": []any{map[string]any{"value": u[3]}}}, []string{u[3]}},
			{"path-less replace of members", map[string]any{"op": "replace", "value": member(u[0], u[1])}, []string{u[0], u[1]}},
			{"remove all", map[string]any{"op": "remove", "path": "members"}, nil},
		} {
			for try := range 2 {
				if status, got, _ := e.do("PATCH", "/Groups/"+g, patch(s.op)); status != 204 {
					t.Fatalf("%s (try %d): %d %v", s.name, try+1, status, got)
				}
				_, got, _ := e.do("GET", "/Groups/"+g, nil)
				var ids []string
				for _, m := range got["members"].([]any) {
					ids = append(ids, m.(map[string]any)["value"].(string))
				}
				if fmt.Sprint(ids) != fmt.Sprint(s.want) {
					t.Fatalf("%s (try %d): members %v, want %v", s.name, try+1, ids, s.want)
				}
			}
		}
		status, got, _ := e.do("PUT", "/Groups/"+g, map[string]any{"displayName": "Team B", "externalId": "okta-1", "members": []any{map[string]any{"value": u[1]}}})
		if status != 200 || got["displayName"] != "Team B" || len(got["members"].([]any)) != 1 {
			t.Fatalf("PUT: %d %v", status, got)
		}
	})
}

// A userName whose email has an account already links to it only as an
// SSO sign-in would (--oidc-domains lists the domain, --oidc-link is not
// never) and never to an admin's account; otherwise 409.
func TestSCIMLinksExistingAccounts(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		policy db.SSOPolicy
		email  string
		admin  bool
		link   bool
	}{
		{"domain allowed", db.SSOPolicy{Domains: []string{"corp.example"}}, "ann@corp.example", false, true},
		{"domain not allowed", db.SSOPolicy{Domains: []string{"corp.example"}}, "ann@other.example", false, false},
		{"no domains", db.SSOPolicy{}, "ann@corp.example", false, false},
		{"linking by email off", db.SSOPolicy{Domains: []string{"corp.example"}, NoEmailLink: true}, "ann@corp.example", false, false},
		{"an admin", db.SSOPolicy{Domains: []string{"corp.example"}}, "ann@corp.example", true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "", c.policy)
			existing, err := e.store.CreateUser(ctx, admin, db.NewUser{Email: c.email, Name: "Ann", PasswordHash: "x", IsAdmin: c.admin})
			if err != nil {
				t.Fatal(err)
			}
			status, got, _ := e.do("POST", "/Users", map[string]any{"userName": c.email, "externalId": "okta-ann", "name": map[string]any{"givenName": "Ann", "familyName": "Lee"}})
			if !c.link {
				wantError(t, "link refused", 409, got, status, "uniqueness", "--oidc-domains")
				if n := e.audited("scim:okta", db.ActionSCIMUserLink, ""); n != 0 {
					t.Errorf("%d link rows", n)
				}
				return
			}
			if status != 201 || got["id"] != fmt.Sprint(existing.ID) || got["displayName"] != "Ann Lee" {
				t.Fatalf("link: %d %v", status, got)
			}
			if n := e.audited("scim:okta", db.ActionSCIMUserLink, c.email); n != 1 {
				t.Errorf("%d link rows", n)
			}
			if u := e.user(c.email); !u.HasPassword() {
				t.Error("linking removed the password")
			}
		})
	}
}

// Pushed groups feed Gatehouse groups through groups map exactly as an
// SSO sign-in's groups claim: "idp" memberships follow them; manual ones
// and ones from a claim's group SCIM does not push stay.
func TestSCIMGroupsFeedMappedGroups(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		e := newEnv(t, dsn, db.SSOPolicy{})
		sales := e.mapGroup("sales", "Sales")
		e.mapGroup("sales", "Sales EMEA")
		e.mapGroup("vpn", "VPN users")
		ann := e.pushUser("ann@example.com", nil)
		bob := e.pushUser("bob@example.com", nil)
		bobUser := e.user("bob@example.com")
		annUser := e.user("ann@example.com")
		// Bob is a manual member of sales; Ann is in vpn through a sign-in
		// whose claim named "VPN users", which SCIM does not push.
		if err := e.store.AddMember(ctx, admin, sales.ID, bobUser.ID, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.SyncIdPGroups(ctx, db.Actor{Email: "idp"}, annUser.ID, []string{"VPN users"}); err != nil {
			t.Fatal(err)
		}
		if e.membership("ann@example.com", "vpn") != db.SourceIdP {
			t.Fatal("setup: ann not in vpn")
		}

		grp := e.pushGroup("Sales", ann, bob)
		if got := e.membership("ann@example.com", "sales"); got != db.SourceIdP {
			t.Errorf("ann in sales: %q", got)
		}
		if got := e.membership("bob@example.com", "sales"); got != db.SourceManual {
			t.Errorf("bob's manual membership: %q", got)
		}
		e.do("PATCH", "/Groups/"+grp, patch(map[string]any{"op": "remove", "path": "members"}))
		if got := e.membership("ann@example.com", "sales"); got != "" {
			t.Errorf("ann in sales after removal: %q", got)
		}
		if got := e.membership("bob@example.com", "sales"); got != db.SourceManual {
			t.Errorf("bob's manual membership after removal: %q", got)
		}
		if got := e.membership("ann@example.com", "vpn"); got != db.SourceIdP {
			t.Errorf("ann's claim-fed vpn membership: %q", got)
		}

		// A rename is a new IdP group name: members follow it.
		e.do("PATCH", "/Groups/"+grp, patch(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": ann}}}))
		e.do("PATCH", "/Groups/"+grp, patch(map[string]any{"op": "replace", "path": "displayName", "value": "Sales EMEA"}))
		if got := e.membership("ann@example.com", "sales"); got != db.SourceIdP {
			t.Errorf("ann in sales through the renamed group: %q", got)
		}
		e.do("PATCH", "/Groups/"+grp, patch(map[string]any{"op": "replace", "path": "displayName", "value": "Sales APAC"}))
		if got := e.membership("ann@example.com", "sales"); got != "" {
			t.Errorf("ann in sales after a rename to an unmapped name: %q", got)
		}

		// Mapping a pushed group's name later brings its members in at once.
		e.mapGroup("apac", "Sales APAC")
		if got := e.membership("ann@example.com", "apac"); got != db.SourceIdP {
			t.Errorf("ann in apac after groups map: %q", got)
		}
		// Deleting the pushed group removes what it fed.
		if status, _, _ := e.do("DELETE", "/Groups/"+grp, nil); status != 204 {
			t.Fatal(status)
		}
		if got := e.membership("ann@example.com", "apac"); got != "" {
			t.Errorf("ann in apac after the group was deleted: %q", got)
		}
		if got := e.membership("ann@example.com", "vpn"); got != db.SourceIdP {
			t.Errorf("ann's claim-fed vpn membership at the end: %q", got)
		}
	})
}

// DELETE deactivates through the one deactivation path (sessions end),
// keeps the account and its history, and frees the userName.
func TestSCIMDeleteKeepsHistory(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		e := newEnv(t, dsn, db.SSOPolicy{}) // no domain may be linked by email
		id := e.pushUser("ann@example.com", nil)
		u := e.user("ann@example.com")
		if _, err := e.store.Sessions(db.DefaultSessionLimits).Create(ctx, db.NewSession{UserID: u.ID, Method: "sso"}); err != nil {
			t.Fatal(err)
		}
		if list, err := e.store.ListSessions(ctx, u.ID); err != nil || len(list) != 1 {
			t.Fatalf("setup: sessions %v %v", list, err)
		}
		if status, _, _ := e.do("DELETE", "/Users/"+id, nil); status != 204 {
			t.Fatal(status)
		}
		if list, err := e.store.ListSessions(ctx, u.ID); err != nil || len(list) != 0 {
			t.Errorf("sessions after DELETE: %v %v", list, err)
		}
		if u := e.user("ann@example.com"); u.IsActive {
			t.Error("active after DELETE")
		}
		if n := e.audited("scim:okta", db.ActionUserDeactivate, "ann@example.com"); n != 1 {
			t.Errorf("%d deactivation rows", n)
		}
		if status, _, _ := e.do("GET", "/Users/"+id, nil); status != 404 {
			t.Errorf("GET after DELETE: %d", status)
		}
		if status, got, _ := e.do("GET", "/Users?filter=userName%20eq%20%22ann@example.com%22", nil); status != 200 || got["totalResults"] != float64(0) {
			t.Errorf("filter after DELETE: %d %v", status, got)
		}
		// The IdP may create the person again: the account it managed
		// comes back with its history, whatever the domain rule.
		status, got, _ := e.do("POST", "/Users", map[string]any{"userName": "ann@example.com", "externalId": "again", "active": true})
		if status != 201 || got["id"] != id || got["active"] != true || got["externalId"] != "again" {
			t.Errorf("re-create: %d %v", status, got)
		}
		if n := e.audited("scim:okta", db.ActionSCIMUserLink, "ann@example.com"); n != 1 {
			t.Errorf("%d link rows", n)
		}
		// Its userName was free meanwhile: another account may take it
		// while the first is deleted.
		e.do("DELETE", "/Users/"+id, nil)
		other := e.pushUser("Ann@example.com", map[string]any{"emails": []any{map[string]any{"value": "ann.new@example.com"}}})
		if other == id {
			t.Error("the deleted account was reused for another email")
		}
		status, got, _ = e.do("POST", "/Users", map[string]any{"userName": "ann.old", "emails": []any{map[string]any{"value": "ann@example.com"}}})
		if status != 201 || got["id"] != id {
			t.Errorf("re-create under another userName: %d %v", status, got)
		}
	})
}

// An unconfirmed sign-up with the email was typed by whoever knew the
// address: linking it to the IdP's person discards its password, as an
// SSO sign-in does.
func TestSCIMLinkDiscardsUnconfirmedSignup(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "", db.SSOPolicy{Domains: []string{"corp.example"}})
	u, err := e.store.SignupPendingUser(ctx, db.Actor{Email: "signup"}, db.NewUser{Email: "cfo@corp.example", Name: "Not the CFO", PasswordHash: "typed-by-someone"})
	if err != nil {
		t.Fatal(err)
	}
	status, got, _ := e.do("POST", "/Users", map[string]any{"userName": "cfo@corp.example", "displayName": "Chief Financial Officer"})
	if status != 201 || got["id"] != fmt.Sprint(u.ID) {
		t.Fatalf("link: %d %v", status, got)
	}
	after := e.user("cfo@corp.example")
	if after.HasPassword() || after.EmailPending || !after.IsActive || after.Name != "Chief Financial Officer" {
		t.Errorf("after linking the unconfirmed sign-up: %+v", after)
	}
}

// Requests changing one group at once take turns: none is lost, none
// fails, and the same member added twice at once is one member.
func TestSCIMConcurrentGroupPatches(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, db.SSOPolicy{})
		e.mapGroup("team", "Team")
		var users []string
		for i := range 8 {
			users = append(users, e.pushUser(fmt.Sprintf("c%d@example.com", i), nil))
		}
		g := e.pushGroup("Team")
		done := make(chan int, 2*len(users))
		for i := range 2 * len(users) {
			go func() {
				status, _, _ := e.do("PATCH", "/Groups/"+g, patch(map[string]any{"op": "add", "path": "members",
					"value": []any{map[string]any{"value": users[i%len(users)]}}}))
				done <- status
			}()
		}
		for range 2 * len(users) {
			if status := <-done; status != 204 {
				t.Errorf("a concurrent PATCH answered %d", status)
			}
		}
		_, got, _ := e.do("GET", "/Groups/"+g, nil)
		if n := len(got["members"].([]any)); n != len(users) {
			t.Errorf("%d members, want %d", n, len(users))
		}
		for i := range users {
			if m := e.membership(fmt.Sprintf("c%d@example.com", i), "team"); m != db.SourceIdP {
				t.Errorf("c%d in team: %q", i, m)
			}
		}
	})
}
