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
	"gatehouse/internal/testidp"
)

// ssoBase is the base URL the tests' Gatehouse is registered under at the
// IdP; the tests send the IdP's redirect back to the test server.
const ssoBase = "http://gatehouse.test"

// ssoEnv is a Gatehouse with sign-in through a real OpenID Provider.
type ssoEnv struct {
	*testApp
	idp *testidp.Provider
}

// newSSOApp starts an OpenID Provider and a Gatehouse using it (creating
// users of example.com at their first sign-in, re-checking sessions every
// 15 minutes), and waits until Gatehouse has read the discovery document.
func newSSOApp(t testing.TB, configure ...func(*Config, *dashboards.Registry)) *ssoEnv {
	t.Helper()
	idp := testidp.Start(t)
	idp.AllowRedirect(ssoBase + "/auth/oidc/callback")
	withIdP := func(c *Config, _ *dashboards.Registry) {
		c.BaseURL = ssoBase
		c.OIDCIssuer, c.OIDCClientID, c.OIDCClientSecret = idp.Issuer, idp.ClientID, idp.ClientSecret
		c.OIDCName = "Test SSO"
		c.OIDCScopes = []string{"openid", "email", "profile", "offline_access"}
		c.OIDCDomains = []string{"example.com"}
		c.OIDCRetry = 20 * time.Millisecond
	}
	e := &ssoEnv{testApp: newTestApp(t, append([]func(*Config, *dashboards.Registry){withIdP}, configure...)...), idp: idp}
	e.waitDiscovered(t)
	return e
}

func (e *ssoEnv) waitDiscovered(t testing.TB) {
	t.Helper()
	for range 500 {
		if p, _ := e.oidc.ready(); p != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("Gatehouse never read the IdP's discovery document")
}

// addIdPUser adds a person at the IdP whose username and password are
// their id.
func (e *ssoEnv) addIdPUser(id, email string, groups ...string) {
	e.idp.AddUser(testidp.User{ID: id, Username: id, Password: id, Email: email, EmailVerified: true, Name: "Person " + id, Groups: groups})
}

// toIdP starts a sign-in for c and returns the IdP's authorization URL.
func (e *ssoEnv) toIdP(t testing.TB, c *http.Client, next string) string {
	t.Helper()
	res, body := e.get(t, c, "/auth/oidc/start?next="+url.QueryEscape(next), false)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, e.idp.Issuer) {
		t.Fatalf("start: status %d to %q, want 302 to the IdP; %s", res.StatusCode, loc, body)
	}
	return loc
}

// atIdP logs in as username on the IdP's login page and returns the
// callback request (path and query) the IdP sends the browser back with.
func (e *ssoEnv) atIdP(t testing.TB, c *http.Client, authURL, username string) string {
	t.Helper()
	cb, err := e.idp.Login(c, authURL, username, username)
	if err != nil {
		t.Fatalf("logging in at the IdP: %v", err)
	}
	if !strings.HasPrefix(cb, ssoBase+"/auth/oidc/callback?") {
		t.Fatalf("the IdP sent the browser to %q", cb)
	}
	return strings.TrimPrefix(cb, ssoBase)
}

// signIn runs the whole sign-in for a new browser and returns it with the
// callback's answer.
func (e *ssoEnv) signIn(t testing.TB, username, next string) (*http.Client, *http.Response, string) {
	t.Helper()
	c := e.client()
	cb := e.atIdP(t, c, e.toIdP(t, c, next), username)
	res, body := e.get(t, c, cb, false)
	return c, res, body
}

func (e *ssoEnv) mustSignIn(t testing.TB, username string) *http.Client {
	t.Helper()
	c, res, body := e.signIn(t, username, "/")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Fatalf("sign-in of %s: status %d to %q: %s", username, res.StatusCode, res.Header.Get("Location"), body)
	}
	return c
}

