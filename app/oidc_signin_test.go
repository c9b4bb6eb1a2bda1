package app

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"gatehouse/app/dashboards"
)

// TestSSOFirstSignInWithoutGroupSync: with --oidc-groups-claim "" (IdPs
// without groups, such as Google Workspace) a first sign-in works, for a
// new person of an allowed domain and for an existing account alike, and so
// does the next one.
func TestSSOFirstSignInWithoutGroupSync(t *testing.T) {
	e := newSSOApp(t, func(c *Config, _ *dashboards.Registry) { c.OIDCGroupsClaim = "" })
	ctx := context.Background()
	e.group(t, "Alpha", "a")
	e.addIdPUser("nia", "nia@example.com", "a")
	e.createUser(t, "old@corp.example.org", false)
	e.addIdPUser("old", "old@corp.example.org", "a")

	for _, tc := range []struct{ username, email string }{{"nia", "nia@example.com"}, {"old", "old@corp.example.org"}} {
		for _, round := range []string{"first", "second"} {
			c, res, body := e.signIn(t, tc.username, "/")
			if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
				t.Fatalf("%s sign-in of %s: status %d to %q, want 303 to /: %s", round, tc.email, res.StatusCode, res.Header.Get("Location"), body)
			}
			if res, body := e.get(t, c, "/account", false); res.StatusCode != http.StatusOK || !strings.Contains(body, tc.email) {
				t.Errorf("%s sign-in of %s: the account page answered %d", round, tc.email, res.StatusCode)
			}
		}
		u, err := e.store.UserByEmail(ctx, tc.email)
		if err != nil {
			t.Fatal(err)
		}
		if ids, err := e.store.IdentitiesOf(ctx, u.ID); err != nil || len(ids) != 1 || ids[0].Subject != tc.username {
			t.Errorf("identities of %s: %+v %v", tc.email, ids, err)
		}
		if got := e.groupsOf(t, tc.email); len(got) != 0 {
			t.Errorf("%s is in %v although group sync is off", tc.email, got)
		}
	}
	if n := e.countUsers(t); n != 2 {
		t.Errorf("%d users, want the new person and the existing account", n)
	}
	if strings.Contains(e.Logs.String(), "request failed") {
		t.Errorf("a sign-in failed on the server:\n%s", e.Logs.String())
	}
}
