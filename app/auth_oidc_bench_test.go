package app

import (
	"context"
	"net/http"
	"testing"

	"gatehouse/db"
)

// BenchmarkPanelAllowedSSO is BenchmarkPanelAllowed/static on a server with
// SSO: for a member signed in with SSO (membership from an IdP group, the
// session watched by the re-check: its cost between two checks), and for
// one signed in with a password (what the re-check costs everyone else).
func BenchmarkPanelAllowedSSO(b *testing.B) {
	e := newSSOApp(b, withBenchDashboard)
	e.log = discardLogger()
	team := e.group(b, "team", "team-at-idp")
	if err := e.store.AddGrant(context.Background(), db.Actor{}, "bench", team.ID); err != nil {
		b.Fatal(err)
	}
	e.addIdPUser("sam", "sam@example.com", "team-at-idp")
	c := e.mustSignIn(b, "sam")
	f := &benchFixture{ta: e.testApp, h: e.Routes()}
	b.Run("sso", func(b *testing.B) {
		cookie := &http.Cookie{Name: e.sessions.CookieName(), Value: e.sessionCookie(c)}
		f.run(b, "/dashboards/bench/panels/static", true, cookie, http.StatusOK, "Breaching SLA")
	})
	pat := e.createUser(b, "pat@example.com", false)
	if err := e.store.AddMember(context.Background(), db.Actor{}, team.ID, pat.ID, 0); err != nil {
		b.Fatal(err)
	}
	b.Run("password", func(b *testing.B) {
		f.run(b, "/dashboards/bench/panels/static", true, f.cookie(b, "pat@example.com"), http.StatusOK, "Breaching SLA")
	})
}

// BenchmarkSSOSignIn is one whole sign-in against the in-process OpenID
// Provider on loopback: /auth/oidc/start, the provider's login page and
// authorization, the callback (code exchange, ID token verification,
// userinfo, group sync, new session).
func BenchmarkSSOSignIn(b *testing.B) {
	e := newSSOApp(b)
	e.log = discardLogger()
	e.group(b, "team", "team-at-idp")
	e.addIdPUser("sam", "sam@example.com", "team-at-idp")
	b.ReportAllocs()
	for b.Loop() {
		e.mustSignIn(b, "sam")
	}
}