// groupsOf lists the user's groups as "name:source".
func (e *ssoEnv) groupsOf(t testing.TB, email string) []string {
	t.Helper()
	var out []string
	err := e.store.DB.NewSelect().TableExpr("memberships AS m").Join("JOIN groups AS g ON g.id = m.group_id").
		Join("JOIN users AS u ON u.id = m.user_id").ColumnExpr("g.name || ':' || m.source").
		Where("u.email = ?", email).OrderExpr("g.name_key").Scan(context.Background(), &out)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *ssoEnv) group(t testing.TB, name string, idpGroups ...string) db.Group {
	t.Helper()
	ctx := context.Background()
	g, err := e.store.CreateGroup(ctx, db.Actor{Email: "test"}, name, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, ig := range idpGroups {
		if err := e.store.MapIdPGroup(ctx, db.Actor{Email: "test"}, g.ID, ig); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

func (e *ssoEnv) countUsers(t testing.TB) int {
	t.Helper()
	n, err := e.store.DB.NewSelect().Model((*db.User)(nil)).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func TestLoginPageOffersSSO(t *testing.T) {
	e := newSSOApp(t)
	_, body := e.get(t, e.client(), "/login?next=%2Fdashboards%2Faccess", false)
	for _, want := range []string{"Sign in with Test SSO", `href="/auth/oidc/start?next=%2Fdashboards%2Faccess"`, `name="password"`} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	plain := newTestApp(t)
	_, body = plain.get(t, plain.client(), "/login", false)
	if strings.Contains(body, "Sign in with") {
		t.Error("login page offers SSO without --oidc-issuer")
	}
}

func TestSSOStartSendsStateNoncePKCE(t *testing.T) {
	e := newSSOApp(t)
	u, err := url.Parse(e.toIdP(t, e.client(), "/"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("state") == "" || q.Get("nonce") == "" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
		q.Get("redirect_uri") != ssoBase+"/auth/oidc/callback" || q.Get("client_id") != "gatehouse" || q.Get("response_type") != "code" {
		t.Errorf("authorization request lacks state, nonce, PKCE S256 or the redirect URI: %s", u.RawQuery)
	}
}

func TestSSOFirstSignInCreatesUserOfAllowedDomainWithMappedGroups(t *testing.T) {
	e := newSSOApp(t)
	fin := e.group(t, "Finance", "fin-team")
	e.group(t, "Ops", "ops-team")
	if err := e.store.AddGrant(context.Background(), db.Actor{}, dashboards.AccessSlug, fin.ID); err != nil {
		t.Fatal(err)
	}
	e.addIdPUser("ann", "Ann@Example.com", "fin-team", "unmapped-team")

	c, res, body := e.signIn(t, "ann", "/dashboards/access")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/dashboards/access" {
		t.Fatalf("callback: status %d to %q, want 303 to next: %s", res.StatusCode, res.Header.Get("Location"), body)
	}
	if res, _ := e.get(t, c, "/dashboards/access", false); res.StatusCode != http.StatusOK {
		t.Errorf("the granted dashboard answered %d after SSO sign-in", res.StatusCode)
	}
	u, err := e.store.UserByEmail(context.Background(), "ann@example.com")
	if err != nil || u.Name != "Person ann" || u.PasswordHash != "" {
		t.Fatalf("created user: %+v %v", u, err)
	}
	if got := e.groupsOf(t, "ann@example.com"); strings.Join(got, ",") != "Finance:idp" {
		t.Errorf("memberships %v, want Finance from the IdP only", got)
	}
	for _, a := range []string{db.ActionUserCreate, db.ActionLogin} {
		if e.countAudit(t, a, "ann@example.com") != 1 {
			t.Errorf("no %s audit row", a)
		}
	}
	if e.countAudit(t, db.ActionMemberAdd, "Finance / ann@example.com") != 1 {
		t.Error("no audit row for the membership the IdP added")
	}
	// Password login stays impossible for an SSO-created user.
	res, _ = e.post(t, e.client(), "/login", url.Values{"email": {"ann@example.com"}, "password": {""}})
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("password login of an SSO user: %d", res.StatusCode)
	}
	// Nor is there a password to change: the account page says so instead
	// of asking for a current password nobody has, and a posted change is
	// refused without counting as a failed login.
	_, account := e.get(t, c, "/account", false)
	if !strings.Contains(account, "Gatehouse keeps no password for you") || strings.Contains(account, `name="current"`) {
		t.Errorf("the account page of an SSO user offers a password change:\n%s", account)
	}
	failedBefore := e.countAudit(t, db.ActionLoginFailed, "ann@example.com")
	res, body = e.post(t, c, "/account/password", url.Values{"current": {""}, "new": {"a new long password 1"}, "confirm": {"a new long password 1"}})
	if res.StatusCode != http.StatusConflict || !strings.Contains(body, "Gatehouse keeps no password for you") {
		t.Errorf("password change of an SSO user: %d %s", res.StatusCode, body)
	}
	if e.countAudit(t, db.ActionLoginFailed, "ann@example.com") != failedBefore {
		t.Error("the refused password change was audited as a failed login")
	}
	if u, _ := e.store.UserByEmail(context.Background(), "ann@example.com"); u.PasswordHash != "" {
		t.Error("the refused password change set a password")
	}
}

func TestSSOLinksExistingUserByVerifiedEmailThenMatchesBySubject(t *testing.T) {
	e := newSSOApp(t, func(c *Config, _ *dashboards.Registry) { c.OIDCDomains = nil })
	carl := e.createUser(t, "carl@corp.example.org", false)
	e.addIdPUser("carl", "CARL@corp.example.org")
	e.mustSignIn(t, "carl")
	if e.countAudit(t, db.ActionUserLink, "carl@corp.example.org") != 1 {
		t.Error("linking was not audited")
	}
	// The email changes at the IdP: the subject still finds Carl.
	e.idp.Update("carl", func(u *testidp.User) { u.Email = "carl.new@corp.example.org" })
	c := e.mustSignIn(t, "carl")
	_, body := e.get(t, c, "/account", false)
	if !strings.Contains(body, "carl@corp.example.org") {
		t.Error("after an email change at the IdP the sign-in did not land in Carl's account")
	}
	if n := e.countUsers(t); n != 1 {
		t.Errorf("%d users, want Carl alone", n)
	}
	ids, err := e.store.IdentitiesOf(context.Background(), carl.ID)
	if err != nil || len(ids) != 1 || ids[0].Subject != "carl" || ids[0].Email != "carl.new@corp.example.org" {
		t.Errorf("identities: %+v %v", ids, err)
	}
	// A deactivated user stays out.
	if err := e.store.SetActive(context.Background(), db.Actor{}, carl.ID, false); err != nil {
		t.Fatal(err)
	}
	_, res, body := e.signIn(t, "carl", "/")
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "deactivated") {
		t.Errorf("deactivated user: %d %s", res.StatusCode, body)
	}
}

func TestSSOGroupSyncFollowsTheIdPAndLeavesManualMembershipsAlone(t *testing.T) {
	e := newSSOApp(t)
	ctx := context.Background()
	e.group(t, "Alpha", "a")
	beta := e.group(t, "Beta", "b")
	other := e.group(t, "Other")
	e.addIdPUser("dee", "dee@example.com", "a")
	e.mustSignIn(t, "dee")
	dee, _ := e.store.UserByEmail(ctx, "dee@example.com")
	for _, g := range []int64{beta.ID, other.ID} {
		if err := e.store.AddMember(ctx, db.Actor{Email: "admin"}, g, dee.ID, 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(e.groupsOf(t, "dee@example.com"), ","); got != "Alpha:idp,Beta:manual,Other:manual" {
		t.Fatalf("after the first sign-in: %s", got)
	}
	// At the IdP Dee leaves a and joins b: Alpha goes, Beta stays manual.
	e.idp.Update("dee", func(u *testidp.User) { u.Groups = []string{"b"} })
	e.mustSignIn(t, "dee")
	if got := strings.Join(e.groupsOf(t, "dee@example.com"), ","); got != "Beta:manual,Other:manual" {
		t.Errorf("after leaving a: %s, want Alpha removed and the manual ones untouched", got)
	}
	if e.countAudit(t, db.ActionMemberRemove, "Alpha / dee@example.com") != 1 {
		t.Error("the removal was not audited")
	}
	// Leaving every IdP group touches no manual membership.
	e.idp.Update("dee", func(u *testidp.User) { u.Groups = nil })
	e.mustSignIn(t, "dee")
	if got := strings.Join(e.groupsOf(t, "dee@example.com"), ","); got != "Beta:manual,Other:manual" {
		t.Errorf("with no IdP groups: %s", got)
	}
}

func TestSSORecheckSyncsGroupsAndEndsTheSessionOfADisabledUser(t *testing.T) {
	e := newSSOApp(t)
	e.group(t, "Alpha", "a")
	e.addIdPUser("eve", "eve@example.com", "a")
	c := e.mustSignIn(t, "eve")

	// Before the interval nothing is asked; after it, groups follow the IdP.
	e.idp.Update("eve", func(u *testidp.User) { u.Groups = nil })
	e.Clock.Advance(10 * time.Minute)
	if res, _ := e.get(t, c, "/", false); res.StatusCode != http.StatusOK {
		t.Fatalf("home: %d", res.StatusCode)
	}
	if got := e.groupsOf(t, "eve@example.com"); len(got) != 1 {
		t.Errorf("re-checked before the interval: %v", got)
	}
	e.Clock.Advance(6 * time.Minute)
	if res, _ := e.get(t, c, "/", false); res.StatusCode != http.StatusOK {
		t.Fatalf("home after the re-check: %d", res.StatusCode)
	}
	if got := e.groupsOf(t, "eve@example.com"); len(got) != 0 {
		t.Errorf("after the re-check Eve is still in %v", got)
	}

	// Disabled at the IdP: the next re-check ends the session.
	e.idp.Update("eve", func(u *testidp.User) { u.Disabled = true })
	e.Clock.Advance(16 * time.Minute)
	res, _ := e.get(t, c, "/", false)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Errorf("after the IdP refused: %d to %q, want 303 to the login page", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ := e.get(t, c, "/dashboards/access/panels/summary", true); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("htmx panel after the session ended: %d, want 401", res.StatusCode)
	}
	if e.countAudit(t, db.ActionSessionEnded, "eve@example.com") != 1 {
		t.Error("ending the session was not audited")
	}
	u, _ := e.store.UserByEmail(context.Background(), "eve@example.com")
	if s, _ := e.store.ListSessions(context.Background(), u.ID); len(s) != 0 {
		t.Errorf("%d sessions left", len(s))
	}
}

func TestSSORecheckKeepsTheSessionWhileTheIdPIsDown(t *testing.T) {
	e := newSSOApp(t)
	e.addIdPUser("fay", "fay@example.com")
	c := e.mustSignIn(t, "fay")
	e.idp.Stop()
	e.Clock.Advance(16 * time.Minute)
	if res, _ := e.get(t, c, "/", false); res.StatusCode != http.StatusOK {
		t.Errorf("IdP down at the re-check: %d, want the session kept", res.StatusCode)
	}
	e.idp.Restart()
	e.idp.Update("fay", func(u *testidp.User) { u.Disabled = true })
	e.Clock.Advance(2 * time.Minute) // retried a minute later
	if res, _ := e.get(t, c, "/", false); res.StatusCode != http.StatusSeeOther {
		t.Errorf("IdP back and refusing: %d, want the session ended", res.StatusCode)
	}
}

func TestSSOSurvivesKeyRotation(t *testing.T) {
	e := newSSOApp(t)
	e.addIdPUser("gus", "gus@example.com")
	e.mustSignIn(t, "gus")
	e.idp.RotateKey()
	e.mustSignIn(t, "gus")
}

// TestSSOFaultsAnswer401AndChangeNothing runs each fault of a sign-in: the
// answer is a 401 page with one plain sentence, an audit row is written,
// and no user, link, membership or session is created.
func TestSSOFaultsAnswer401AndChangeNothing(t *testing.T) {
	cases := []struct {
		name string
		user testidp.User
		// run drives the sign-in up to the callback and answers it.
		run  func(t *testing.T, e *ssoEnv, c *http.Client) (*http.Response, string)
		want string
	}{
		{"wrong state", testidp.User{}, func(t *testing.T, e *ssoEnv, c *http.Client) (*http.Response, string) {
			cb := e.atIdP(t, c, e.toIdP(t, c, "/"), "hal")
			u, _ := url.Parse(cb)
			q := u.Query()
			q.Set("state", "forged")
			u.RawQuery = q.Encode()
			return e.get(t, c, u.String(), false)
		}, ssoMsgState},
		{"no state cookie", testidp.User{}, func(t *testing.T, e *ssoEnv, c *http.Client) (*http.Response, string) {
			cb := e.atIdP(t, c, e.toIdP(t, c, "/"), "hal")
			return e.get(t, e.client(), cb, false)
		}, ssoMsgState},
		{"replayed code", testidp.User{}, func(t *testing.T, e *ssoEnv, c *http.Client) (*http.Response, string) {
			authURL := e.toIdP(t, c, "/")
			state := e.stateCookie(c)
			cb := e.atIdP(t, c, authURL, "hal")
			if res, body := e.get(t, c, cb, false); res.StatusCode != http.StatusSeeOther {
				t.Fatalf("first use of the code: %d %s", res.StatusCode, body)
			}
			// An attacker replays the callback with the stolen state cookie.
			thief := e.client()
			u, _ := url.Parse(e.Server.URL)
			thief.Jar.SetCookies(u, []*http.Cookie{state})
			return e.get(t, thief, cb, false)
		}, ssoMsgRefused},
		{"expired ID token", testidp.User{}, func(t *testing.T, e *ssoEnv, c *http.Client) (*http.Response, string) {
			cb := e.atIdP(t, c, e.toIdP(t, c, "/"), "hal")
			e.Clock.Advance(time.Since(e.Clock.Now()) + 2*time.Hour) // past the token's hour
			return e.get(t, c, cb, false)
		}, ssoMsgExpired},
		{"foreign audience", testidp.User{}, func(t *testing.T, e *ssoEnv, c *http.Client) (*http.Response, string) {
			e.idp.SetAudience([]string{"another-app"})
			cb := e.atIdP(t, c, e.toIdP(t, c, "/"), "hal")
			return e.get(t, c, cb, false)
		}, ssoMsgInvalid},
		{"wrong nonce", testidp.User{}, func(t *testing.T, e *ssoEnv, c *http.Client) (*http.Response, string) {
			e.idp.SetNonce("the nonce of another sign-in")
			return e.get(t, c, e.atIdP(t, c, e.toIdP(t, c, "/"), "hal"), false)
		}, ssoMsgInvalid},
		{"email_verified is the string false", testidp.User{}, func(t *testing.T, e *ssoEnv, c *http.Client) (*http.Response, string) {
			// The ID token carries the email, so the userinfo endpoint
			// (which would say verified) is not asked.
			e.idp.SetIDTokenClaim("email", "hal@example.com")
			e.idp.SetIDTokenClaim("email_verified", "false")
			return e.get(t, c, e.atIdP(t, c, e.toIdP(t, c, "/"), "hal"), false)
		}, ssoMsgUnverified},
		{"unverified email", testidp.User{EmailVerified: false}, func(t *testing.T, e *ssoEnv, c *http.Client) (*http.Response, string) {
			return e.get(t, c, e.atIdP(t, c, e.toIdP(t, c, "/"), "hal"), false)
		}, ssoMsgUnverified},
		{"missing groups claim", testidp.User{NoGroupsClaim: true}, func(t *testing.T, e *ssoEnv, c *http.Client) (*http.Response, string) {
			return e.get(t, c, e.atIdP(t, c, e.toIdP(t, c, "/"), "hal"), false)
		}, ssoMsgNoGroups},
		{"email domain not allowed", testidp.User{Email: "hal@elsewhere.org"}, func(t *testing.T, e *ssoEnv, c *http.Client) (*http.Response, string) {
			return e.get(t, c, e.atIdP(t, c, e.toIdP(t, c, "/"), "hal"), false)
		}, ssoMsgNoAccount},
		{"IdP error", testidp.User{}, func(t *testing.T, e *ssoEnv, c *http.Client) (*http.Response, string) {
			e.toIdP(t, c, "/")
			st := e.stateValue(t, c)
			return e.get(t, c, "/auth/oidc/callback?error=access_denied&state="+url.QueryEscape(st), false)
		}, ssoMsgRefused},
		{"IdP down", testidp.User{}, func(t *testing.T, e *ssoEnv, c *http.Client) (*http.Response, string) {
			cb := e.atIdP(t, c, e.toIdP(t, c, "/"), "hal")
			e.idp.Stop()
			return e.get(t, c, cb, false)
		}, ssoMsgDown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newSSOApp(t)
			e.group(t, "Alpha", "a")
			u := tc.user
			u.ID, u.Username, u.Password, u.Groups = "hal", "hal", "hal", []string{"a"}
			if u.Email == "" {
				u.Email = "hal@example.com"
			}
			u.EmailVerified = u.EmailVerified || tc.name != "unverified email"
			e.idp.AddUser(u)
			wantUsers := e.countUsers(t)
			if tc.name == "replayed code" {
				wantUsers++ // the first, genuine use signs Hal in
			}
			failures := e.countAudit(t, db.ActionSSOFailed, "")
			c := e.client()
			res, body := tc.run(t, e, c)
			if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, html.EscapeString(tc.want)) {
				t.Fatalf("status %d, want 401 saying %q; body: %s", res.StatusCode, tc.want, body)
			}
			for _, ck := range res.Cookies() {
				if ck.Name == e.sessions.CookieName() && ck.MaxAge >= 0 {
					t.Error("a refused sign-in set a session cookie")
				}
			}
			if got := e.countAudit(t, db.ActionSSOFailed, ""); got != failures+1 {
				t.Errorf("%d refusal audit rows, want 1", got-failures)
			}
			if reason, ok := map[string]string{"foreign audience": "audience", "wrong nonce": "wrong nonce",
				"email_verified is the string false": db.ErrEmailUnverified.Error()}[tc.name]; ok && !strings.Contains(e.lastAuditDetail(t), reason) {
				t.Errorf("refused for another reason than %q: %s", reason, e.lastAuditDetail(t))
			}
			if n := e.countUsers(t); n != wantUsers {
				t.Errorf("%d users, want %d: the refusal created one", n, wantUsers)
			}
			if tc.name != "replayed code" {
				if got := e.groupsOf(t, u.Email); len(got) != 0 {
					t.Errorf("memberships %v after a refusal", got)
				}
				if n, _ := e.store.CountActiveSessions(context.Background()); n != 0 {
					t.Errorf("%d sessions after a refusal", n)
				}
			}
		})
	}
}

// lastAuditDetail is the newest audit row's detail.
func (e *ssoEnv) lastAuditDetail(t *testing.T) string {
	t.Helper()
	ev, _, err := e.store.ListAudit(context.Background(), db.AuditFilter{Limit: 1})
	if err != nil || len(ev) == 0 {
		t.Fatal(err)
	}
	return ev[0].Detail
}

// stateCookie returns c's SSO state cookie.
func (e *ssoEnv) stateCookie(c *http.Client) *http.Cookie {
	u, _ := url.Parse(e.Server.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == e.ssoCookieName() {
			return &http.Cookie{Name: ck.Name, Value: ck.Value, Path: "/"}
		}
	}
	return nil
}

// stateValue decodes c's state cookie and returns the state it carries.
func (e *ssoEnv) stateValue(t *testing.T, c *http.Client) string {
	t.Helper()
	var st ssoState
	if err := e.oidc.codec.Decode(e.ssoCookieName(), e.stateCookie(c).Value, &st); err != nil {
		t.Fatal(err)
	}
	return st.State
}

func TestSSODiscoveryRetriesWhileTheIdPIsDown(t *testing.T) {
	idp := testidp.Start(t)
	idp.AllowRedirect(ssoBase + "/auth/oidc/callback")
	idp.Stop()
	ta := newTestApp(t, func(c *Config, _ *dashboards.Registry) {
		c.BaseURL = ssoBase
		c.OIDCIssuer, c.OIDCClientID, c.OIDCClientSecret = idp.Issuer, idp.ClientID, idp.ClientSecret
		c.OIDCRetry = 20 * time.Millisecond
	})
	e := &ssoEnv{testApp: ta, idp: idp}
	res, body := e.get(t, e.client(), "/auth/oidc/start", false)
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, html.EscapeString(ssoMsgDown)) {
		t.Errorf("start while the IdP is down: %d %s", res.StatusCode, body)
	}
	if e.countAudit(t, db.ActionSSOFailed, "") != 1 {
		t.Error("no audit row")
	}
	idp.Restart()
	e.waitDiscovered(t)
	if !strings.Contains(e.Logs.String(), "cannot read the identity provider's discovery document") ||
		!strings.Contains(e.Logs.String(), "/.well-known/openid-configuration") {
		t.Errorf("the log does not say clearly that discovery failed: %s", e.Logs.String())
	}
	e.addIdPUser("ivy", "ivy@example.com")
	e.cfg.OIDCDomains = []string{"example.com"}
	if c, res, body := e.signIn(t, "ivy", "/"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in after the IdP came back: %d %s\n%s", res.StatusCode, body, e.Logs.String())
	} else {
		_ = c
	}
}

func TestPasswordLoginForAdminsOnly(t *testing.T) {
	e := newSSOApp(t, func(c *Config, _ *dashboards.Registry) { c.PasswordLogin = false })
	e.createUser(t, "root@corp.example.org", true)
	e.createUser(t, "joe@corp.example.org", false)
	if res, _ := e.post(t, e.client(), "/login", url.Values{"email": {"root@corp.example.org"}, "password": {testPassword}}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("admin password login: %d, want 303", res.StatusCode)
	}
	res, body := e.post(t, e.client(), "/login", url.Values{"email": {"joe@corp.example.org"}, "password": {testPassword}})
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, loginFailedMessage) {
		t.Errorf("non-admin password login: %d, want 401 with the usual message", res.StatusCode)
	}
	_, body = e.get(t, e.client(), "/login", false)
	if !strings.Contains(body, "Sign in with Test SSO") || !strings.Contains(body, "for administrators only") {
		t.Error("the login page does not say password sign-in is for admins only")
	}
}
