package e2e

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
)

// TestTOTPSetupAndRecoveryCodes: the authenticator app's setup page
// centres its QR code and shows the key in groups of four; after Turn on,
// the recovery codes can be copied (to the clipboard, said in the page)
// and downloaded as a text file holding every code.
func TestTOTPSetupAndRecoveryCodes(t *testing.T) {
	b := newBrowser(t)
	srv := startServer(t, nil, "--demo")
	tb := b.newTab(t, "alice")
	logIn(t, tb, srv.URL, "alice@demo.example", demoPassword)
	tb.open(t, srv.URL+"/account/security")
	tb.click(t, `//article[@id="totp"]//button[@type="submit"]`)
	tb.waitFor(t, "the setup page", `!!document.querySelector(".totp-setup .totp-qr")`, actionTimeout)

	var setup struct {
		Offset float64 `json:"offset"`
		Key    string  `json:"key"`
	}
	tb.eval(t, `(() => {
		const card = document.querySelector(".totp-setup").getBoundingClientRect(), qr = document.querySelector(".totp-qr").getBoundingClientRect();
		return {offset: Math.abs((qr.left + qr.width / 2) - (card.left + card.width / 2)), key: document.querySelector("#totp-secret").textContent};
	})()`, &setup)
	if setup.Offset > 2 {
		t.Errorf("the QR code is %.0f px off the card's centre", setup.Offset)
	}
	groups := strings.Fields(setup.Key)
	if len(groups) < 4 || len(groups[0]) != 4 {
		t.Errorf("the key %q is not in groups of four", setup.Key)
	}
	code, err := totp.GenerateCode(strings.Join(groups, ""), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tb.typeInto(t, "#code", code)
	tb.click(t, button("", "Turn on"))
	tb.waitFor(t, "the recovery codes", `!!document.querySelector("#recovery-codes li")`, actionTimeout)

	var codes []string
	tb.eval(t, `[...document.querySelectorAll("#recovery-codes li")].map((li) => li.textContent.trim())`, &codes)
	var href string
	tb.eval(t, `document.querySelector("a[download]").getAttribute("href")`, &href)
	file, err := url.PathUnescape(strings.TrimPrefix(href, "data:text/plain;charset=utf-8,"))
	if err != nil || len(codes) != 10 || !strings.HasSuffix(file, strings.Join(codes, "\n")+"\n") {
		t.Errorf("the download holds %q (%v), want the %d codes shown", file, err, len(codes))
	}

	tb.catchClipboard(t, srv.URL)
	tb.click(t, button("", "Copy codes"))
	tb.waitFor(t, "the copy's status", `document.querySelector("[data-copy-status]").textContent !== ""`, actionTimeout)
	if got := tb.text(t, "[data-copy-status]"); got != "Copied 10 codes." {
		t.Errorf("after Copy codes the page says %q", got)
	}
	var clip string
	tb.eval(t, `window.copied`, &clip)
	if clip != strings.Join(codes, "\n")+"\n" {
		t.Errorf("the clipboard got %q, want the codes, one a line", clip)
	}
	tb.assertClean(t)
}

// catchClipboard lets the page at origin write to the clipboard and keeps
// a copy of what it writes in window.copied (headless chromium lets a page
// write to the clipboard but not read it back).
func (tb *tab) catchClipboard(t *testing.T, origin string) {
	t.Helper()
	tb.run(t, "allow the clipboard", chromedp.ActionFunc(func(ctx context.Context) error {
		return cdpbrowser.GrantPermissions([]cdpbrowser.PermissionType{cdpbrowser.PermissionTypeClipboardReadWrite, cdpbrowser.PermissionTypeClipboardSanitizedWrite}).
			WithOrigin(origin).Do(ctx)
	}))
	var x any
	tb.eval(t, `(() => { const write = navigator.clipboard.writeText.bind(navigator.clipboard); navigator.clipboard.writeText = (s) => { window.copied = s; return write(s); }; return 1; })()`, &x)
}
