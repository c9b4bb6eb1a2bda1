package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestGrantsMatrixKeyboardAndPhone: the grants matrix is one tab stop
// whose toggles the arrow keys move through (Tab leaves it, a toggle keeps
// the stop after it is pressed), and on a phone it is a card per dashboard
// listing its groups, with nothing to scroll sideways.
func TestGrantsMatrixKeyboardAndPhone(t *testing.T) {
	b := newBrowser(t)
	srv := startServer(t, nil, "--demo")
	admin := b.newTab(t, "admin")
	logIn(t, admin, srv.URL, "admin@demo.example", demoPassword)
	admin.open(t, srv.URL+"/admin/access")

	focused := func() string {
		t.Helper()
		var id string
		admin.eval(t, `document.activeElement.id || document.activeElement.tagName`, &id)
		return id
	}
	stops := func() int {
		t.Helper()
		var n int
		admin.eval(t, `document.querySelectorAll("table.matrix button[tabindex='0']").length`, &n)
		return n
	}
	var ids [][]string
	admin.eval(t, `[...document.querySelectorAll("table.matrix tbody tr")].map((tr) => [...tr.querySelectorAll("button.cell-on, button.cell-off")].map((b) => b.id))`, &ids)
	if len(ids) < 2 || len(ids[0]) < 2 {
		t.Fatalf("matrix toggles: %v", ids)
	}
	if n := stops(); n != 1 {
		t.Fatalf("%d toggles are tab stops, want 1", n)
	}
	press := func(key string) {
		t.Helper()
		admin.run(t, "press a key", chromedp.KeyEvent(key))
	}
	// Tabbing through the page (round it, more than once) meets one toggle:
	// the first.
	reached := map[string]bool{}
	admin.run(t, "focus the filter", chromedp.Focus(`input[aria-label="Filter groups"]`, chromedp.ByQuery))
	for range 40 {
		press(kb.Tab)
		if id := focused(); strings.HasPrefix(id, "cell-") {
			reached[id] = true
		}
	}
	if len(reached) != 1 || !reached[ids[0][0]] {
		t.Fatalf("tabbing through the page reaches the toggles %v, want only the first, %q", reached, ids[0][0])
	}
	admin.run(t, "focus the first toggle", chromedp.Focus("#"+ids[0][0], chromedp.ByQuery))
	press(kb.ArrowRight)
	if got := focused(); got != ids[0][1] {
		t.Errorf("ArrowRight: %q, want %q", got, ids[0][1])
	}
	press(kb.ArrowDown)
	if got := focused(); got != ids[1][1] {
		t.Errorf("ArrowDown: %q, want %q", got, ids[1][1])
	}
	press(kb.End)
	if got, want := focused(), ids[1][len(ids[1])-1]; got != want {
		t.Errorf("End: %q, want %q", got, want)
	}
	press(kb.Home)
	if got := focused(); got != ids[1][0] {
		t.Errorf("Home: %q, want %q", got, ids[1][0])
	}
	// Pressing the toggle keeps it the one stop.
	press(" ")
	admin.waitFor(t, "the toggle swapped", `!document.querySelector(".htmx-request, .htmx-swapping, .htmx-settling")`, actionTimeout)
	if got := focused(); got != ids[1][0] {
		t.Errorf("after pressing the toggle the focus is on %q, want %q", got, ids[1][0])
	}
	if n := stops(); n != 1 {
		t.Errorf("after a toggle %d toggles are tab stops, want 1", n)
	}
	press(kb.Tab)
	if got := focused(); strings.HasPrefix(got, "cell-") {
		t.Errorf("Tab from the matrix stays in it, on %q", got)
	}
	admin.assertClean(t)

	phone := b.newTab(t, "phone")
	phone.run(t, "emulate a phone", chromedp.EmulateViewport(phoneWidth, 812, chromedp.EmulateMobile))
	logIn(t, phone, srv.URL, "admin@demo.example", demoPassword)
	phone.open(t, srv.URL+"/admin/access")
	var layout struct {
		Scrolls bool     `json:"scrolls"`
		Labels  []string `json:"labels"`
	}
	phone.eval(t, `(() => {
		const w = document.querySelector("#matrix .table-wrap"), row = document.querySelector("table.matrix tbody tr");
		return {scrolls: w.scrollWidth > w.clientWidth + 1,
			labels: [...row.querySelectorAll("td")].map((td) => getComputedStyle(td, "::before").content.replace(/"/g, ""))};
	})()`, &layout)
	if layout.Scrolls || len(layout.Labels) < 2 || layout.Labels[0] == "none" || layout.Labels[0] == "" {
		t.Errorf("at %dpx the matrix scrolls sideways (%v) or its toggles are not labelled by group: %q", phoneWidth, layout.Scrolls, layout.Labels)
	}
	phone.assertClean(t)
}
