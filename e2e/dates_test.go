package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// dateFieldJS describes a date field: what it takes and what its hint
// says, as a person and a screen reader meet it.
const dateFieldJS = `((sel) => {
	const el = document.querySelector(sel);
	const hint = document.getElementById(el.getAttribute("aria-describedby") || "");
	return {type: el.type, inputMode: el.inputMode, pattern: el.pattern, placeholder: el.placeholder,
		value: el.value, hint: hint ? hint.textContent.replace(/\s+/g, " ").trim() : ""};
})`

type dateFieldState struct {
	Type        string `json:"type"`
	InputMode   string `json:"inputMode"`
	Pattern     string `json:"pattern"`
	Placeholder string `json:"placeholder"`
	Value       string `json:"value"`
	Hint        string `json:"hint"`
}

func (tb *tab) dateField(t *testing.T, sel string) dateFieldState {
	t.Helper()
	var s dateFieldState
	tb.eval(t, fmt.Sprintf("%s(%q)", dateFieldJS, sel), &s)
	return s
}

// wantDateField checks that a field takes a day as YYYY-MM-DD and that
// its hint says so, in the words the pages print a day with.
func wantDateField(t *testing.T, what string, s dateFieldState) {
	t.Helper()
	if s.Type != "text" || s.InputMode != "numeric" || s.Pattern != `\d{4}-\d{2}-\d{2}` || s.Placeholder != "YYYY-MM-DD" {
		t.Errorf("%s is not a YYYY-MM-DD text field: %+v", what, s)
	}
	if !strings.Contains(s.Hint, "YYYY-MM-DD (2026-07-11 is 11 Jul 2026)") {
		t.Errorf("%s's hint = %q, want the format tied to how pages print a day", what, s.Hint)
	}
}

