package app

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/db"
)

// TestDeviceCookieKeepsTheOwnerIn: failures from elsewhere lock out
// browsers that never logged in to the account, not the owner's; failures
// made with the owner's device cookie throttle that cookie alone.
func TestDeviceCookieKeepsTheOwnerIn(t *testing.T) {
	ta := newTestApp(t) // 5 failures per account, 50 per IP
	ta.createUser(t, "admin@example.com", true)
	owner := ta.login(t, "admin@example.com") // this browser now has a device cookie
	if res, _ := ta.post(t, owner, "/logout", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	ta.Clock.Advance(time.Second)
	wrong := url.Values{"email": {"admin@example.com"}, "password": {"wrong password"}}
	// An attacker (no device cookie) fails five times: the account is locked
	// for browsers without a device cookie.
	for i := 0; i < 5; i++ {
		if res, _ := ta.post(t, ta.client(), "/login", wrong); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attacker failure %d: %d", i+1, res.StatusCode)
		}
	}
	if res, _ := ta.post(t, ta.client(), "/login", url.Values{"email": {"admin@example.com"}, "password": {testPassword}}); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a new browser with the right password during the lockout: %d, want 429", res.StatusCode)
	}
	// The owner's browser is not locked out.
	res, body := ta.post(t, owner, "/login", url.Values{"email": {"admin@example.com"}, "password": {testPassword}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner with a device cookie during the lockout: %d, want 303\n%s", res.StatusCode, body)
	}
	ta.post(t, owner, "/logout", nil)
	ta.Clock.Advance(time.Second)
	// Failures with the owner's cookie count for that cookie: five lock it.
	for i := 0; i < 5; i++ {
		if res, _ := ta.post(t, owner, "/login", wrong); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("device failure %d: %d", i+1, res.StatusCode)
		}
	}
	if res, _ := ta.post(t, owner, "/login", wrong); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("sixth failure with one device cookie: %d, want 429", res.StatusCode)
	}
	// A device cookie made up, or copied onto another account, is no cookie.
	u, _ := url.Parse(ta.Server.URL)
	var value string
	for _, c := range owner.Jar.Cookies(u) {
		if c.Name == ta.deviceCookieName() {
			value = c.Value
		}
	}
	if value == "" {
		t.Fatal("no device cookie after a login")
	}
	forged := ta.client()
	forged.Jar.SetCookies(u, []*http.Cookie{{Name: ta.deviceCookieName(), Value: strings.Repeat("A", len(value))}})
	if res, _ := ta.post(t, forged, "/login", url.Values{"email": {"admin@example.com"}, "password": {testPassword}}); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a forged device cookie during the lockout: %d, want 429", res.StatusCode)
	}
	if n := ta.countAudit(t, db.ActionLoginFailed, "admin@example.com"); n != 5 {
		t.Errorf("%d failures recorded for the account, want the attacker's 5", n)
	}
}

// TestCurrentPasswordCheckIsThrottledAndAudited: guessing the current
// password on /account/password is a login guess.
func TestCurrentPasswordCheckIsThrottledAndAudited(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "ann@example.com", false)
	c := ta.login(t, "ann@example.com")
	ta.Clock.Advance(time.Second)
	guess := url.Values{"current": {"not my password"}, "new": {"brand new passphrase"}, "confirm": {"brand new passphrase"}}
	for i := 0; i < 5; i++ {
		if res, _ := ta.post(t, c, "/account/password", guess); res.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("guess %d: %d, want 422", i+1, res.StatusCode)
		}
	}
	if n := ta.countAudit(t, db.ActionLoginFailed, ""); n != 5 {
		t.Errorf("%d failed guesses audited, want 5", n)
	}
	res, body := ta.post(t, c, "/account/password", url.Values{"current": {testPassword}, "new": {"brand new passphrase"}, "confirm": {"brand new passphrase"}})
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many failed attempts") {
		t.Errorf("sixth try: %d Retry-After %q, want 429 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if n := ta.countAudit(t, db.ActionLoginThrottled, "ann@example.com"); n != 1 {
		t.Errorf("%d throttled rows, want 1", n)
	}
	// Still logged in: the throttle refuses the change, not the session.
	if res, _ := ta.get(t, c, "/account", false); res.StatusCode != http.StatusOK {
		t.Errorf("after the throttle: /account %d", res.StatusCode)
	}
}
