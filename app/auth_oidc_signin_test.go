package app

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/app/dashboards"
	"gatehouse/db"
	"gatehouse/internal/smtptest"
)

// TestSSOFirstSignInWithoutGroupSync: with --oidc-groups-claim "" (IdPs
// without groups, such as Google Workspace) a first sign-in works, for a
// new person of an allowed domain and for an existing account alike, and so
// does the next one.
func TestSSOFirstSignInWithoutGroupSync(t *testing.T) {
	e := newSSOApp(t, func(c *Config, _ *dashboards.Registry) { c.OIDCGroupsClaim = "" })
	ctx := context.Background()
	e.group(t, "Alpha", "a")
	e.addIdPUser("nia", "nia@example.com", "a")
	e.createUser(t, "old@corp.example.org", false)
	e.addIdPUser("old", "old@corp.example.org", "a")

	for _, tc := range []struct{ username, email string }{{"nia", "nia@example.com"}, {"old", "old@corp.example.org"}} {
		for _, round := range []string{"first", "second"} {
			c, res, body := e.signIn(t, tc.username, "/")
			if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
				t.Fatalf("%s sign-in of %s: status %d to %q, want 303 to /: %s", round, tc.email, res.StatusCode, res.Header.Get("Location"), body)
			}
			if res, body := e.get(t, c, "/account", false); res.StatusCode != http.StatusOK || !strings.Contains(body, tc.email) {
				t.Errorf("%s sign-in of %s: the account page answered %d", round, tc.email, res.StatusCode)
			}
		}
		u, err := e.store.UserByEmail(ctx, tc.email)
		if err != nil {
			t.Fatal(err)
		}
		if ids, err := e.store.IdentitiesOf(ctx, u.ID); err != nil || len(ids) != 1 || ids[0].Subject != tc.username {
			t.Errorf("identities of %s: %+v %v", tc.email, ids, err)
		}
		if got := e.groupsOf(t, tc.email); len(got) != 0 {
			t.Errorf("%s is in %v although group sync is off", tc.email, got)
		}
	}
	if n := e.countUsers(t); n != 2 {
		t.Errorf("%d users, want the new person and the existing account", n)
	}
	if strings.Contains(e.Logs.String(), "request failed") {
		t.Errorf("a sign-in failed on the server:\n%s", e.Logs.String())
	}
}

// TestSSOEmailVerifiedAsTheStringTrue: some IdPs send email_verified as the
// string "true"; that (and only that, see the faults test) counts.
func TestSSOEmailVerifiedAsTheStringTrue(t *testing.T) {
	e := newSSOApp(t)
	e.addIdPUser("tia", "tia@example.com")
	e.idp.SetIDTokenClaim("email", "tia@example.com")
	e.idp.SetIDTokenClaim("email_verified", "true")
	e.mustSignIn(t, "tia")
	if _, err := e.store.UserByEmail(context.Background(), "tia@example.com"); err != nil {
		t.Errorf("no account after a sign-in with email_verified \"true\": %v", err)
	}
}

// TestSSOUnknownPersonWithoutDomainsIsNotCreated: with an empty
// --oidc-domains only existing users may sign in; nobody is created.
func TestSSOUnknownPersonWithoutDomainsIsNotCreated(t *testing.T) {
	e := newSSOApp(t, func(c *Config, _ *dashboards.Registry) { c.OIDCDomains = nil })
	e.addIdPUser("una", "una@example.com")
	_, res, body := e.signIn(t, "una", "/")
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, html.EscapeString(ssoMsgNoAccount)) {
		t.Errorf("unknown person without --oidc-domains: %d, want 401 saying %q", res.StatusCode, ssoMsgNoAccount)
	}
	if n := e.countUsers(t); n != 0 {
		t.Errorf("%d users were created", n)
	}
	if e.countAudit(t, db.ActionSSOFailed, "una@example.com") != 1 {
		t.Error("the refusal was not audited")
	}
}

