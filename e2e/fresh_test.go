package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestAdminActionsKeepTheScreenTrue performs each admin action in the
// panel and checks what a person then sees without reloading: every count
// and list on the screen agrees with the change, and the keyboard focus is
// on the control that was used, or on what replaced it (never dropped to
// the page's start).
func TestAdminActionsKeepTheScreenTrue(t *testing.T) {
	b := newBrowser(t)
	srv := startServer(t, nil, "--demo")
	admin := b.newTab(t, "admin")
	logIn(t, admin, srv.URL, "admin@demo.example", demoPassword)

	wantFocus := func(t *testing.T, after, want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			var got string
			admin.eval(t, `(() => { const e = document.activeElement; return !e || e === document.body ? "" : (e.id || e.outerHTML.slice(0, 120)); })()`, &got)
			if got == want {
				// htmx wires up swapped-in forms when the swap settles: wait
				// for that, or the next click would submit a form natively.
				admin.waitFor(t, "the swap to settle", `!document.querySelector(".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added")`, actionTimeout)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %s the focus is on %q, want #%s\n%s", after, got, want, admin.where())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// settled waits until htmx has bound what it last swapped in: htmx
	// binds new content when it settles, so a click on a button swapped in
	// a moment ago could otherwise submit its form without htmx.
	settled := func(t *testing.T) {
		t.Helper()
		admin.waitFor(t, "htmx to settle", `!document.querySelector(".htmx-added, .htmx-settling, .htmx-swapping, .htmx-request")`, actionTimeout)
	}
	footer := func(t *testing.T, sel string) string {
		t.Helper()
		return admin.text(t, sel+" nav.pagination > span")
	}
	total := func(t *testing.T, summary string) int {
		t.Helper()
		m := regexp.MustCompile(`(?:of )?([0-9,]+) [a-z]+$`).FindStringSubmatch(summary)
		if m == nil {
			t.Fatalf("footer %q says no total", summary)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}

	t.Run("create_user_counts_the_new_user", func(t *testing.T) {
		admin.open(t, srv.URL+"/admin/users")
		before := total(t, footer(t, "#users-table"))
		admin.typeInto(t, "#new-user-email", "newcomer@demo.example")
		admin.click(t, button("", "Create user"))
		admin.waitFor(t, "the temporary password", `!!document.querySelector("#user-create code.temp-password")`, actionTimeout)
		admin.waitFor(t, "the new user in the list", `document.querySelector("#users-table").textContent.includes("newcomer@demo.example")`, actionTimeout)
		if got, want := footer(t, "#users-table"), fmt.Sprintf("1–%d of %d users", before+1, before+1); got != want {
			t.Errorf("users footer = %q, want %q", got, want)
		}
		wantFocus(t, "Create user", "user-created")
	})

	var groupPath string
	t.Run("add_and_remove_a_member_count_them", func(t *testing.T) {
		admin.open(t, srv.URL+"/admin/groups")
		admin.click(t, `//div[@id="groups-table"]//a[normalize-space(.)="support"]`)
		admin.waitFor(t, "the support group's page", `/^\/admin\/groups\/\d+$/.test(location.pathname) && document.readyState === "complete"`, actionTimeout)
		admin.eval(t, `location.pathname`, &groupPath)
		before, _ := strconv.Atoi(admin.text(t, "#member-count"))
		admin.typeInto(t, `input[aria-label="Find a user to add"]`, "newcomer")
		// The search runs 300ms after the last key: wait for that answer,
		// not an earlier one a later one would replace.
		admin.run(t, "let the search settle", chromedp.Sleep(500*time.Millisecond))
		admin.waitFor(t, "the candidate", `!!document.querySelector("#candidates li form") && !document.querySelector(".htmx-request")`, actionTimeout)
		settled(t)
		admin.click(t, `#candidates li form button`)
		admin.waitFor(t, "the new member's row", `[...document.querySelectorAll("#members tbody tr")].some((tr) => tr.textContent.includes("newcomer@demo.example"))`, actionTimeout)
		after := before + 1
		if got := admin.text(t, "#member-count"); got != strconv.Itoa(after) {
			t.Errorf("members badge after Add = %q, want %d", got, after)
		}
		if got := total(t, footer(t, "#members")); got != after {
			t.Errorf("members footer after Add counts %d, want %d", got, after)
		}
		admin.waitFor(t, "the focus on the Added status that replaced the button",
			`!!document.activeElement.closest("#candidates li") && document.activeElement.textContent.includes("Added")`, actionTimeout)

		// Set expiry keeps the focus on its button, which is swapped with its row.
		var uid string
		admin.eval(t, `[...document.querySelectorAll("#members tbody tr")].find((tr) => tr.textContent.includes("newcomer@demo.example")).id.replace("member-", "")`, &uid)
		settled(t)
		admin.typeInto(t, `#member-`+uid+` input[name=expires]`, "2099-12-31")
		admin.click(t, "#expiry-"+uid)
		admin.waitFor(t, "the expiry badge", fmt.Sprintf(`document.querySelector("#member-%s").textContent.includes("until 31 Dec 2099")`, uid), actionTimeout)
		wantFocus(t, "Set expiry", "expiry-"+uid)

		settled(t)
		admin.click(t, "#remove-"+uid)
		admin.waitFor(t, "the row gone", `![...document.querySelectorAll("#members tbody tr")].some((tr) => tr.textContent.includes("newcomer@demo.example"))`, actionTimeout)
		if got := admin.text(t, "#member-count"); got != strconv.Itoa(before) {
			t.Errorf("members badge after Remove = %q, want %d", got, before)
		}
		if got := total(t, footer(t, "#members")); got != before {
			t.Errorf("members footer after Remove counts %d, want %d", got, before)
		}
		wantFocus(t, "Remove", "members-done")
		// The search line above says Add again, not the stale "Added".
		admin.waitFor(t, "the search line offering Add again", `!!document.querySelector("#candidates li form button") && !document.querySelector("#candidates").textContent.includes("Added")`, actionTimeout)

		// Undo puts the membership back, expiry and all.
		settled(t)
		admin.click(t, "#members-undo")
		admin.waitFor(t, "the row back with its expiry", fmt.Sprintf(`!!document.querySelector("#member-%s") && document.querySelector("#member-%s").textContent.includes("until 31 Dec 2099")`, uid, uid), actionTimeout)
		if got := admin.text(t, "#member-count"); got != strconv.Itoa(after) {
			t.Errorf("members badge after Undo = %q, want %d", got, after)
		}
		wantFocus(t, "Undo", "members-done")
		settled(t)
		admin.click(t, "#remove-"+uid)
		admin.waitFor(t, "the row gone again", `![...document.querySelectorAll("#members tbody tr")].some((tr) => tr.textContent.includes("newcomer@demo.example"))`, actionTimeout)
	})

	t.Run("save_details_updates_the_heading", func(t *testing.T) {
		admin.open(t, srv.URL+groupPath)
		admin.run(t, "clear the description", setValue("#group-description", "Support, first line and second."))
		admin.click(t, "#group-save")
		admin.waitFor(t, "the saved heading", `document.querySelector("#group-head").textContent.includes("Support, first line and second.")`, actionTimeout)
		wantFocus(t, "Save details", "group-save")
	})

	t.Run("a_grant_toggle_updates_its_row_and_can_be_undone", func(t *testing.T) {
		admin.open(t, srv.URL+"/admin/access")
		cell := `button[aria-label="support may not open Finance: grant"]`
		var id string
		admin.eval(t, fmt.Sprintf(`document.querySelector(%q).id`, cell), &id)
		label := func() string { return admin.text(t, "#dash-row-finance") }
		was := label()
		admin.click(t, cell)
		admin.waitFor(t, "the granted cell", fmt.Sprintf(`document.getElementById(%q).getAttribute("aria-pressed") === "true"`, id), actionTimeout)
		wantFocus(t, "a grant toggle", id)
		if now := label(); now == was {
			t.Errorf("the Finance row still says %q after granting it to support", now)
		}
		if got := strings.Join(strings.Fields(admin.text(t, "#matrix-status")), " "); got != "Granted Finance to support. Undo" {
			t.Errorf("status line = %q", got)
		}
		admin.click(t, "#matrix-undo")
		admin.waitFor(t, "the cell back off", fmt.Sprintf(`document.getElementById(%q).getAttribute("aria-pressed") === "false"`, id), actionTimeout)
		wantFocus(t, "Undo", "matrix-undo")
		if now := label(); now != was {
			t.Errorf("after Undo the Finance row says %q, want %q again", now, was)
		}
	})

	t.Run("approving_moves_the_request_to_decided", func(t *testing.T) {
		olivia := b.newTab(t, "olivia")
		logIn(t, olivia, srv.URL, "olivia@demo.example", demoPassword)
		olivia.click(t, `//article[@id="dash-support"]//button[normalize-space(.)="Request access"]`)
		olivia.waitFor(t, "the pending badge", `document.querySelector("#dash-support").textContent.includes("waiting")`, actionTimeout)
		olivia.assertClean(t)

		admin.open(t, srv.URL+"/admin/requests")
		if got := admin.text(t, "#requests h2 .badge"); got != "1" {
			t.Fatalf("Waiting badge = %q, want 1", got)
		}
		admin.click(t, `//tr[contains(., "olivia@demo.example")]//button[normalize-space(.)="Approve"]`)
		admin.waitFor(t, "the decision", `!!document.querySelector("#requests-done")`, actionTimeout)
		if got := admin.text(t, "#requests h2 .badge"); got != "0" {
			t.Errorf("Waiting badge after Approve = %q, want 0", got)
		}
		var decided bool
		admin.eval(t, `(() => { const t = document.querySelectorAll("#requests table")[1]; return t.textContent.includes("olivia@demo.example") && !t.textContent.includes("No decisions yet"); })()`, &decided)
		if !decided {
			t.Error(`the approved request is not under "Recently decided"`)
		}
		wantFocus(t, "Approve", "requests-done")
	})

	t.Run("deactivation_empties_the_sessions_list", func(t *testing.T) {
		sam := b.newTab(t, "sam")
		logIn(t, sam, srv.URL, "sam@demo.example", demoPassword)
		admin.open(t, srv.URL+"/admin/users")
		admin.click(t, `//div[@id="users-table"]//a[normalize-space(.)="sam@demo.example"]`)
		admin.waitFor(t, "sam's page with his session", `location.pathname.startsWith("/admin/users/") && document.querySelectorAll("#sessions tbody tr[id]").length > 0`, actionTimeout)
		admin.click(t, "#user-active")
		admin.waitFor(t, "the deactivated badge", `!!document.querySelector("#user-status .badge-red")`, actionTimeout)
		wantFocus(t, "Deactivate", "user-active")
		admin.waitFor(t, "no sessions listed", `document.querySelector("#sessions").textContent.includes("Not logged in anywhere.")`, actionTimeout)
	})
	admin.assertClean(t)
}

// setValue sets a form field's value as if typed in full.
func setValue(sel, v string) chromedp.Action { return chromedp.SetValue(sel, v, chromedp.ByQuery) }
