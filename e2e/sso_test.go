package e2e

import (
	"strings"
	"testing"
	"time"

	"gatehouse/internal/testidp"
)

// TestSSOJourney signs a user in through a real OpenID Provider in
// chromium: "Sign in with …" on Gatehouse's login page, the provider's own
// login page, and back on the dashboard that the IdP group mapped to a
// Gatehouse group grants. The user then leaves the IdP group; after the
// next re-check with the provider the open page flips to the denial.
func TestSSOJourney(t *testing.T) {
	b := newBrowser(t)
	idp := testidp.Start(t)
	idp.AddUser(testidp.User{ID: "uma-1", Username: "uma", Password: "uma-at-the-idp", Email: "uma@example.com",
		EmailVerified: true, Name: "Uma User", Groups: []string{"analysts-at-idp"}})
	const recheck = 2 * time.Second
	srv := startServer(t, []string{
		"GATEHOUSE_PANEL_REFRESH=" + refresh.String(),
		"GATEHOUSE_OIDC_ISSUER=" + idp.Issuer,
		"GATEHOUSE_OIDC_CLIENT_ID=" + idp.ClientID,
		"GATEHOUSE_OIDC_CLIENT_SECRET=" + idp.ClientSecret,
		"GATEHOUSE_OIDC_NAME=Test IdP",
		"GATEHOUSE_OIDC_SCOPES=openid email profile offline_access",
		"GATEHOUSE_OIDC_DOMAINS=example.com",
		"GATEHOUSE_OIDC_RECHECK=" + recheck.String(),
	})
	idp.AllowRedirect(srv.URL + "/auth/oidc/callback")
	srv.cli(t, "groups", "create", "analysts")
	srv.cli(t, "groups", "map", "analysts", "analysts-at-idp")
	srv.cli(t, "grants", "add", "access", "analysts")

	user := b.newTab(t, "user")
	user.open(t, srv.URL+"/dashboards/access")
	user.waitPath(t, "/login")
	// The button scale: every way in as wide as the card, one of them filled.
	var ways struct {
		Filled int  `json:"filled"`
		Wide   bool `json:"wide"`
	}
	user.eval(t, `(() => {
		const card = document.querySelector(".auth-card"), w = card.querySelector("form").getBoundingClientRect().width;
		const all = [...card.querySelectorAll("button, a[role=button]")].filter((e) => e.offsetParent);
		return {filled: all.filter((e) => !e.classList.contains("outline")).length, wide: all.every((e) => Math.abs(e.getBoundingClientRect().width - w) < 2)};
	})()`, &ways)
	if ways.Filled != 1 || !ways.Wide {
		t.Errorf("the login card's ways in: %d filled (want 1), all as wide as the card: %v", ways.Filled, ways.Wide)
	}
	user.click(t, `//a[normalize-space(.)="Sign in with Test IdP"]`)
	user.waitFor(t, "the identity provider's login page", `document.title === "Test IdP: sign in"`, actionTimeout)
	user.typeInto(t, "#username", "uma")
	user.typeInto(t, "#password", "uma-at-the-idp")
	user.click(t, "#submit")
	user.waitPath(t, "/dashboards/access")
	user.waitPanels(t, "the granted dashboard's panels", actionTimeout, func(ps []panelState) bool {
		return all(ps, func(p panelState) bool { return !p.Loading && !p.Denied && !p.Empty })
	})
	user.assertClean(t)

	// Uma leaves the group at the IdP: the re-check (within recheck of her
	// next request, which the panels' polling makes) takes her out of
	// analysts, and the open page shows the denial without a reload.
	idp.Update("uma-1", func(u *testidp.User) { u.Groups = nil })
	user.waitFor(t, "the denial after the re-check",
		`document.body.textContent.includes("You cannot view this dashboard")`, recheck+within)
	out := srv.cli(t, "groups", "members", "analysts")
	if strings.Contains(out, "uma@example.com") {
		t.Errorf("uma is still in analysts after the re-check:\n%s", out)
	}
	user.assertClean(t)
}