// TestSSOAccountLinkedToAnotherSubjectIsRefused: a second account at the
// same IdP with the same verified email does not get into a user already
// linked to the first.
func TestSSOAccountLinkedToAnotherSubjectIsRefused(t *testing.T) {
	e := newSSOApp(t, func(c *Config, _ *dashboards.Registry) { c.OIDCDomains = nil })
	kim := e.createUser(t, "kim@corp.example.org", false)
	e.addIdPUser("kim", "kim@corp.example.org")
	e.mustSignIn(t, "kim")
	e.addIdPUser("kim-again", "KIM@corp.example.org")
	_, res, body := e.signIn(t, "kim-again", "/")
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, html.EscapeString(ssoMsgLinked)) {
		t.Errorf("a second subject for a linked user: %d, want 401 saying %q", res.StatusCode, ssoMsgLinked)
	}
	if ids, err := e.store.IdentitiesOf(context.Background(), kim.ID); err != nil || len(ids) != 1 || ids[0].Subject != "kim" {
		t.Errorf("identities: %+v %v, want the first subject alone", ids, err)
	}
	if n, _ := e.store.CountActiveSessions(context.Background()); n != 1 {
		t.Errorf("%d sessions, want the first sign-in's alone", n)
	}
	e.mustSignIn(t, "kim") // the first subject still gets in
}

// TestSSORecheckEndsTheSessionWhenTheRefreshedTokenIsBad: at a re-check
// the refreshed ID token must be valid and name the same person; a token
// for another audience or with another subject ends the session, audited.
func TestSSORecheckEndsTheSessionWhenTheRefreshedTokenIsBad(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spoil  func(e *ssoEnv)
		reason string
	}{
		{"foreign audience", func(e *ssoEnv) { e.idp.SetAudience([]string{"another-app"}) }, "audience"},
		{"subject changed", func(e *ssoEnv) { e.idp.SetIDTokenClaim("sub", "someone-else") }, "subject changed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newSSOApp(t)
			e.addIdPUser("rex", "rex@example.com")
			c := e.mustSignIn(t, "rex")
			tc.spoil(e)
			e.Clock.Advance(16 * time.Minute)
			res, _ := e.get(t, c, "/", false)
			if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
				t.Errorf("after the re-check: %d to %q, want 303 to the login page", res.StatusCode, res.Header.Get("Location"))
			}
			if e.countAudit(t, db.ActionSessionEnded, "rex@example.com") != 1 {
				t.Error("ending the session was not audited")
			} else if d := e.lastAuditDetail(t); !strings.Contains(d, tc.reason) {
				t.Errorf("ended for another reason than %q: %s", tc.reason, d)
			}
			if n, _ := e.store.CountActiveSessions(context.Background()); n != 0 {
				t.Errorf("%d sessions left", n)
			}
		})
	}
}

