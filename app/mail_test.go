package app

import (
	"context"
	"io"
	"math"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/app/dashboards"
	"gatehouse/db"
	"gatehouse/db/postgrestest"
	"gatehouse/internal/smtptest"
	"gatehouse/internal/testutil"
)

const testMailFrom = "Gatehouse <gatehouse@example.com>"

// withMail configures an app to send through srv.
func withMail(srv *smtptest.Server) func(*Config, *dashboards.Registry) {
	return func(c *Config, _ *dashboards.Registry) {
		c.SMTPURL, c.MailFrom, c.BaseURL = srv.URL(), testMailFrom, "http://gatehouse.test"
	}
}

// deliver runs the app's outbox worker once, as its goroutine would.
func (ta *testApp) deliver(t testing.TB) {
	t.Helper()
	if ta.mail == nil {
		t.Fatal("mail is not configured")
	}
	ta.mail.Drain(context.Background())
}

// outbox returns the app's outbox, newest first.
func (ta *testApp) outbox(t testing.TB) []db.OutboxMessage {
	t.Helper()
	msgs, err := ta.store.ListMail(context.Background(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// localPath turns an emailed link to the base URL into a path on the test server.
func localPath(t testing.TB, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Host != "gatehouse.test" {
		t.Fatalf("link %q does not point at the base URL", link)
	}
	return u.RequestURI()
}

func TestForgotPasswordResetsByMail(t *testing.T) {
	smtp := smtptest.Start(t)
	ta := newTestApp(t, withMail(smtp))
	ta.createUser(t, "ann@example.com", false)
	elsewhere := ta.login(t, "ann@example.com") // another device, logged in

	c := ta.client()
	res, body := ta.get(t, c, "/login", false)
	if res.StatusCode != 200 || !strings.Contains(body, `href="/password/forgot"`) || !strings.Contains(body, "Forgot your password?") {
		t.Fatalf("login page has no reset link: %d %s", res.StatusCode, body)
	}
	if res, body = ta.get(t, c, "/password/forgot", false); res.StatusCode != 200 || !strings.Contains(body, `name="email"`) {
		t.Fatalf("forgot page: %d %s", res.StatusCode, body)
	}
	res, body = ta.post(t, c, "/password/forgot", url.Values{"email": {" Ann@Example.com "}})
	if res.StatusCode != 200 || !strings.Contains(body, "If an account uses that address") {
		t.Fatalf("forgot: %d %s", res.StatusCode, body)
	}
	if n := len(smtp.Messages()); n != 0 {
		t.Fatalf("the request sent %d messages itself; sending belongs to the outbox worker", n)
	}
	ta.deliver(t)
	msgs := smtp.To("ann@example.com")
	if len(msgs) != 1 {
		t.Fatalf("want 1 message to ann, got %d (all: %d)", len(msgs), len(smtp.Messages()))
	}
	m := msgs[0]
	if m.Subject != "Reset your Gatehouse password" || !strings.Contains(m.Header.Get("From"), "gatehouse@example.com") {
		t.Errorf("subject %q from %q", m.Subject, m.Header.Get("From"))
	}
	link := m.Link("/password/reset?token=")
	if link == "" || !strings.Contains(m.HTML, `href="`+link+`"`) {
		t.Fatalf("no reset link in both parts:\ntext: %s\nhtml: %s", m.Text, m.HTML)
	}
	for _, part := range []string{m.Text, m.HTML} {
		if !strings.Contains(part, "Gatehouse") || !strings.Contains(part, "http://gatehouse.test") || !strings.Contains(part, "30 minutes") {
			t.Errorf("a part lacks the product, the base URL or the validity: %s", part)
		}
	}
	if strings.Contains(m.HTML, "<img") || strings.Contains(m.HTML, "<script") || strings.Count(m.HTML, "http") != strings.Count(m.HTML, "http://gatehouse.test") {
		t.Errorf("the HTML part loads or links something beyond the base URL: %s", m.HTML)
	}
	token := strings.TrimPrefix(link, "http://gatehouse.test/password/reset?token=")
	var stored int
	if err := ta.store.DB.NewRaw("SELECT COUNT(*) FROM mail_tokens WHERE token_hash = ?", token).Scan(context.Background(), &stored); err != nil || stored != 0 {
		t.Errorf("the token is stored in the clear (%d rows, %v)", stored, err)
	}

	path := localPath(t, link)
	if res, body = ta.get(t, c, path, false); res.StatusCode != 200 || !strings.Contains(body, "ann@example.com") || !strings.Contains(body, `name="new"`) {
		t.Fatalf("reset form: %d %s", res.StatusCode, body)
	}
	form := url.Values{"token": {token}, "new": {"short"}, "confirm": {"short"}}
	if res, body = ta.post(t, c, "/password/reset", form); res.StatusCode != 422 || !strings.Contains(body, "12 characters") {
		t.Fatalf("weak password: %d %s", res.StatusCode, body)
	}
	form.Set("new", "a brand new passphrase")
	form.Set("confirm", "a brand new passphrase")
	res, _ = ta.post(t, c, "/password/reset", form)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?reset=1" {
		t.Fatalf("reset: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ = ta.get(t, elsewhere, "/", false); res.StatusCode != http.StatusSeeOther {
		t.Errorf("the other device's session survived the reset: %d", res.StatusCode)
	}
	if res, body = ta.post(t, ta.client(), "/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}}); res.StatusCode != 401 {
		t.Errorf("old password still works: %d", res.StatusCode)
	}
	if res, _ = ta.post(t, ta.client(), "/login", url.Values{"email": {"ann@example.com"}, "password": {"a brand new passphrase"}}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("new password refused: %d", res.StatusCode)
	}
	// Single use: the link is dead now, for opening and for posting.
	if res, body = ta.get(t, c, path, false); res.StatusCode != 404 || !strings.Contains(body, "Link not valid") {
		t.Errorf("used link opens: %d", res.StatusCode)
	}
	form.Set("new", "yet another passphrase!")
	form.Set("confirm", "yet another passphrase!")
	if res, _ = ta.post(t, c, "/password/reset", form); res.StatusCode != 404 {
		t.Errorf("used link resets again: %d", res.StatusCode)
	}
	if ta.countAudit(t, db.ActionPasswordForgot, "ann@example.com") != 1 || ta.countAudit(t, db.ActionPasswordReset, "ann@example.com") != 1 {
		t.Error("request and reset not audited")
	}
}

func TestResetLinkExpiresAfter30Minutes(t *testing.T) {
	smtp := smtptest.Start(t)
	ta := newTestApp(t, withMail(smtp))
	ta.createUser(t, "bob@example.com", false)
	c := ta.client()
	ta.post(t, c, "/password/forgot", url.Values{"email": {"bob@example.com"}})
	ta.deliver(t)
	link := smtp.Wait(t, 1, time.Second)[0].Link("/password/reset?token=")
	path := localPath(t, link)
	ta.Clock.Advance(29 * time.Minute)
	if res, _ := ta.get(t, c, path, false); res.StatusCode != 200 {
		t.Fatalf("link dead before 30 minutes: %d", res.StatusCode)
	}
	ta.Clock.Advance(2 * time.Minute)
	if res, body := ta.get(t, c, path, false); res.StatusCode != 404 || !strings.Contains(body, "expired") {
		t.Errorf("link works after 31 minutes: %d", res.StatusCode)
	}
	token, _ := url.Parse(link)
	res, _ := ta.post(t, c, "/password/reset", url.Values{"token": {token.Query().Get("token")}, "new": {"a brand new passphrase"}, "confirm": {"a brand new passphrase"}})
	if res.StatusCode != 404 {
		t.Errorf("expired link resets: %d", res.StatusCode)
	}
	ta.login(t, "bob@example.com") // the old password still works
}

func TestForgotPasswordSameAnswerForUnknownEmail(t *testing.T) {
	smtp := smtptest.Start(t)
	ta := newTestApp(t, withMail(smtp))
	ta.createUser(t, "known@example.com", false)
	resKnown, bodyKnown := ta.post(t, ta.client(), "/password/forgot", url.Values{"email": {"known@example.com"}})
	resUnknown, bodyUnknown := ta.post(t, ta.client(), "/password/forgot", url.Values{"email": {"nobody@example.com"}})
	if resKnown.StatusCode != 200 || resUnknown.StatusCode != resKnown.StatusCode {
		t.Fatalf("statuses differ: known %d, unknown %d", resKnown.StatusCode, resUnknown.StatusCode)
	}
	if bodyKnown != bodyUnknown {
		t.Fatalf("bodies differ:\nknown:   %s\nunknown: %s", bodyKnown, bodyUnknown)
	}
	for _, h := range []string{"Set-Cookie", "Content-Length", "Content-Type"} {
		if resKnown.Header.Get(h) != resUnknown.Header.Get(h) {
			t.Errorf("header %s differs: %q vs %q", h, resKnown.Header.Get(h), resUnknown.Header.Get(h))
		}
	}
	ta.deliver(t)
	if msgs := smtp.Messages(); len(msgs) != 1 || msgs[0].To[0] != "known@example.com" {
		t.Fatalf("want one message, to the known address: %+v", msgs)
	}
	statuses := map[string]string{}
	for _, m := range ta.outbox(t) {
		statuses[m.To] = m.Status
	}
	if statuses["known@example.com"] != db.MailSent || statuses["nobody@example.com"] != db.MailSkipped {
		t.Errorf("outbox: %v", statuses)
	}
}

func TestForgotPasswordIsThrottled(t *testing.T) {
	smtp := smtptest.Start(t)
	ta := newTestApp(t, withMail(smtp), func(c *Config, _ *dashboards.Registry) { c.ResetPerIP = 7 })
	ta.createUser(t, "cat@example.com", false)
	c := ta.client()
	for _, email := range []string{"cat@example.com", "ghost@example.com"} {
		for i := 0; i < 3; i++ {
			if res, _ := ta.post(t, c, "/password/forgot", url.Values{"email": {email}}); res.StatusCode != 200 {
				t.Fatalf("%s request %d: %d", email, i+1, res.StatusCode)
			}
		}
		// The account limit (3 per window) answers the same for both addresses.
		res, body := ta.post(t, c, "/password/forgot", url.Values{"email": {email}})
		if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many reset requests") {
			t.Errorf("%s 4th request: %d %q", email, res.StatusCode, res.Header.Get("Retry-After"))
		}
	}
	// The IP limit (7) counts every address.
	if res, _ := ta.post(t, c, "/password/forgot", url.Values{"email": {"fresh@example.com"}}); res.StatusCode != 200 {
		t.Errorf("7th request from the IP: %d", res.StatusCode)
	}
	if res, _ := ta.post(t, c, "/password/forgot", url.Values{"email": {"fresh2@example.com"}}); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("IP limit not applied: %d", res.StatusCode)
	}
	if n := ta.countAudit(t, db.ActionPasswordForgotThrottled, ""); n != 3 {
		t.Errorf("throttled requests audited: %d, want 3", n)
	}
	ta.Clock.Advance(16 * time.Minute)
	if res, _ := ta.post(t, c, "/password/forgot", url.Values{"email": {"cat@example.com"}}); res.StatusCode != 200 {
		t.Errorf("still throttled after the window: %d", res.StatusCode)
	}
	ta.deliver(t)
	if n := len(smtp.To("cat@example.com")); n != 4 {
		t.Errorf("cat got %d messages, want 4", n)
	}
}

func TestWithoutMailPagesSayNothingAboutMail(t *testing.T) {
	ta := newTestApp(t, func(c *Config, _ *dashboards.Registry) { c.AllowSignup = true })
	c := ta.client()
	_, body := ta.get(t, c, "/login", false)
	if strings.Contains(body, "Forgot") || strings.Contains(body, "/password/") {
		t.Errorf("login page mentions resets without mail: %s", body)
	}
	for _, p := range []string{"/password/forgot"} {
		if res, _ := ta.get(t, c, p, false); res.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, res.StatusCode)
		}
	}
	if res, _ := ta.post(t, c, "/password/forgot", url.Values{"email": {"a@example.com"}}); res.StatusCode != 404 {
		t.Errorf("POST /password/forgot: %d, want 404", res.StatusCode)
	}
	if res, _ := ta.get(t, c, "/password/reset?token=x", false); res.StatusCode != 404 {
		t.Errorf("reset link: %d", res.StatusCode)
	}
	// Sign-up logs in at once, as before.
	res, _ := ta.post(t, c, "/signup", url.Values{"email": {"new@example.com"}, "password": {testPassword}, "confirm": {testPassword}})
	if res.StatusCode != http.StatusSeeOther || ta.sessionCookie(c) == "" {
		t.Errorf("sign-up without mail: %d", res.StatusCode)
	}
	if ta.store.MailEnabled || len(ta.outbox(t)) != 0 {
		t.Error("something was queued without mail")
	}
}

