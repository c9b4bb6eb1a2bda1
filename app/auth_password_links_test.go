package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/app/dashboards"
	"gatehouse/db"
	"gatehouse/internal/smtptest"
)

// resetLink asks for a password reset of email, delivers the outbox and
// returns the newest reset link mailed to email.
func (ta *testApp) resetLink(t *testing.T, smtp *smtptest.Server, email string) string {
	t.Helper()
	before := len(smtp.To(email))
	if res, _ := ta.post(t, ta.client(), "/password/forgot", url.Values{"email": {email}}); res.StatusCode != http.StatusOK {
		t.Fatalf("forgot: %d", res.StatusCode)
	}
	ta.deliver(t)
	msgs := smtp.To(email)
	if len(msgs) != before+1 {
		t.Fatalf("%d new messages to %s, want 1", len(msgs)-before, email)
	}
	link := msgs[len(msgs)-1].Link("/password/reset?token=")
	if link == "" {
		t.Fatalf("no reset link in %s", msgs[len(msgs)-1].Text)
	}
	return link
}

// resetWith posts a new password through an emailed reset link.
func (ta *testApp) resetWith(t *testing.T, link, password string) *http.Response {
	t.Helper()
	token := strings.TrimPrefix(link, "http://gatehouse.test/password/reset?token=")
	res, _ := ta.post(t, ta.client(), "/password/reset", url.Values{"token": {token}, "new": {password}, "confirm": {password}})
	return res
}

// TestDeactivationEndsEmailedLinks: a reset link issued before a
// deactivation does not work after the reactivation, nor does a reset
// asked for before it and still waiting in the outbox.
func TestDeactivationEndsEmailedLinks(t *testing.T) {
	smtp := smtptest.Start(t)
	ta := newTestApp(t, withMail(smtp))
	ctx := context.Background()
	ann := ta.createUser(t, "ann@example.com", false)
	link := ta.resetLink(t, smtp, "ann@example.com")
	// A second request, not sent yet (the mail server was slow, say).
	if res, _ := ta.post(t, ta.client(), "/password/forgot", url.Values{"email": {"ann@example.com"}}); res.StatusCode != http.StatusOK {
		t.Fatalf("forgot: %d", res.StatusCode)
	}
	for _, active := range []bool{false, true} {
		if err := ta.store.SetActive(ctx, db.Actor{Email: "admin@example.com"}, ann.ID, active); err != nil {
			t.Fatal(err)
		}
	}
	if res, body := ta.get(t, ta.client(), localPath(t, link), false); res.StatusCode != http.StatusNotFound || !strings.Contains(body, "Link not valid") {
		t.Errorf("the reset link from before the deactivation opens: %d", res.StatusCode)
	}
	if res := ta.resetWith(t, link, "the reset after reactivation"); res.StatusCode != http.StatusNotFound {
		t.Errorf("the reset link from before the deactivation resets: %d", res.StatusCode)
	}
	ta.deliver(t)
	if n := len(smtp.To("ann@example.com")); n != 1 {
		t.Errorf("%d messages to ann, want the first alone: the reset asked for before the deactivation was sent after it", n)
	}
	ta.login(t, "ann@example.com") // the password is unchanged
	// A reset asked for after the reactivation works.
	ta.Clock.Advance(20 * time.Minute)
	if res := ta.resetWith(t, ta.resetLink(t, smtp, "ann@example.com"), "the reset after reactivation"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("a new reset link after the reactivation: %d", res.StatusCode)
	}
}

// TestSecondResetLinkDiesWhenTheFirstIsUsed: of two reset links, using one
// ends the other.
func TestSecondResetLinkDiesWhenTheFirstIsUsed(t *testing.T) {
	smtp := smtptest.Start(t)
	ta := newTestApp(t, withMail(smtp))
	ta.createUser(t, "bea@example.com", false)
	first := ta.resetLink(t, smtp, "bea@example.com")
	second := ta.resetLink(t, smtp, "bea@example.com")
	if res := ta.resetWith(t, first, "the first new passphrase"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("the first link: %d", res.StatusCode)
	}
	if res, _ := ta.get(t, ta.client(), localPath(t, second), false); res.StatusCode != http.StatusNotFound {
		t.Errorf("the second link opens after the first was used: %d", res.StatusCode)
	}
	if res := ta.resetWith(t, second, "the second new passphrase"); res.StatusCode != http.StatusNotFound {
		t.Errorf("the second link resets after the first was used: %d", res.StatusCode)
	}
	if res, _ := ta.post(t, ta.client(), "/login", url.Values{"email": {"bea@example.com"}, "password": {"the first new passphrase"}}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("the password set by the first link: %d", res.StatusCode)
	}
}

// TestUnconfirmedManagerIsNotMailedAboutRequests: an unconfirmed sign-up
// made manager of a group is not told of access requests (its address is
// whoever typed it); once confirmed, it is.
func TestUnconfirmedManagerIsNotMailedAboutRequests(t *testing.T) {
	smtp := smtptest.Start(t)
	ta := newTestApp(t, withMail(smtp), func(c *Config, _ *dashboards.Registry) { c.AllowSignup = true })
	ctx := context.Background()
	ta.createUser(t, "boss@example.com", true)
	g, _ := ta.store.CreateGroup(ctx, db.Actor{}, "Sales", "")
	d := ta.registry.All()[0]
	if err := ta.store.AddGrant(ctx, db.Actor{}, d.Slug, g.ID); err != nil {
		t.Fatal(err)
	}
	if res, _ := ta.post(t, ta.client(), "/signup", url.Values{"email": {"pat@example.com"}, "password": {testPassword}, "confirm": {testPassword}}); res.StatusCode != http.StatusOK {
		t.Fatalf("sign-up: %d", res.StatusCode)
	}
	pat, _ := ta.store.UserByEmail(ctx, "pat@example.com")
	if err := ta.store.AddManager(ctx, db.Actor{}, g.ID, pat.ID); err != nil {
		t.Fatal(err)
	}
	ta.deliver(t)
	confirm := smtp.To("pat@example.com")
	requestFrom := func(email string) {
		t.Helper()
		ta.createUser(t, email, false)
		if res, _ := ta.post(t, ta.login(t, email), "/dashboards/"+d.Slug+"/request", url.Values{"message": {"please"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("request: %d", res.StatusCode)
		}
		ta.deliver(t)
	}
	requestFrom("eve@example.com")
	if n := len(smtp.To("boss@example.com")); n != 1 {
		t.Fatalf("%d notices to the admin, want 1", n)
	}
	if got := smtp.To("pat@example.com"); len(got) != len(confirm) {
		t.Errorf("the unconfirmed manager was mailed about the request: %q", got[len(got)-1].Subject)
	}
	// Confirmed, the same manager is told of the next request.
	if err := ta.store.SetActive(ctx, db.Actor{Email: "cli"}, pat.ID, true); err != nil {
		t.Fatal(err)
	}
	requestFrom("fay@example.com")
	if got := smtp.To("pat@example.com"); len(got) != len(confirm)+1 || !strings.Contains(got[len(got)-1].Subject, "fay") {
		t.Errorf("the confirmed manager got %d new messages, want the notice of fay's request", len(got)-len(confirm))
	}
}