// TestSSODoesNotHandAnUnconfirmedSignupToItsAuthor: an attacker signs up
// the victim's address (pending confirmation) with a password of their
// own; the victim then signs in with SSO. The account becomes the
// victim's alone: the attacker's password and the sign-up's links are
// gone, and neither the old confirmation link nor an admin's activation
// brings them back.
func TestSSODoesNotHandAnUnconfirmedSignupToItsAuthor(t *testing.T) {
	smtp := smtptest.Start(t)
	e := newSSOApp(t, withMail(smtp), func(c *Config, _ *dashboards.Registry) {
		c.AllowSignup, c.SignupGroup, c.OIDCDomains = true, "Newcomers", nil
	})
	ctx := context.Background()
	newcomers := e.group(t, "Newcomers")
	const attackers = "the attacker's own password"
	attacker := e.client()
	res, body := e.post(t, attacker, "/signup", url.Values{"email": {"vic@example.com"}, "name": {"Not Vic"}, "password": {attackers}, "confirm": {attackers}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Check your email") {
		t.Fatalf("the attacker's sign-up: %d %s", res.StatusCode, body)
	}
	e.deliver(t)
	confirm := smtp.Wait(t, 1, time.Second)[0].Link("/signup/confirm?token=")
	if confirm == "" {
		t.Fatal("no confirmation link was mailed")
	}

	e.addIdPUser("vic", "vic@example.com")
	vic := e.mustSignIn(t, "vic")
	if _, body := e.get(t, vic, "/account", false); !strings.Contains(body, "vic@example.com") || !strings.Contains(body, "Gatehouse keeps no password for you") ||
		!strings.Contains(body, "Person vic") || strings.Contains(body, "Not Vic") {
		t.Errorf("the victim's account page after SSO:\n%s", body)
	}
	u, err := e.store.UserByEmail(ctx, "vic@example.com")
	if err != nil || u.EmailPending || u.PasswordHash != "" {
		t.Fatalf("after linking the sign-up: pending %v, password kept %v (%v)", u.EmailPending, u.PasswordHash != "", err)
	}
	if !strings.Contains(e.lastLinkDetail(t, "vic@example.com"), "password and links discarded") {
		t.Error("the link's audit row does not say the sign-up's password was discarded")
	}

	// The old confirmation link does nothing now; it logs nobody in.
	token := strings.TrimPrefix(confirm, "http://gatehouse.test/signup/confirm?token=")
	late := e.client()
	if res, _ := e.post(t, late, "/signup/confirm", url.Values{"token": {token}}); res.StatusCode != http.StatusNotFound || e.sessionCookie(late) != "" {
		t.Errorf("the old confirmation link: %d, session %q; want 404 and no session", res.StatusCode, e.sessionCookie(late))
	}
	if _, err := e.store.MemberOf(ctx, newcomers.ID, u.ID); err == nil {
		t.Error("the old confirmation link put the account in the sign-up group")
	}
	// An admin activating the user changes nothing either.
	if err := e.store.SetActive(ctx, db.Actor{Email: "cli"}, u.ID, true); err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"after the confirmation link", "after an admin's activation"} {
		res, _ := e.post(t, attacker, "/login", url.Values{"email": {"vic@example.com"}, "password": {attackers}})
		if res.StatusCode != http.StatusUnauthorized || e.sessionCookie(attacker) != "" {
			t.Errorf("%s the attacker's password: %d, want 401 and no session", step, res.StatusCode)
		}
	}
	if u2, _ := e.store.UserByEmail(ctx, "vic@example.com"); u2.PasswordHash != "" || u2.EmailPending {
		t.Errorf("the account changed back: pending %v, password %v", u2.EmailPending, u2.PasswordHash != "")
	}
	e.mustSignIn(t, "vic") // and the victim still gets in
}

// lastLinkDetail is the detail of the newest user.link audit row for email.
func (e *ssoEnv) lastLinkDetail(t *testing.T, email string) string {
	t.Helper()
	var detail string
	if err := e.store.DB.NewSelect().Model((*db.AuditEvent)(nil)).Column("detail").Where("action = ? AND target = ?", db.ActionUserLink, email).
		Order("id DESC").Limit(1).Scan(context.Background(), &detail); err != nil {
		t.Fatal(err)
	}
	return detail
}