func TestSignupWorksOnlyAfterConfirmingEmail(t *testing.T) {
	smtp := smtptest.Start(t)
	ta := newTestApp(t, withMail(smtp), func(c *Config, _ *dashboards.Registry) {
		c.AllowSignup, c.SignupGroup = true, "Newcomers"
	})
	ctx := context.Background()
	g, err := ta.store.CreateGroup(ctx, db.Actor{}, "Newcomers", "")
	if err != nil {
		t.Fatal(err)
	}
	c := ta.client()
	res, body := ta.post(t, c, "/signup", url.Values{"email": {"dee@example.com"}, "name": {"Dee"}, "password": {testPassword}, "confirm": {testPassword}})
	if res.StatusCode != 200 || !strings.Contains(body, "Check your email") || ta.sessionCookie(c) != "" {
		t.Fatalf("sign-up: %d cookie=%q %s", res.StatusCode, ta.sessionCookie(c), body)
	}
	u, err := ta.store.UserByEmail(ctx, "dee@example.com")
	if err != nil || !u.EmailPending {
		t.Fatalf("user: %+v %v", u, err)
	}
	if _, err := ta.store.MemberOf(ctx, g.ID, u.ID); err == nil {
		t.Error("joined the sign-up group before confirming")
	}
	ta.createUser(t, "root@example.com", true)
	if _, body := ta.get(t, ta.login(t, "root@example.com"), "/admin/users?q=dee", false); !strings.Contains(body, "email not confirmed") {
		t.Errorf("the users page does not say the sign-up is unconfirmed: %s", body)
	}
	// The right password does not log in yet; after 10 minutes it sends a new link.
	res, body = ta.post(t, c, "/login", url.Values{"email": {"dee@example.com"}, "password": {testPassword}})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "Confirm your email address first") || ta.sessionCookie(c) != "" {
		t.Fatalf("login before confirming: %d %s", res.StatusCode, body)
	}
	if strings.Contains(body, "sent a new one") {
		t.Error("a new link within 10 minutes of the first")
	}
	ta.Clock.Advance(11 * time.Minute)
	if _, body = ta.post(t, c, "/login", url.Values{"email": {"dee@example.com"}, "password": {testPassword}}); !strings.Contains(body, "sent a new one") {
		t.Errorf("no new link after 10 minutes: %s", body)
	}
	if res, _ = ta.post(t, c, "/login", url.Values{"email": {"dee@example.com"}, "password": {"wrong password here"}}); res.StatusCode != 401 {
		t.Errorf("wrong password of a pending account: %d, want 401", res.StatusCode)
	}
	ta.deliver(t)
	msgs := smtp.To("dee@example.com")
	if len(msgs) != 2 {
		t.Fatalf("want the sign-up mail and one resend, got %d", len(msgs))
	}
	link := msgs[0].Link("/signup/confirm?token=")
	if link == "" || msgs[0].Subject != "Confirm your email for Gatehouse" {
		t.Fatalf("confirmation mail: %q %s", msgs[0].Subject, msgs[0].Text)
	}
	path := localPath(t, link)
	if res, body = ta.get(t, c, path, false); res.StatusCode != 200 || !strings.Contains(body, "dee@example.com") {
		t.Fatalf("confirm page: %d %s", res.StatusCode, body)
	}
	if u, _ := ta.store.UserByEmail(ctx, "dee@example.com"); !u.EmailPending {
		t.Fatal("opening the page (GET) confirmed the address")
	}
	token := strings.TrimPrefix(link, "http://gatehouse.test/signup/confirm?token=")
	res, _ = ta.post(t, c, "/signup/confirm", url.Values{"token": {token}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" || ta.sessionCookie(c) == "" {
		t.Fatalf("confirm: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ = ta.get(t, c, "/", false); res.StatusCode != 200 {
		t.Errorf("home after confirming: %d", res.StatusCode)
	}
	if _, err := ta.store.MemberOf(ctx, g.ID, u.ID); err != nil {
		t.Error("not in the sign-up group after confirming")
	}
	if ta.countAudit(t, db.ActionEmailConfirm, "dee@example.com") != 1 {
		t.Error("confirmation not audited")
	}
	// Either link is spent now; the account logs in normally.
	for _, m := range msgs {
		if res, _ := ta.post(t, ta.client(), "/signup/confirm", url.Values{"token": {strings.TrimPrefix(m.Link("/signup/confirm"), "http://gatehouse.test/signup/confirm?token=")}}); res.StatusCode != 404 {
			t.Errorf("used confirmation link: %d", res.StatusCode)
		}
	}
	ta.login(t, "dee@example.com")
}

func TestAccessRequestsNotifyAdminsAndRequester(t *testing.T) {
	smtp := smtptest.Start(t)
	ta := newTestApp(t, withMail(smtp))
	ctx := context.Background()
	ta.createUser(t, "boss@example.com", true)
	ta.createUser(t, "second@example.com", true)
	gone := ta.createUser(t, "gone@example.com", true)
	if err := ta.store.SetActive(ctx, db.Actor{}, gone.ID, false); err != nil {
		t.Fatal(err)
	}
	g, _ := ta.store.CreateGroup(ctx, db.Actor{}, "Sales", "")
	d := ta.registry.All()[0]
	if err := ta.store.AddGrant(ctx, db.Actor{}, d.Slug, g.ID); err != nil {
		t.Fatal(err)
	}
	// A manager of a group granted the dashboard can decide the request; a
	// manager of another group cannot.
	mgr := ta.createUser(t, "mgr@example.com", false)
	if err := ta.store.AddManager(ctx, db.Actor{}, g.ID, mgr.ID); err != nil {
		t.Fatal(err)
	}
	other, _ := ta.store.CreateGroup(ctx, db.Actor{}, "Other", "")
	bystander := ta.createUser(t, "bystander@example.com", false)
	if err := ta.store.AddManager(ctx, db.Actor{}, other.ID, bystander.ID); err != nil {
		t.Fatal(err)
	}
	ta.createUser(t, "eve@example.com", false)
	eve := ta.login(t, "eve@example.com")
	res, _ := ta.post(t, eve, "/dashboards/"+d.Slug+"/request", url.Values{"message": {"Need it for <the> Q4 review"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("request: %d", res.StatusCode)
	}
	ta.deliver(t)
	msgs := smtp.Messages()
	if len(msgs) != 3 || len(smtp.To("boss@example.com")) != 1 || len(smtp.To("second@example.com")) != 1 || len(smtp.To("mgr@example.com")) != 1 {
		t.Fatalf("want one notice to each active admin and the group's manager, got %d", len(msgs))
	}
	m := msgs[0]
	if !strings.Contains(m.Subject, "eve") || !strings.Contains(m.Subject, d.Title) ||
		m.Link("/admin/requests") != "http://gatehouse.test/admin/requests" ||
		!strings.Contains(m.Text, "Need it for <the> Q4 review") || !strings.Contains(m.HTML, "Need it for &lt;the&gt; Q4 review") {
		t.Errorf("notice: %q\n%s\n%s", m.Subject, m.Text, m.HTML)
	}
	reqs, _, _ := ta.store.ListAccessRequests(ctx, db.RequestPending, 10, 0)
	boss := ta.login(t, "boss@example.com")
	res, _ = ta.post(t, boss, "/admin/requests/"+itoa(reqs[0].ID), url.Values{"decision": {"approve"}, "group_id": {itoa(g.ID)}, "note": {"Welcome aboard"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("approve: %d", res.StatusCode)
	}
	ta.deliver(t)
	got := smtp.To("eve@example.com")
	if len(got) != 1 || !strings.Contains(got[0].Subject, "approved") || !strings.Contains(got[0].Text, "Sales") ||
		!strings.Contains(got[0].Text, "Welcome aboard") || got[0].Link("/dashboards/"+d.Slug) == "" {
		t.Fatalf("decision mail: %+v", got)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestMailSurvivesSMTPOutageAndRestart(t *testing.T) {
	addr := testutil.FreeAddr(t)
	dsn := ""
	down := func(c *Config, _ *dashboards.Registry) {
		c.SMTPURL, c.MailFrom, c.BaseURL = "smtp://"+addr, testMailFrom, "http://gatehouse.test"
	}
	ta := newTestApp(t, down, func(c *Config, _ *dashboards.Registry) {
		dsn = c.DSN // PostgreSQL under GATEHOUSE_TEST_APP_DB=postgres
		if dsn == "" {
			dsn = c.DataDir + "/gatehouse.db"
		}
	})
	ta.createUser(t, "fay@example.com", false)
	res, body := ta.post(t, ta.client(), "/password/forgot", url.Values{"email": {"fay@example.com"}})
	if res.StatusCode != 200 || !strings.Contains(body, "If an account uses that address") {
		t.Fatalf("with the SMTP server down the user sees: %d %s", res.StatusCode, body)
	}
	ta.deliver(t)
	msgs := ta.outbox(t)
	if len(msgs) != 1 || msgs[0].Status != db.MailPending || msgs[0].Attempts != 1 || msgs[0].LastError == "" {
		t.Fatalf("after a failed send: %+v", msgs)
	}
	if !strings.Contains(ta.Logs.String(), "will be retried") {
		t.Errorf("the failure was not logged: %s", ta.Logs.String())
	}
	ta.Clock.Advance(40 * time.Second)
	ta.deliver(t) // still down: the second attempt fails and waits longer
	if m := ta.outbox(t)[0]; m.Attempts != 2 || m.NextAttemptAt-ta.Clock.Now().UnixMilli() < (50*time.Second).Milliseconds() {
		t.Fatalf("no backoff: %+v", m)
	}

	// The server restarts (a new App on the same database) and the SMTP
	// server comes back: the queued message goes out, once.
	ta.Server.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the reserved port was taken meanwhile: %v", err)
	}
	smtp := smtptest.StartOn(t, ln)
	tb := newTestAppOn(t, dsn, down)
	tb.Clock.Advance(5 * time.Minute)
	tb.deliver(t)
	tb.deliver(t)
	if got := smtp.To("fay@example.com"); len(got) != 1 || got[0].Link("/password/reset?token=") == "" {
		t.Fatalf("after recovery: %d messages", len(got))
	}
	if m := tb.outbox(t)[0]; m.Status != db.MailSent || m.Attempts != 3 {
		t.Errorf("outbox after recovery: %+v", m)
	}
}

func TestMailRefusedRecipientIsNotRetried(t *testing.T) {
	smtp := smtptest.Start(t)
	ta := newTestApp(t, withMail(smtp))
	ta.createUser(t, "gil@example.com", false)
	smtp.RejectRecipients(550)
	ta.post(t, ta.client(), "/password/forgot", url.Values{"email": {"gil@example.com"}})
	ta.deliver(t)
	if m := ta.outbox(t)[0]; m.Status != db.MailFailed || !strings.Contains(m.LastError, "550") {
		t.Errorf("refused recipient: %+v", m)
	}
	if ta.countAudit(t, db.ActionMailFailed, "gil@example.com") != 1 {
		t.Error("failure not audited")
	}
}

// TestMailSentOnceByTwoInstances runs two servers' workers on one database
// at once: every message arrives exactly once.
func TestMailSentOnceByTwoInstances(t *testing.T) {
	for _, dialect := range []string{db.SQLite, db.Postgres} {
		t.Run(dialect, func(t *testing.T) {
			smtp := smtptest.Start(t)
			dsn := ""
			if dialect == db.Postgres {
				dsn = postgrestest.Schema(t)
			} else {
				dsn = t.TempDir() + "/shared.db"
			}
			a1 := newTestAppOn(t, dsn, withMail(smtp))
			a2 := newTestAppOn(t, dsn, withMail(smtp))
			const n = 40
			ctx := context.Background()
			for i := range n {
				email := "user" + strconv.Itoa(i) + "@example.com"
				a1.createUser(t, email, false)
				if err := a1.store.RequestPasswordReset(ctx, db.Actor{}, email); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for _, ta := range []*testApp{a1, a2, a1, a2} {
				wg.Add(1)
				go func() { defer wg.Done(); ta.mail.Drain(ctx) }()
			}
			wg.Wait()
			msgs := smtp.Messages()
			seen := map[string]int{}
			for _, m := range msgs {
				seen[m.To[0]]++
			}
			if len(msgs) != n || len(seen) != n {
				t.Fatalf("%d messages to %d addresses; want %d each once", len(msgs), len(seen), n)
			}
			for _, m := range a2.outbox(t) {
				if m.Status != db.MailSent || m.Attempts != 1 {
					t.Errorf("outbox row %+v", m)
				}
			}
		})
	}
}

// TestForgotPasswordTimingSameForUnknownEmail compares, statistically, how
// long the forgot-password form takes to answer for an address with an
// account and one without. Samples are interleaved (in random order within
// each pair, so drift and background load hit both alike) and compared by
// rank (Mann-Whitney U): the test fails only when the two are different
// beyond any doubt (|z| > 4) and by a material amount (medians more than
// 15% apart). A handler that looked the account up and did more work for
// it (or less for no account) fails it by far.
func TestForgotPasswordTimingSameForUnknownEmail(t *testing.T) {
	if testing.Short() {
		t.Skip("timing samples take a few seconds")
	}
	smtp := smtptest.Start(t)
	ta := newTestApp(t, withMail(smtp), func(c *Config, _ *dashboards.Registry) {
		c.ResetPerAccount, c.ResetPerIP = 1<<30, 1<<30
	})
	// Same length, so that no byte count differs.
	const known, unknown = "known-user@example.com", "other-user@example.com"
	ta.createUser(t, known, false)
	c := ta.client()
	sample := func(email string) time.Duration {
		body := url.Values{"email": {email}}.Encode()
		req, err := http.NewRequest(http.MethodPost, ta.Server.URL+"/password/forgot", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		start := time.Now()
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		d := time.Since(start)
		if res.StatusCode != 200 {
			t.Fatalf("%s: status %d", email, res.StatusCode)
		}
		return d
	}
	for range 20 { // warm up connections, caches and the SQLite page cache
		sample(known)
		sample(unknown)
	}
	const n = 200
	var a, b []float64
	for i := range n {
		if i%2 == 0 == (mathrand.IntN(2) == 0) {
			a = append(a, float64(sample(known)))
			b = append(b, float64(sample(unknown)))
		} else {
			b = append(b, float64(sample(unknown)))
			a = append(a, float64(sample(known)))
		}
	}
	z := mannWhitneyZ(a, b)
	ma, mb := medianOf(a), medianOf(b)
	diff := math.Abs(ma-mb) / math.Min(ma, mb)
	t.Logf("median known %v, unknown %v (%.1f%% apart), Mann-Whitney z = %.2f over %d samples each",
		time.Duration(ma), time.Duration(mb), diff*100, z, n)
	if math.Abs(z) > 4 && diff > 0.15 {
		t.Errorf("the answer's timing tells existing accounts apart: medians %v vs %v, z = %.1f",
			time.Duration(ma), time.Duration(mb), z)
	}
	// The worker, not the request, tells them apart: one mail, to the account.
	ta.deliver(t)
	for _, m := range smtp.Messages() {
		if m.To[0] != known {
			t.Fatalf("mail to %s", m.To[0])
		}
	}
}

// mannWhitneyZ is the normal approximation of the Mann-Whitney U statistic
// of a against b (ties get their average rank).
func mannWhitneyZ(a, b []float64) float64 {
	type v struct {
		x     float64
		fromA bool
	}
	all := make([]v, 0, len(a)+len(b))
	for _, x := range a {
		all = append(all, v{x, true})
	}
	for _, x := range b {
		all = append(all, v{x, false})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].x < all[j].x })
	var rankA float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].x == all[i].x {
			j++
		}
		rank := float64(i+j+1) / 2 // ranks i+1..j, averaged
		for k := i; k < j; k++ {
			if all[k].fromA {
				rankA += rank
			}
		}
		i = j
	}
	n1, n2 := float64(len(a)), float64(len(b))
	u := rankA - n1*(n1+1)/2
	return (u - n1*n2/2) / math.Sqrt(n1*n2*(n1+n2+1)/12)
}

func medianOf(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// TestResetTakesOverAnUnconfirmedSignup: someone signs up with another
// person's address (they cannot confirm it). The owner of the address asks
// for a reset: the link sets the owner's password and confirms the
// account; the squatter's password no longer works.
func TestResetTakesOverAnUnconfirmedSignup(t *testing.T) {
	smtp := smtptest.Start(t)
	ta := newTestApp(t, withMail(smtp), func(c *Config, _ *dashboards.Registry) {
		c.AllowSignup, c.SignupGroup = true, "Newcomers"
	})
	ctx := context.Background()
	g, _ := ta.store.CreateGroup(ctx, db.Actor{}, "Newcomers", "")
	const squatter = "the squatter's password"
	res, _ := ta.post(t, ta.client(), "/signup", url.Values{"email": {"cfo@example.com"}, "password": {squatter}, "confirm": {squatter}})
	if res.StatusCode != 200 {
		t.Fatalf("sign-up: %d", res.StatusCode)
	}
	ta.post(t, ta.client(), "/password/forgot", url.Values{"email": {"cfo@example.com"}})
	ta.deliver(t)
	var link string
	for _, m := range smtp.To("cfo@example.com") {
		if link == "" {
			link = m.Link("/password/reset?token=")
		}
	}
	if link == "" {
		t.Fatal("no reset link for the unconfirmed account")
	}
	token := strings.TrimPrefix(link, "http://gatehouse.test/password/reset?token=")
	res, _ = ta.post(t, ta.client(), "/password/reset", url.Values{"token": {token}, "new": {"the owner's own password"}, "confirm": {"the owner's own password"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("reset: %d", res.StatusCode)
	}
	u, _ := ta.store.UserByEmail(ctx, "cfo@example.com")
	if u.EmailPending {
		t.Error("the reset link did not confirm the address")
	}
	if _, err := ta.store.MemberOf(ctx, g.ID, u.ID); err != nil {
		t.Error("not in the sign-up group after the reset confirmed the address")
	}
	if res, _ := ta.post(t, ta.client(), "/login", url.Values{"email": {"cfo@example.com"}, "password": {squatter}}); res.StatusCode != 401 {
		t.Errorf("the squatter's password: %d", res.StatusCode)
	}
	if res, _ := ta.post(t, ta.client(), "/login", url.Values{"email": {"cfo@example.com"}, "password": {"the owner's own password"}}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("the owner's password: %d", res.StatusCode)
	}
	// The sign-up's own confirmation link is void now.
	for _, m := range smtp.To("cfo@example.com") {
		if l := m.Link("/signup/confirm?token="); l != "" {
			if res, _ := ta.get(t, ta.client(), localPath(t, l), false); res.StatusCode != 404 {
				t.Errorf("the sign-up's confirmation link still opens: %d", res.StatusCode)
			}
		}
	}
}

// With password sign-in kept for admins (--password-login=false beside
// SSO), a reset link would be useless to anyone else: none is sent.
func TestNoResetMailWherePasswordsAreForAdminsOnly(t *testing.T) {
	smtp := smtptest.Start(t)
	ta := newTestApp(t, withMail(smtp), func(c *Config, _ *dashboards.Registry) { c.PasswordLogin = false })
	ta.createUser(t, "viewer@example.com", false)
	ta.createUser(t, "boss@example.com", true)
	for _, email := range []string{"viewer@example.com", "boss@example.com"} {
		if res, _ := ta.post(t, ta.client(), "/password/forgot", url.Values{"email": {email}}); res.StatusCode != 200 {
			t.Fatalf("%s: %d", email, res.StatusCode)
		}
	}
	ta.deliver(t)
	if len(smtp.To("viewer@example.com")) != 0 || len(smtp.To("boss@example.com")) != 1 {
		t.Errorf("viewer got %d, admin %d messages; want 0 and 1", len(smtp.To("viewer@example.com")), len(smtp.To("boss@example.com")))
	}
}

// TestActivateConfirmsAnUnconfirmedSignup: `users activate` is the admin's
// way to let in a sign-up whose mail never arrived.
func TestActivateConfirmsAnUnconfirmedSignup(t *testing.T) {
	smtp := smtptest.Start(t)
	ta := newTestApp(t, withMail(smtp), func(c *Config, _ *dashboards.Registry) { c.AllowSignup = true })
	ta.post(t, ta.client(), "/signup", url.Values{"email": {"hal@example.com"}, "password": {testPassword}, "confirm": {testPassword}})
	if res, _ := ta.post(t, ta.client(), "/login", url.Values{"email": {"hal@example.com"}, "password": {testPassword}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("unconfirmed login: %d", res.StatusCode)
	}
	u, _ := ta.store.UserByEmail(context.Background(), "hal@example.com")
	if err := ta.store.SetActive(context.Background(), db.Actor{Email: "cli"}, u.ID, true); err != nil {
		t.Fatal(err)
	}
	ta.login(t, "hal@example.com")
	if ta.countAudit(t, db.ActionUserActivate, "hal@example.com") != 1 {
		t.Error("not audited")
	}
}

// TestConfirmingWithRequiredMFAGoesToEnrolment: the confirmation link logs
// in as a password would, so --require-mfa all sends the new account to set
// up a second factor before anything else.
func TestConfirmingWithRequiredMFAGoesToEnrolment(t *testing.T) {
	smtp := smtptest.Start(t)
	ta := newTestApp(t, withMail(smtp), func(c *Config, _ *dashboards.Registry) { c.AllowSignup, c.RequireMFA = true, "all" })
	c := ta.client()
	ta.post(t, c, "/signup", url.Values{"email": {"ivy@example.com"}, "password": {testPassword}, "confirm": {testPassword}})
	ta.deliver(t)
	link := smtp.Wait(t, 1, time.Second)[0].Link("/signup/confirm?token=")
	res, _ := ta.post(t, c, "/signup/confirm", url.Values{"token": {strings.TrimPrefix(link, "http://gatehouse.test/signup/confirm?token=")}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account/security" {
		t.Fatalf("confirm with MFA required: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ := ta.get(t, c, "/", false); res.StatusCode != http.StatusSeeOther {
		t.Errorf("the start page before enrolling: %d", res.StatusCode)
	}
}

// TestMailMetrics: the worker's outcomes and the reset throttle show in
// /metrics, with fixed labels only.
func TestMailMetrics(t *testing.T) {
	smtp := smtptest.Start(t)
	ta := newTestApp(t, withMail(smtp), func(c *Config, _ *dashboards.Registry) {
		c.MetricsAddr, c.ResetPerAccount = "127.0.0.1:0", 1
	})
	ta.createUser(t, "jo@example.com", false)
	c := ta.client()
	for _, email := range []string{"jo@example.com", "nobody@example.com", "jo@example.com"} {
		ta.post(t, c, "/password/forgot", url.Values{"email": {email}})
	}
	ta.deliver(t)
	body := scrape(t, ta.App)
	for _, want := range []string{
		`gatehouse_mail_messages_total{kind="password.reset",result="sent"} 1`,
		`gatehouse_mail_messages_total{kind="password.reset",result="skipped"} 1`,
		`gatehouse_throttled_requests_total{what="password_reset"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "jo@example.com") || strings.Contains(body, "nobody@") {
		t.Error("metrics carry an address")
	}
}

// TestSignupWithAnExistingAddressLooksLikeANewOne: with mail on, sign-up
// cannot tell which addresses have accounts; the owner is told by mail (at
// most once an hour) instead.
func TestSignupWithAnExistingAddressLooksLikeANewOne(t *testing.T) {
	smtp := smtptest.Start(t)
	ta := newTestApp(t, withMail(smtp), func(c *Config, _ *dashboards.Registry) { c.AllowSignup = true })
	ta.createUser(t, "taken@example.com", false)
	signup := func(email string) (*http.Response, string) {
		return ta.post(t, ta.client(), "/signup", url.Values{"email": {email}, "password": {testPassword}, "confirm": {testPassword}})
	}
	resTaken, bodyTaken := signup("taken@example.com")
	resFresh, bodyFresh := signup("fresh@example.com")
	if resTaken.StatusCode != 200 || resTaken.StatusCode != resFresh.StatusCode ||
		strings.ReplaceAll(bodyTaken, "taken@", "fresh@") != bodyFresh {
		t.Fatalf("answers differ: %d vs %d\n%s\n%s", resTaken.StatusCode, resFresh.StatusCode, bodyTaken, bodyFresh)
	}
	signup("taken@example.com") // a second try within the hour: no second mail
	ta.deliver(t)
	got := smtp.To("taken@example.com")
	if len(got) != 1 || got[0].Subject != "You already have a Gatehouse account" || got[0].Link("/password/forgot") == "" {
		t.Fatalf("owner's mail: %+v", got)
	}
	if len(smtp.To("fresh@example.com")) != 1 {
		t.Error("the new address got no confirmation")
	}
	if ta.countAudit(t, db.ActionSignupExisting, "taken@example.com") != 2 {
		t.Error("attempts not audited")
	}
	if u, _ := ta.store.UserByEmail(context.Background(), "taken@example.com"); u.EmailPending {
		t.Error("the existing account was touched")
	}
}

// TestManagersOwnRequestIsNotMailedToThem: a manager who asks for a
// dashboard granted to their group is not sent the notice to decide it
// (they cannot); the admins are.
func TestManagersOwnRequestIsNotMailedToThem(t *testing.T) {
	smtp := smtptest.Start(t)
	ta := newTestApp(t, withMail(smtp))
	ctx := context.Background()
	ta.createUser(t, "boss@example.com", true)
	g, _ := ta.store.CreateGroup(ctx, db.Actor{}, "Sales", "")
	d := ta.registry.All()[0]
	if err := ta.store.AddGrant(ctx, db.Actor{}, d.Slug, g.ID); err != nil {
		t.Fatal(err)
	}
	mgr := ta.createUser(t, "mgr@example.com", false)
	if err := ta.store.AddManager(ctx, db.Actor{}, g.ID, mgr.ID); err != nil {
		t.Fatal(err)
	}
	res, _ := ta.post(t, ta.login(t, mgr.Email), "/dashboards/"+d.Slug+"/request", url.Values{"message": {"me too"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("request: %d", res.StatusCode)
	}
	ta.deliver(t)
	if len(smtp.To("boss@example.com")) != 1 || len(smtp.To("mgr@example.com")) != 0 {
		t.Errorf("notices: %d to the admin, %d to the requesting manager; want 1 and 0",
			len(smtp.To("boss@example.com")), len(smtp.To("mgr@example.com")))
	}
}
