package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestRequestAccessKeepsFocus: pressing "Request access" in a denial puts
// the keyboard focus on the answer, which says who decides, instead of
// dropping it to <body>; the decider's note then shows in the app.
func TestRequestAccessKeepsFocus(t *testing.T) {
	b := newBrowser(t)
	srv := startServer(t, nil, "--demo")
	tb := b.newTab(t, "olivia")
	logIn(t, tb, srv.URL, "olivia@demo.example", demoPassword)
	tb.open(t, srv.URL+"/dashboards/support")
	tb.typeInto(t, `.denied input[name="message"]`, "for the on-call review")
	tb.click(t, button(`//div[contains(@class, "denied")]`, "Request access"))
	tb.waitFor(t, "the request's answer", `!!document.querySelector(".denied .request-pending")`, actionTimeout)
	// htmx focuses the answer when its swap settles, a moment after it
	// appears.
	tb.waitFor(t, "the focus on the answer", `document.activeElement.classList.contains("request-pending")`, 5*time.Second)
	var focused string
	tb.eval(t, `document.activeElement.className + ": " + document.activeElement.textContent.replace(/\s+/g, " ").trim()`, &focused)
	if !strings.HasPrefix(focused, "request-pending: Access requested waiting for an admin") {
		t.Errorf("after Request access the focus is on %q, want the answer saying who decides", focused)
	}
	srv.cli(t, "audit", "list", "--limit", "1")
	tb.assertClean(t)
}
