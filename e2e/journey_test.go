package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// refresh is every panel's refresh interval in the journey (serve
// --panel-refresh, set through GATEHOUSE_PANEL_REFRESH).
const refresh = 2 * time.Second

// within is how long a change may take to show in an open dashboard: one
// refresh, plus slack for a busy CI machine running the race detector.
const within = refresh + 3*time.Second

// TestAccessJourney walks the product's main story in a real browser, with
// an admin and a user in two separate browser contexts against one server:
// first-run setup, building access in the admin panel, the user's first
// login, live revocation, an access request and its approval, and
// deactivation. After every step, neither page may have logged a console
// error, thrown, or violated the Content-Security-Policy.
func TestAccessJourney(t *testing.T) {
	b := newBrowser(t)
	srv := startServer(t, []string{"GATEHOUSE_PANEL_REFRESH=" + refresh.String()})
	admin := b.newTab(t, "admin")
	user := b.newTab(t, "user")

	const (
		adminEmail    = "ada@example.com"
		adminPassword = "Gatehouse-e2e-admin-7731"
		group         = "analysts"
		userEmail     = "uma@example.com"
		userPassword  = "Uma-chooses-her-own-4402"
	)
	var (
		tempPassword string
		groupPath    string
	)
	// adminTab opens an admin section by its tab in the admin navigation.
	adminTab := func(t *testing.T, path string) {
		t.Helper()
		admin.click(t, fmt.Sprintf(`nav.admin-nav a[href=%q]`, path))
		admin.waitPath(t, path)
	}
	openGroup := func(t *testing.T) {
		t.Helper()
		adminTab(t, "/admin/groups")
		admin.click(t, fmt.Sprintf(`//div[@id="groups-table"]//a[normalize-space(.)=%q]`, group))
		admin.waitPath(t, groupPath)
	}
	hasRow := func(table, text string) string {
		return fmt.Sprintf(`[...document.querySelectorAll(%q)].some((tr) => tr.textContent.includes(%q))`, table+" tbody tr", text)
	}

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"1_first_run_setup", func(t *testing.T) {
			// The setup link from the server's log creates the first admin.
			admin.open(t, srv.setupURL(t))
			admin.waitFor(t, "the setup form", `!!document.querySelector('form[action="/setup"]')`, actionTimeout)
			admin.typeInto(t, "#email", adminEmail)
			admin.typeInto(t, "#name", "Ada Admin")
			admin.typeInto(t, "#password", adminPassword)
			admin.typeInto(t, "#confirm", adminPassword)
			admin.click(t, button("", "Create admin"))
			admin.waitPath(t, "/")
			admin.waitFor(t, "the Admin link of a logged-in admin", `!!document.querySelector('header a[href="/admin"]')`, actionTimeout)
		}},
		{"2_admin_builds_access_in_the_panel", func(t *testing.T) {
			admin.click(t, `header a[href="/admin"]`)
			admin.waitPath(t, "/admin")
			var current []string
			admin.eval(t, `[...document.querySelectorAll('header a[aria-current]:not([aria-current="false"])')].map((a) => a.textContent.trim())`, &current)
			if !slices.Equal(current, []string{"Admin"}) {
				t.Errorf("top bar links styled as current: %q, want only Admin", current)
			}

			// A group.
			adminTab(t, "/admin/groups")
			admin.typeInto(t, "#new-group-name", group)
			admin.typeInto(t, "#new-group-description", "People who watch Gatehouse's own activity")
			admin.click(t, button("", "Create group"))
			admin.waitFor(t, "the new group's page", fmt.Sprintf(`/^\/admin\/groups\/\d+$/.test(location.pathname) && document.querySelector("h1").textContent.trim() === %q`, group), actionTimeout)
			admin.eval(t, `location.pathname`, &groupPath)

			// A user, whose temporary password is shown once.
			adminTab(t, "/admin/users")
			admin.typeInto(t, "#new-user-email", userEmail)
			admin.typeInto(t, "#new-user-name", "Uma User")
			admin.click(t, button("", "Create user"))
			admin.waitFor(t, "the temporary password", `!!document.querySelector("#user-create code.temp-password")`, actionTimeout)
			tempPassword = admin.text(t, "#user-create code.temp-password")
			if len(tempPassword) < 12 || strings.ContainsAny(tempPassword, " \n") {
				t.Fatalf("temporary password %q: want one word of at least 12 characters", tempPassword)
			}

			// The membership, through the active search: part of the email,
			// wait for the results, Add.
			openGroup(t)
			admin.typeInto(t, `input[aria-label="Find a user to add"]`, "uma")
			admin.waitFor(t, "the user in the search results", fmt.Sprintf(`[...document.querySelectorAll("#candidates li")].some((li) => li.textContent.includes(%q))`, userEmail), actionTimeout)
			admin.click(t, fmt.Sprintf(`//ul[@id="candidates"]/li[contains(., %q)]//button[normalize-space(.)="Add"]`, userEmail))
			admin.waitFor(t, "the user in the members table", hasRow("#members", userEmail), actionTimeout)
			if got := admin.text(t, "#member-count"); got != "1" {
				t.Errorf("member count badge = %q, want 1", got)
			}

			// The grant, in the matrix.
			adminTab(t, "/admin/access")
			admin.click(t, fmt.Sprintf(`button[aria-label=%q]`, group+" may not open Access: grant"))
			admin.waitFor(t, "the granted cell", fmt.Sprintf(`!!document.querySelector('button[aria-pressed="true"][aria-label=%q]')`, group+" may open Access: revoke"), actionTimeout)
		}},
		{"3_user_changes_password_and_sees_charts", func(t *testing.T) {
			user.open(t, srv.URL+"/")
			user.waitPath(t, "/login")
			user.typeInto(t, "#email", userEmail)
			user.typeInto(t, "#password", tempPassword)
			user.click(t, button("", "Log in"))
			user.waitPath(t, "/account/password")
			user.typeInto(t, "#current", tempPassword)
			user.typeInto(t, "#new", userPassword)
			user.typeInto(t, "#confirm", userPassword)
			user.click(t, button("", "Change password"))
			user.waitPath(t, "/account")

			user.click(t, `//header//a[normalize-space(.)="Dashboards"]`)
			user.waitPath(t, "/")
			user.click(t, `#dash-access h3 a`)
			user.waitPath(t, "/dashboards/access")
			user.waitPanels(t, "every panel loaded", actionTimeout, func(ps []panelState) bool {
				return all(ps, func(p panelState) bool { return !p.Loading && !p.Denied && !p.Empty })
			})
			panels := user.panels(t)
			if len(panels) != 5 {
				t.Errorf("the Access dashboard shows %d panels, want 5: %+v", len(panels), panels)
			}
			for _, id := range []string{"panel-logins", "panel-groups"} {
				i := slices.IndexFunc(panels, func(p panelState) bool { return p.ID == id })
				if i < 0 || !panels[i].Svg {
					t.Errorf("%s has no SVG chart: %+v", id, panels)
				}
			}
			if n := user.nodeCount(t, `.panel-meta`); n != len(panels) {
				t.Errorf("%d panels say their refresh interval, want %d", n, len(panels))
			}
			if got := user.text(t, "#panel-overview .panel-meta"); got != "every 2s" {
				t.Errorf("the overview panel says %q, want every 2s (--panel-refresh)", got)
			}
		}},
		{"4_live_revocation", func(t *testing.T) {
			var ok bool
			user.eval(t, `window.e2eSamePage = true`, &ok) // gone if the page reloads
			openGroup(t)
			admin.click(t, fmt.Sprintf(`//tr[contains(., %q)]//button[normalize-space(.)="Remove"]`, userEmail))
			removed := time.Now()
			admin.waitFor(t, "the member row gone", "!"+hasRow("#members", userEmail), actionTimeout)
			// One denial and one request form replace the panels.
			user.waitView(t, "the dashboard's one denial", within, oneDenial)
			t.Logf("the page showed the denial %s after Remove", time.Since(removed).Round(time.Millisecond))
			if v := user.view(t); !strings.Contains(v.News, "you can no longer view this dashboard") {
				t.Errorf("status line = %q, want it to say the dashboard was lost", v.News)
			}
			user.eval(t, `window.e2eSamePage === true && location.pathname === "/dashboards/access"`, &ok)
			if !ok {
				t.Error("the dashboard page was reloaded or left; the denial must swap in place")
			}
		}},
		{"5_request_access_and_approval", func(t *testing.T) {
			user.click(t, `//div[@id="dashboard-body"]//button[normalize-space(.)="Request access"]`)
			user.waitFor(t, "the request waiting", `document.querySelector("#dashboard-body").textContent.includes("Access requested")`, within)

			adminTab(t, "/admin/requests")
			admin.click(t, fmt.Sprintf(`//tr[contains(., %q)]//button[normalize-space(.)="Approve"]`, userEmail))
			approved := time.Now()
			admin.waitFor(t, "the approved request", fmt.Sprintf(`[...document.querySelectorAll("tr")].some((tr) => tr.textContent.includes(%q) && !!tr.querySelector(".badge-green"))`, userEmail), actionTimeout)
			user.waitPanels(t, "every panel back", within, func(ps []panelState) bool {
				return all(ps, func(p panelState) bool { return !p.Denied && !p.Loading && !p.Empty })
			})
			t.Logf("every panel came back %s after Approve", time.Since(approved).Round(time.Millisecond))
			// Now every chart has data, the denials just caused included.
			user.waitPanels(t, "an SVG in every chart panel", within, func(ps []panelState) bool {
				return all(ps, func(p panelState) bool { return !p.Chart || p.Svg })
			})
			var ok bool
			user.eval(t, `window.e2eSamePage === true && location.pathname === "/dashboards/access"`, &ok)
			if !ok {
				t.Error("the dashboard page was reloaded or left; restored panels must swap in place")
			}
		}},
		{"6_deactivation_sends_to_login", func(t *testing.T) {
			adminTab(t, "/admin/users")
			admin.click(t, fmt.Sprintf(`//div[@id="users-table"]//a[normalize-space(.)=%q]`, userEmail))
			admin.waitFor(t, "the user's page", `location.pathname.startsWith("/admin/users/")`, actionTimeout)
			admin.click(t, button(`//article[@id="user-status"]`, "Deactivate"))
			admin.waitFor(t, "the deactivated badge", `!!document.querySelector("#user-status .badge-red")`, actionTimeout)
			admin.mu.Lock()
			dialogs := slices.Clone(admin.dialogs)
			admin.mu.Unlock()
			if !slices.ContainsFunc(dialogs, func(d string) bool { return strings.HasPrefix(d, "Deactivate "+userEmail+"?") }) {
				t.Errorf("confirmation dialogs = %q, want one asking to deactivate %s", dialogs, userEmail)
			}
			user.waitFor(t, "the login page", `location.pathname === "/login" && !!document.querySelector('form[action="/login"]')`, within)
			var next string
			user.eval(t, `document.querySelector('input[name="next"]').value`, &next)
			if next != "/dashboards/access" {
				t.Errorf("login form next = %q, want /dashboards/access (the page that held the panels)", next)
			}
		}},
	}
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			defer admin.assertClean(t)
			defer user.assertClean(t)
			s.run(t)
		})
		if !ok {
			return // later steps build on this one
		}
	}
}