// retype empties a field and types text into it key by key.
func (tb *tab) retype(t *testing.T, sel, text string) {
	t.Helper()
	tb.run(t, "retype "+sel, chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).value = ""`, sel), nil), chromedp.SendKeys(sel, text, chromedp.ByQuery))
}

// TestDatesAreTypedAsTheyAreRead: the membership expiry and the audit
// filter take a day typed as YYYY-MM-DD, say so beside the field, show a
// stored day the same way, and answer a day that is not one with a
// sentence, changing nothing; the focus stays where the person works, and
// axe finds nothing wrong with the refusals.
func TestDatesAreTypedAsTheyAreRead(t *testing.T) {
	b := newBrowser(t)
	srv := startServer(t, nil, "--demo")
	admin := b.newTab(t, "admin")
	logIn(t, admin, srv.URL, "admin@demo.example", demoPassword)
	settled := func(t *testing.T) {
		t.Helper()
		admin.waitFor(t, "htmx to settle", `!document.querySelector(".htmx-added, .htmx-settling, .htmx-swapping, .htmx-request")`, actionTimeout)
	}
	var requests int
	countRequests := func(t *testing.T) {
		t.Helper()
		// Evaluated through the DevTools protocol, outside the page's CSP.
		admin.eval(t, `window.probeRequests = 0; document.addEventListener("htmx:beforeRequest", () => window.probeRequests++); 0`, &requests)
	}
	badge := func(t *testing.T, uid string) string {
		t.Helper()
		return strings.Join(strings.Fields(admin.text(t, "#member-"+uid+` td[data-label="Status"]`)), " ")
	}

	admin.open(t, srv.URL+"/admin/groups")
	admin.click(t, `//div[@id="groups-table"]//a[normalize-space(.)="support"]`)
	admin.waitFor(t, "the support group's page", `/^\/admin\/groups\/\d+$/.test(location.pathname) && document.readyState === "complete"`, actionTimeout)

	// Add olivia until a day typed key by key.
	admin.typeInto(t, `input[aria-label="Find a user to add"]`, "olivia")
	admin.waitFor(t, "olivia in the search results", `[...document.querySelectorAll("#candidates li")].some((li) => li.textContent.includes("olivia@demo.example")) && !document.querySelector(".htmx-request")`, actionTimeout)
	settled(t)
	var uid string
	admin.eval(t, `[...document.querySelectorAll("#candidates li")].find((li) => li.textContent.includes("olivia@demo.example")).id.replace("candidate-", "")`, &uid)
	wantDateField(t, "the candidate's until field", admin.dateField(t, "#expires-"+uid))
	admin.typeInto(t, "#expires-"+uid, "2099-07-11")
	admin.click(t, "#add-"+uid)
	admin.waitFor(t, "olivia's row", fmt.Sprintf(`!!document.querySelector("#member-%s")`, uid), actionTimeout)
	settled(t)
	if got := badge(t, uid); !strings.Contains(got, "until 11 Jul 2099") {
		t.Errorf("after adding until 2099-07-11 the row says %q, want until 11 Jul 2099", got)
	}
	row := fmt.Sprintf("#member-%s input[name=expires]", uid)
	f := admin.dateField(t, row)
	wantDateField(t, "the member's expiry field", f)
	if f.Value != "2099-07-11" {
		t.Errorf("the member's expiry field shows %q, want the day as typed, 2099-07-11", f.Value)
	}

	t.Run("words_are_refused_by_the_browser", func(t *testing.T) {
		countRequests(t)
		admin.retype(t, row, "tomorrow")
		admin.click(t, "#expiry-"+uid)
		var st struct {
			Requests int    `json:"requests"`
			Mismatch bool   `json:"mismatch"`
			Value    string `json:"value"`
		}
		admin.eval(t, fmt.Sprintf(`({requests: window.probeRequests, mismatch: document.querySelector(%q).validity.patternMismatch, value: document.querySelector(%q).value})`, row, row), &st)
		if st.Requests != 0 || !st.Mismatch || st.Value != "tomorrow" {
			t.Errorf("Set expiry with %q: %+v, want no request, a pattern mismatch and the text kept", "tomorrow", st)
		}
		if got := badge(t, uid); !strings.Contains(got, "until 11 Jul 2099") {
			t.Errorf("the row says %q after a refused expiry", got)
		}
	})

	t.Run("a_day_not_in_the_calendar_is_explained", func(t *testing.T) {
		admin.retype(t, row, "2026-13-40")
		admin.click(t, "#expiry-"+uid)
		admin.waitFor(t, "the refusal", fmt.Sprintf(`document.querySelector("#member-%s").textContent.includes("is not a date like 2026-12-31")`, uid), actionTimeout)
		settled(t)
		if got := admin.text(t, "#member-"+uid+" .field-error"); got != `Expiry "2026-13-40" is not a date like 2026-12-31.` {
			t.Errorf("the refusal says %q", got)
		}
		if got := badge(t, uid); !strings.Contains(got, "until 11 Jul 2099") {
			t.Errorf("the row says %q after a refused expiry", got)
		}
		if f := admin.dateField(t, row); f.Value != "2099-07-11" {
			t.Errorf("after the refusal the field shows %q, want the stored day 2099-07-11", f.Value)
		}
		var focus string
		admin.eval(t, `document.activeElement.id`, &focus)
		if focus != "expiry-"+uid {
			t.Errorf("after the refusal the focus is on %q, want #expiry-%s", focus, uid)
		}
		admin.checkLooks(t, "expiry refused")
		admin.forgetErrorStatus(422)
	})

	t.Run("a_new_day_is_saved_and_shown_both_ways", func(t *testing.T) {
		admin.retype(t, row, "2098-01-02")
		admin.run(t, "press Enter", chromedp.SendKeys(row, kb.Enter, chromedp.ByQuery))
		admin.waitFor(t, "the new expiry", fmt.Sprintf(`document.querySelector("#member-%s").textContent.includes("until 2 Jan 2098")`, uid), actionTimeout)
		settled(t)
		if f := admin.dateField(t, row); f.Value != "2098-01-02" {
			t.Errorf("the field shows %q, want 2098-01-02", f.Value)
		}
	})

	t.Run("no_expiry_ignores_the_field", func(t *testing.T) {
		admin.retype(t, row, "whenever")
		admin.click(t, "#expiry-clear-"+uid)
		admin.waitFor(t, "the membership without an end", fmt.Sprintf(`!document.querySelector("#member-%s").textContent.includes("until")`, uid), actionTimeout)
		settled(t)
		if got := badge(t, uid); !strings.HasPrefix(got, "member") {
			t.Errorf("after No expiry the row says %q, want member", got)
		}
		if f := admin.dateField(t, row); f.Value != "" {
			t.Errorf("after No expiry the field shows %q", f.Value)
		}
	})

	t.Run("audit_filter", func(t *testing.T) {
		admin.open(t, srv.URL+"/admin/audit")
		wantDateField(t, "the audit filter's From", admin.dateField(t, `input[name=from]`))
		wantDateField(t, "the audit filter's To", admin.dateField(t, `input[name=to]`))
		table := func() string {
			var s string
			admin.eval(t, `document.querySelector("#audit-table").textContent.replace(/\s+/g, " ")`, &s)
			return s
		}

		// Leaving the field filters (a change), even when the browser
		// would call the text invalid: the server says what is wrong.
		admin.typeInto(t, `input[name=from]`, "tomorrow")
		admin.run(t, "press Tab", chromedp.SendKeys(`input[name=from]`, kb.Tab, chromedp.ByQuery))
		admin.waitFor(t, "the refusal", `document.querySelector("#audit-table").textContent.includes("is not a date")`, actionTimeout)
		if got := table(); !strings.Contains(got, "“From” is not a date like 2026-12-31.") {
			t.Errorf("the audit table says %q for From=tomorrow", got)
		}
		var focus string
		admin.eval(t, `document.activeElement.name || document.activeElement.tagName`, &focus)
		if focus != "to" {
			t.Errorf("after Tab the focus is on %q, want the To field", focus)
		}

		admin.typeInto(t, `input[name=to]`, "2026-13-40")
		admin.run(t, "press Enter", chromedp.SendKeys(`input[name=to]`, kb.Enter, chromedp.ByQuery))
		admin.waitFor(t, "both refusals", `document.querySelector("#audit-table").textContent.includes("“To” is not a date")`, actionTimeout)
		if got := table(); !strings.Contains(got, "“From” is not a date like 2026-12-31; “To” is not a date like 2026-12-31.") {
			t.Errorf("the audit table says %q", got)
		}
		admin.checkLooks(t, "audit filter refused")

		// Days typed as YYYY-MM-DD filter: January 2000 holds nothing, this
		// century holds the changes above.
		filter := func(t *testing.T, from, to string) string {
			t.Helper()
			admin.retype(t, `input[name=from]`, from)
			admin.retype(t, `input[name=to]`, to)
			admin.run(t, "press Enter", chromedp.SendKeys(`input[name=to]`, kb.Enter, chromedp.ByQuery))
			admin.waitFor(t, "the address with both days", fmt.Sprintf(`location.search.includes("from=%s") && location.search.includes("to=%s")`, from, to), actionTimeout)
			settled(t)
			return table()
		}
		if got := filter(t, "2000-01-01", "2000-01-31"); strings.Contains(got, "is not a date") || !strings.Contains(got, "No events.") {
			t.Errorf("filtered on January 2000 the audit table says %q, want No events.", got)
		}
		if got := filter(t, "2000-01-01", "2099-12-31"); strings.Contains(got, "is not a date") || !strings.Contains(got, "olivia@demo.example") {
			t.Errorf("filtered on this century the audit table says %q, want the changes to olivia's membership", got)
		}
		if f := admin.dateField(t, `input[name=from]`); f.Value != "2000-01-01" {
			t.Errorf("From shows %q, want 2000-01-01", f.Value)
		}
	})
	admin.forgetErrorStatus(422)
	admin.assertClean(t)
}
