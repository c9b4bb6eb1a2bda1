package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/smtptest"
)

// TestPasswordResetByMail walks the forgotten-password flow in chromium
// against the real binary and a real SMTP server: the link on the login
// page, the form, the mail, the emailed link, the new password, and the
// link refusing a second use.
func TestPasswordResetByMail(t *testing.T) {
	smtp := smtptest.Start(t)
	s := startServer(t, []string{"GATEHOUSE_SMTP_URL=" + smtp.URL(), "GATEHOUSE_MAIL_FROM=Gatehouse <gatehouse@example.com>"})
	s.cli(t, "users", "create", "ann@example.com", "--name", "Ann")

	b := newBrowser(t)
	tb := b.newTab(t, "ann")
	tb.open(t, s.URL+"/login")
	tb.click(t, `//a[normalize-space(.)="Forgot your password?"]`)
	tb.waitPath(t, "/password/forgot")
	tb.typeInto(t, "#email", "ann@example.com")
	tb.click(t, button("", "Send reset link"))
	tb.waitFor(t, "the answer to the form", `document.body.innerText.includes("If an account uses that address")`, actionTimeout)

	m := smtp.Wait(t, 1, 30*time.Second)[0]
	if m.To[0] != "ann@example.com" || m.Subject != "Reset your Gatehouse password" || m.HTML == "" {
		t.Fatalf("mail: to %v subject %q", m.To, m.Subject)
	}
	link := m.Link("/password/reset?token=")
	if !strings.HasPrefix(link, s.URL+"/password/reset?token=") {
		t.Fatalf("the link %q does not point at the server %s", link, s.URL)
	}
	tb.open(t, link)
	if got := tb.text(t, "h1"); got != "Choose a new password" {
		t.Fatalf("the emailed link opens %q", got)
	}
	const fresh = "a fresh passphrase for ann"
	tb.typeInto(t, "#new", fresh)
	tb.typeInto(t, "#confirm", fresh)
	tb.click(t, button("", "Set new password"))
	tb.waitPath(t, "/login")
	if got := tb.text(t, ".alert"); !strings.Contains(got, "Your password has been changed") {
		t.Errorf("after the reset the login page says %q", got)
	}
	logIn(t, tb, s.URL, "ann@example.com", fresh)
	tb.waitPath(t, "/")

	tb.assertClean(t)

	// Used once, the link is dead (a 404 page, which the browser would log
	// as an error, so it is fetched outside it).
	res, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "Link not valid") {
		t.Errorf("the used link answers %d", res.StatusCode)
	}
}

// TestSignupConfirmationByMail signs up in chromium with mail on: the
// account cannot log in until the emailed link is opened and confirmed,
// and then lands on the start page logged in.
func TestSignupConfirmationByMail(t *testing.T) {
	smtp := smtptest.Start(t)
	s := startServer(t, []string{"GATEHOUSE_SMTP_URL=" + smtp.URL(), "GATEHOUSE_MAIL_FROM=gatehouse@example.com"},
		"--allow-signup", "--signup-group", "Newcomers")
	s.cli(t, "groups", "create", "Newcomers")

	b := newBrowser(t)
	tb := b.newTab(t, "newcomer")
	tb.open(t, s.URL+"/signup")
	const pw = "a newcomer's passphrase"
	tb.typeInto(t, "#email", "new@example.com")
	tb.typeInto(t, "#password", pw)
	tb.typeInto(t, "#confirm", pw)
	tb.click(t, button("", "Create account"))
	tb.waitFor(t, "the check-your-email page", `document.body.innerText.includes("Check your email")`, actionTimeout)

	m := smtp.Wait(t, 1, 30*time.Second)[0]
	link := m.Link("/signup/confirm?token=")
	if m.To[0] != "new@example.com" || link == "" {
		t.Fatalf("confirmation mail to %v: %s", m.To, m.Text)
	}
	if out := s.cli(t, "groups", "members", "Newcomers"); strings.Contains(out, "new@example.com") {
		t.Fatalf("in the sign-up group before confirming:\n%s", out)
	}
	tb.open(t, link)
	tb.click(t, button("", "Confirm and log in"))
	tb.waitPath(t, "/")
	if out := s.cli(t, "groups", "members", "Newcomers"); !strings.Contains(out, "new@example.com") {
		t.Errorf("not in the sign-up group after confirming:\n%s", out)
	}
	tb.assertClean(t)
}
