package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestManagerJourney: a team lead made a manager of "sales" from the
// command line finds the group under "Groups you manage" in the top bar,
// adds a colleague by exact email, approves nothing they cannot, and loses
// the group on their next page once an operator removes them. No console
// error, exception or CSP violation on the way.
func TestManagerJourney(t *testing.T) {
	b := newBrowser(t)
	srv := startServer(t, nil, "--demo")
	srv.cli(t, "groups", "add-manager", "sales", "lee@demo.example")
	lee := b.newTab(t, "manager")
	logIn(t, lee, srv.URL, "lee@demo.example", demoPassword)

	lee.waitFor(t, "the Groups you manage menu", `[...document.querySelectorAll("header summary")].some((s) => s.title === "Groups you manage")`, actionTimeout)
	lee.click(t, `//header//summary[@title="Groups you manage"]`)
	lee.click(t, `//header//details//a[normalize-space(.)="sales"]`)
	lee.waitFor(t, "the sales group page", `/^\/admin\/groups\/\d+$/.test(location.pathname) && document.querySelector("h1").textContent.trim() === "sales"`, actionTimeout)
	var adminOnly bool
	lee.eval(t, `!!document.querySelector('a[href="/admin/access"], a[href^="/admin/users"], a[href$="/delete"], #group-edit')`, &adminOnly)
	if adminOnly {
		t.Error("the manager's group page shows admin-only controls")
	}

	// Add Olivia by her exact email.
	lee.typeInto(t, `input[aria-label="Find a user to add"]`, "olivia@demo.example")
	lee.waitFor(t, "Olivia in the search results", `[...document.querySelectorAll("#candidates li")].some((li) => li.textContent.includes("olivia@demo.example"))`, actionTimeout)
	lee.click(t, `//ul[@id="candidates"]/li[contains(., "olivia@demo.example")]//button[normalize-space(.)="Add"]`)
	lee.waitFor(t, "Olivia in the members table", `[...document.querySelectorAll("#members tbody tr")].some((tr) => tr.textContent.includes("olivia@demo.example"))`, actionTimeout)
	if out := srv.cli(t, "groups", "members", "sales"); !strings.Contains(out, "olivia@demo.example") {
		t.Errorf("groups members sales after the manager's add:\n%s", out)
	}
	lee.assertClean(t)

	// Removed by an operator: the next page load is refused.
	srv.cli(t, "groups", "remove-manager", "sales", "lee@demo.example")
	var path string
	lee.eval(t, `location.pathname`, &path)
	lee.open(t, srv.URL+path)
	lee.waitFor(t, "the 403 page", `document.querySelector("h1") && document.querySelector("h1").textContent.trim() === "Forbidden"`, actionTimeout)
	var menu bool
	lee.eval(t, fmt.Sprintf(`[...document.querySelectorAll("header summary")].some((s) => s.title === %q)`, "Groups you manage"), &menu)
	if menu {
		t.Error("the top bar still offers managed groups after removal")
	}
}
