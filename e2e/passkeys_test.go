package e2e

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// TestPasskeysInChromium registers a passkey with chromium's DevTools
// virtual authenticator, signs out, signs in with it without a password,
// uses it as the second factor after a password, and removes it. The
// browser talks to http://localhost:PORT: WebAuthn needs a secure context
// and a host name (never an IP address) as the relying party, which the
// server derives from --base-url.
func TestPasskeysInChromium(t *testing.T) {
	b := newBrowser(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	base := fmt.Sprintf("http://localhost:%d", port)
	srv := startServer(t, nil, "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--base-url", base)
	tb := b.newTab(t, "passkeys")

	// A virtual platform authenticator with discoverable credentials and
	// user verification (a device PIN or fingerprint that always succeeds).
	var authID webauthn.AuthenticatorID
	tb.run(t, "add a virtual authenticator",
		webauthn.Enable(),
		chromedp.ActionFunc(func(ctx context.Context) error {
			var err error
			authID, err = webauthn.AddVirtualAuthenticator(&webauthn.VirtualAuthenticatorOptions{
				Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
				Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true,
				HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
			}).Do(ctx)
			return err
		}))
	credentials := func(t *testing.T) int {
		t.Helper()
		var n int
		tb.run(t, "list the authenticator's credentials", chromedp.ActionFunc(func(ctx context.Context) error {
			cs, err := webauthn.GetCredentials(authID).Do(ctx)
			n = len(cs)
			return err
		}))
		return n
	}

	const (
		email    = "pat@example.com"
		password = "Gatehouse-passkey-e2e-5581"
		keyName  = "E2E laptop"
	)
	logOut := func(t *testing.T) {
		t.Helper()
		tb.click(t, button("//header", "Log out"))
		tb.waitPath(t, "/login")
	}
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"1_setup_admin", func(t *testing.T) {
			u, err := url.Parse(srv.setupURL(t))
			if err != nil {
				t.Fatal(err)
			}
			u.Host = fmt.Sprintf("localhost:%d", port)
			tb.open(t, u.String())
			tb.typeInto(t, "#email", email)
			tb.typeInto(t, "#name", "Pat")
			tb.typeInto(t, "#password", password)
			tb.typeInto(t, "#confirm", password)
			tb.click(t, button("", "Create admin"))
			tb.waitPath(t, "/")
		}},
		{"2_register_a_passkey", func(t *testing.T) {
			tb.open(t, base+"/account/security")
			tb.typeInto(t, "#passkey-name", keyName)
			tb.click(t, button("", "Add a passkey"))
			tb.waitFor(t, "the new passkey in the list", fmt.Sprintf(`location.search.includes("passkey-added") && document.querySelector("#passkeys table") !== null && document.querySelector("#passkeys table").textContent.includes(%q)`, keyName), actionTimeout)
			if n := credentials(t); n != 1 {
				t.Errorf("the authenticator holds %d credentials, want 1", n)
			}
		}},
		{"3_sign_in_without_a_password", func(t *testing.T) {
			logOut(t)
			tb.click(t, button("", "Sign in with a passkey"))
			tb.waitPath(t, "/")
			tb.waitFor(t, "the Admin link of a signed-in admin", `!!document.querySelector('header a[href="/admin"]')`, actionTimeout)
		}},
		{"4_passkey_as_second_factor", func(t *testing.T) {
			logOut(t)
			tb.typeInto(t, "#email", email)
			tb.typeInto(t, "#password", password)
			tb.click(t, button("", "Log in"))
			tb.waitPath(t, "/login/mfa")
			tb.click(t, button("", "Use a passkey"))
			tb.waitPath(t, "/")
			tb.open(t, base+"/account")
			tb.waitFor(t, "this session's method", `[...document.querySelectorAll("table.data tbody tr")].some((tr) => tr.textContent.includes("this device") && tr.textContent.includes("Password + passkey"))`, actionTimeout)
		}},
		{"5_remove_it", func(t *testing.T) {
			tb.open(t, base+"/account/security")
			tb.click(t, fmt.Sprintf(`button[aria-label=%q]`, "Remove passkey "+keyName))
			tb.waitFor(t, "the passkey gone", `location.search.includes("passkey-removed") && document.querySelector("#passkeys table") === null`, actionTimeout)
			logOut(t)
			// The authenticator still holds the credential; the server no
			// longer accepts it, and says so on the page.
			tb.click(t, button("", "Sign in with a passkey"))
			tb.waitFor(t, "the refusal", `!document.querySelector("#passkey-status").hidden && document.querySelector("#passkey-status").textContent.includes("could not be verified")`, actionTimeout)
			var path string
			tb.eval(t, `location.pathname`, &path)
			if path != "/login" {
				t.Errorf("after a refused passkey the page is %s, want /login", path)
			}
			// The refusal is a 401 the browser logs; anything else is a problem.
			tb.mu.Lock()
			var rest []string
			for _, p := range tb.problems {
				if !(strings.Contains(p, "401") && strings.Contains(p, "/login/passkey/finish")) {
					rest = append(rest, p)
				}
			}
			tb.problems = rest
			tb.mu.Unlock()
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) {
			s.run(t)
			tb.assertClean(t)
		}) {
			return
		}
	}
}
