package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestAxeEveryPage opens every page state a person meets, on a demo
// server and on a fresh install, and runs axe-core on each at 1280 and 375
// CSS pixels in light and dark: WCAG 2.1 A/AA and best practices, zero
// violations.
func TestAxeEveryPage(t *testing.T) {
	b := newBrowser(t)

	fresh := startServer(t, nil)
	anon := b.newTab(t, "anonymous")
	anon.open(t, fresh.URL+"/setup?token=not-a-real-token")
	anon.checkLooks(t, "invalid setup link")
	anon.forgetErrorStatus(404)
	anon.open(t, fresh.setupURL(t))
	anon.waitFor(t, "the setup form", `!!document.querySelector('form[action="/setup"]')`, actionTimeout)
	anon.checkLooks(t, "setup form")
	anon.open(t, fresh.URL+"/login")
	anon.checkLooks(t, "fresh login")

	srv := startServer(t, nil, "--demo", "--allow-signup")
	anon.open(t, srv.URL+"/login")
	anon.checkLooks(t, "login")
	anon.typeInto(t, "#email", "nobody@demo.example")
	anon.typeInto(t, "#password", "wrong-password-123")
	anon.click(t, button("", "Log in"))
	anon.waitFor(t, "the login error", `!!document.querySelector(".alert-error, [role=alert]")`, actionTimeout)
	anon.checkLooks(t, "login refused")
	anon.forgetErrorStatus(401)
	anon.open(t, srv.URL+"/signup")
	anon.checkLooks(t, "signup")
	anon.open(t, srv.URL+"/no-such-page")
	anon.checkLooks(t, "not found")
	anon.forgetErrorStatus(404)
	anon.assertClean(t)

	olivia := b.newTab(t, "olivia")
	logIn(t, olivia, srv.URL, "olivia@demo.example", demoPassword)
	olivia.checkLooks(t, "home with nothing open")
	olivia.click(t, `//article[@id="dash-sales"]//button[normalize-space(.)="Request access"]`)
	olivia.waitFor(t, "the request badge", `document.querySelector("#dash-sales").textContent.includes("requested") || document.querySelector("#dash-sales").textContent.includes("waiting")`, actionTimeout)
	olivia.checkLooks(t, "home after a request")
	olivia.open(t, srv.URL+"/dashboards/finance")
	olivia.checkLooks(t, "denied dashboard")
	olivia.forgetErrorStatus(403)
	olivia.open(t, srv.URL+"/admin")
	olivia.checkLooks(t, "admin forbidden")
	olivia.forgetErrorStatus(403)
	olivia.open(t, srv.URL+"/account")
	olivia.checkLooks(t, "account")
	olivia.open(t, srv.URL+"/account/password")
	olivia.checkLooks(t, "change password")
	olivia.assertClean(t)

	alice := b.newTab(t, "alice")
	logIn(t, alice, srv.URL, "alice@demo.example", demoPassword)
	alice.checkLooks(t, "home")
	alice.open(t, srv.URL+"/dashboards/sales")
	waitDashboard(t, alice)
	alice.checkLooks(t, "sales dashboard")
	alice.assertClean(t)

	admin := b.newTab(t, "admin")
	logIn(t, admin, srv.URL, "admin@demo.example", demoPassword)
	for _, d := range []string{"sales", "support", "finance", "access"} {
		admin.open(t, srv.URL+"/dashboards/"+d)
		waitDashboard(t, admin)
		admin.checkLooks(t, d+" dashboard (admin)")
	}
	for _, p := range []struct{ name, path string }{
		{"admin overview", "/admin"},
		{"groups", "/admin/groups"},
		{"groups search", "/admin/groups?q=zzz"},
		{"users", "/admin/users"},
		{"dashboard access", "/admin/access"},
		{"access requests", "/admin/requests"},
		{"explain form", "/admin/explain"},
		{"explain answer", "/admin/explain?user=alice%40demo.example&dashboard=sales"},
		{"audit log", "/admin/audit"},
		{"scim", "/admin/scim"},
	} {
		admin.open(t, srv.URL+p.path)
		admin.checkLooks(t, p.name)
	}
	admin.open(t, srv.URL+"/admin/scim")
	admin.typeInto(t, "#scim-token-name", "okta")
	admin.click(t, button("", "Create token"))
	admin.waitFor(t, "the new SCIM token", `!!document.querySelector("#scim-token")`, actionTimeout)
	admin.checkLooks(t, "scim token created")
	admin.catchClipboard(t, srv.URL)
	admin.click(t, button("", "Copy token"))
	admin.waitFor(t, "the copy's status", `document.querySelector("[data-copy-status]").textContent !== ""`, actionTimeout)
	if got := admin.text(t, "[data-copy-status]"); got != "Copied." {
		t.Errorf("after Copy token the page says %q", got)
	}
	var copied, token string
	admin.eval(t, `window.copied`, &copied)
	admin.eval(t, `document.querySelector("#scim-token").textContent`, &token)
	if !strings.HasPrefix(token, "scim_") || copied != token {
		t.Errorf("the clipboard got %q, want the token %q", copied, token)
	}
	admin.open(t, srv.URL+"/admin/groups")
	admin.click(t, `//div[@id="groups-table"]//a[normalize-space(.)="sales"]`)
	admin.waitFor(t, "the sales group's page", `/^\/admin\/groups\/\d+$/.test(location.pathname) && document.readyState === "complete"`, actionTimeout)
	admin.checkLooks(t, "group page")
	admin.typeInto(t, `input[aria-label="Find a user to add"]`, "demo")
	admin.waitFor(t, "candidates", `document.querySelectorAll("#candidates li").length > 0`, actionTimeout)
	admin.checkLooks(t, "group page with candidates")
	admin.click(t, `a[href$="/delete"]`)
	admin.waitFor(t, "the delete question", `location.pathname.endsWith("/delete")`, actionTimeout)
	admin.checkLooks(t, "delete group question")

	admin.open(t, srv.URL+"/admin/users")
	admin.click(t, fmt.Sprintf(`//div[@id="users-table"]//a[normalize-space(.)=%q]`, "alice@demo.example"))
	admin.waitFor(t, "alice's page", `location.pathname.startsWith("/admin/users/")`, actionTimeout)
	admin.checkLooks(t, "user page")
	admin.open(t, srv.URL+"/admin/users")
	admin.typeInto(t, "#new-user-email", "new@demo.example")
	admin.click(t, button("", "Create user"))
	admin.waitFor(t, "the temporary password", `!!document.querySelector("#user-create code.temp-password")`, actionTimeout)
	admin.checkLooks(t, "user created")
	admin.assertClean(t)
}
