package app

import (
	"context"
	"html"
	"net/http"
	"slices"
	"strings"
	"testing"

	"gatehouse/app/dashboards"
	"gatehouse/internal/testidp"
)

// TestSSOWithoutAGroupsClaim: many IdPs leave the groups claim out when a
// person is in no group. By default that sign-in is refused, and the audit
// row tells the admin which setting reads it as "no groups"; with
// --oidc-missing-groups=empty the person signs in, loses the memberships
// their IdP groups gave them and keeps the ones made by hand. Entra ID's
// groups overage (_claim_names) is refused either way, saying why.
func TestSSOWithoutAGroupsClaim(t *testing.T) {
	for _, mode := range []string{"refuse", "empty"} {
		t.Run(mode, func(t *testing.T) {
			e := newSSOApp(t, func(c *Config, _ *dashboards.Registry) { c.OIDCMissingGroups = mode })
			e.group(t, "Alpha", "a")
			manual := e.group(t, "Manual")
			e.addIdPUser("hal", "hal@example.com", "a")
			e.mustSignIn(t, "hal")
			u, err := e.store.UserByEmail(context.Background(), "hal@example.com")
			if err != nil {
				t.Fatal(err)
			}
			mustMember(t, e.testApp, manual, u, 0)
			if got := e.groupsOf(t, "hal@example.com"); !slices.Equal(got, []string{"Alpha:idp", "Manual:manual"}) {
				t.Fatalf("groups after the first sign-in: %q", got)
			}

			// Hal leaves his last IdP group: the IdP sends no groups claim.
			e.idp.Update("hal", func(u *testidp.User) { u.Groups, u.NoGroupsClaim = nil, true })
			_, res, body := e.signIn(t, "hal", "/")
			if mode == "refuse" {
				if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, html.EscapeString(ssoMsgNoGroups)) {
					t.Fatalf("refuse: %d %s", res.StatusCode, body)
				}
				if d := e.lastAuditDetail(t); !strings.Contains(d, "--oidc-missing-groups=empty") {
					t.Errorf("the audit row does not tell the admin about --oidc-missing-groups: %s", d)
				}
				if got := e.groupsOf(t, "hal@example.com"); !slices.Equal(got, []string{"Alpha:idp", "Manual:manual"}) {
					t.Errorf("a refused sign-in changed the groups: %q", got)
				}
			} else {
				if res.StatusCode != http.StatusSeeOther {
					t.Fatalf("empty: %d %s", res.StatusCode, body)
				}
				if got := e.groupsOf(t, "hal@example.com"); !slices.Equal(got, []string{"Manual:manual"}) {
					t.Errorf("groups after signing in with no groups claim: %q, want only the manual one", got)
				}
			}

			// Entra ID's overage: the claim names a source instead.
			e.idp.SetIDTokenClaim("_claim_names", map[string]any{"groups": "src1"})
			e.idp.SetIDTokenClaim("_claim_sources", map[string]any{"src1": map[string]any{"endpoint": "https://graph.microsoft.com/v1.0/users/hal/getMemberObjects"}})
			_, res, body = e.signIn(t, "hal", "/")
			if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, html.EscapeString(ssoMsgOverage)) {
				t.Fatalf("overage: %d; audit: %s", res.StatusCode, e.lastAuditDetail(t))
			}
			if d := e.lastAuditDetail(t); !strings.Contains(d, "groups overage") {
				t.Errorf("the overage's audit row: %s", d)
			}
		})
	}
}