// TestSSOLinkNever: with --oidc-link=never a first SSO sign-in does not
// take over an existing account by its email (401, one sentence, audited,
// nothing linked, and the account's own sign-in still works); people
// already linked and new people of an allowed domain sign in as before.
func TestSSOLinkNever(t *testing.T) {
	e := newSSOApp(t, func(c *Config, _ *dashboards.Registry) { c.OIDCLink = "never" })
	ctx := context.Background()
	old := e.createUser(t, "old@example.com", false)
	e.addIdPUser("old", "Old@Example.com")
	_, res, body := e.signIn(t, "old", "/")
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, html.EscapeString(ssoMsgNotLinked)) {
		t.Errorf("SSO into an unlinked account: %d, want 401 saying %q", res.StatusCode, ssoMsgNotLinked)
	}
	if e.countAudit(t, db.ActionSSOFailed, "Old@Example.com") != 1 || !strings.Contains(e.lastAuditDetail(t), "linking by email is off") {
		t.Errorf("the refusal was not audited with its reason: %s", e.lastAuditDetail(t))
	}
	if ids, _ := e.store.IdentitiesOf(ctx, old.ID); len(ids) != 0 {
		t.Errorf("the refusal linked %+v", ids)
	}
	if n, _ := e.store.CountActiveSessions(ctx); n != 0 {
		t.Errorf("%d sessions after the refusal", n)
	}
	e.login(t, "old@example.com") // the account's own sign-in still works

	// Linked before (say while --oidc-link was email): signs in by subject.
	linked := e.createUser(t, "linked@example.com", false)
	e.addIdPUser("linked", "linked@example.com")
	if _, err := e.store.SignInWithIdP(ctx, db.Actor{Email: "idp"}, db.IdPIdentity{Issuer: e.idp.Issuer, Subject: "linked",
		Email: "linked@example.com", EmailVerified: true}, db.SSOPolicy{}); err != nil {
		t.Fatal(err)
	}
	c := e.mustSignIn(t, "linked")
	if _, body := e.get(t, c, "/account", false); !strings.Contains(body, "linked@example.com") {
		t.Error("the linked person did not land in their account")
	}
	// A new person of an allowed domain is created.
	e.addIdPUser("new", "new@example.com")
	e.mustSignIn(t, "new")
	if _, err := e.store.UserByEmail(ctx, "new@example.com"); err != nil {
		t.Errorf("the new person was not created: %v", err)
	}
	if ids, _ := e.store.IdentitiesOf(ctx, linked.ID); len(ids) != 1 {
		t.Errorf("identities of the linked person: %+v", ids)
	}
}

// TestSecurityPageSaysWhichFactorProtectsWhom: /account/security says in
// words what protects each way into the account: the second factors on the
// page protect the password; the IdP's own sign-in protects SSO, for a
// linked account, for one the next SSO sign-in may link by email, and not
// at all under --oidc-link=never.
func TestSecurityPageSaysWhichFactorProtectsWhom(t *testing.T) {
	const (
		password    = "Signing in with your password asks for nothing more until you add a passkey or an authenticator app below."
		linked      = "Your account is linked to Test SSO: signing in with Test SSO is protected by Test SSO's own sign-in"
		linkable    = "Your account is not linked to Test SSO yet: whoever first signs in with Test SSO as pam@example.com"
		unreachable = "Signing in with Test SSO does not reach your account"
	)
	page := func(t *testing.T, ta *testApp, c *http.Client) string {
		t.Helper()
		res, body := ta.get(t, c, "/account/security", false)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("/account/security: %d", res.StatusCode)
		}
		return body
	}
	want := func(t *testing.T, body string, in, out []string) {
		t.Helper()
		for _, s := range in {
			if !strings.Contains(body, s) {
				t.Errorf("the page lacks %q", s)
			}
		}
		for _, s := range out {
			if strings.Contains(body, s) {
				t.Errorf("the page says %q", s)
			}
		}
	}
	t.Run("link by email", func(t *testing.T) {
		e := newSSOApp(t)
		e.createUser(t, "pam@example.com", false)
		want(t, page(t, e.testApp, e.login(t, "pam@example.com")), []string{password, linkable}, []string{linked, unreachable})
		e.addIdPUser("pam", "pam@example.com")
		want(t, page(t, e.testApp, e.mustSignIn(t, "pam")), []string{password, linked}, []string{linkable, unreachable})
	})
	t.Run("never", func(t *testing.T) {
		e := newSSOApp(t, func(c *Config, _ *dashboards.Registry) { c.OIDCLink = "never" })
		e.createUser(t, "pam@example.com", false)
		want(t, page(t, e.testApp, e.login(t, "pam@example.com")), []string{password, unreachable}, []string{linked, linkable})
	})
	t.Run("no SSO", func(t *testing.T) {
		ta := newTestApp(t)
		ta.createUser(t, "pam@example.com", false)
		want(t, page(t, ta, ta.login(t, "pam@example.com")), []string{password}, []string{"Test SSO", "SSO"})
	})
}
