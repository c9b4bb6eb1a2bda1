package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

func TestLoginPageWorksWithoutJavaScript(t *testing.T) {
	ta := newTestApp(t)
	res, body := ta.get(t, ta.client(), "/login?next=%2Fdashboards%2Faccess", false)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	for _, want := range []string{`<form method="post" action="/login"`, `name="email"`, `name="password"`, `name="next" value="/dashboards/access"`} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
}

func TestLoginSuccessRedirectsToNextAndSetsCookie(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "ann@example.com", false)
	c := ta.client()
	res, _ := ta.post(t, c, "/login", url.Values{"email": {"ANN@example.com "}, "password": {testPassword}, "next": {"/account?tab=1"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account?tab=1" {
		t.Fatalf("got %d to %q, want 303 to /account?tab=1", res.StatusCode, res.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "gatehouse_session" {
			cookie = ck
		}
	}
	if cookie == nil {
		t.Fatal("no session cookie")
	}
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" || cookie.Secure {
		t.Errorf("cookie flags: %+v", cookie)
	}
	_, body := ta.get(t, c, "/", false)
	if !strings.Contains(body, "Hello, ann") || !strings.Contains(body, "Log out") {
		t.Errorf("home page after login lacks greeting or logout: %s", body)
	}
	if n := ta.countAudit(t, db.ActionLogin, "ann@example.com"); n != 1 {
		t.Errorf("login audit rows = %d, want 1", n)
	}
}

func TestSecureCookieWhenBaseURLIsHTTPS(t *testing.T) {
	ta := newTestApp(t, func(c *Config, _ *dashboards.Registry) { c.BaseURL = "https://gate.example.com" })
	ta.createUser(t, "ann@example.com", false)
	res, _ := ta.post(t, ta.client(), "/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}})
	var found bool
	for _, ck := range res.Cookies() {
		if ck.Name == "__Host-gatehouse_session" {
			found = ck.Secure && ck.HttpOnly && ck.Path == "/" && ck.Domain == ""
		}
	}
	if !found {
		t.Errorf("want a Secure, HttpOnly __Host- cookie with Path=/; got %v", res.Header.Values("Set-Cookie"))
	}
	if res.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS header with an https base URL")
	}
}

func TestLoginFailuresLookTheSame(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "ann@example.com", false)
	inactive := ta.createUser(t, "gone@example.com", false)
	if err := ta.store.SetActive(context.Background(), db.Actor{}, inactive.ID, false); err != nil {
		t.Fatal(err)
	}
	type result struct {
		status int
		body   string
	}
	try := func(email, password string) result {
		res, body := ta.post(t, ta.client(), "/login", url.Values{"email": {email}, "password": {password}, "next": {"/"}})
		// The echoed email differs by design; compare the rest.
		return result{res.StatusCode, strings.ReplaceAll(body, email, "EMAIL")}
	}
	wrong := try("ann@example.com", "not the password at all")
	unknown := try("nobody@example.com", "not the password at all")
	deactivated := try("gone@example.com", testPassword)
	for name, r := range map[string]result{"wrong password": wrong, "unknown email": unknown, "deactivated": deactivated} {
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, r.status)
		}
		if !strings.Contains(r.body, "Incorrect email or password.") {
			t.Errorf("%s: body lacks the generic message", name)
		}
	}
	if wrong.body != unknown.body || wrong.body != deactivated.body {
		t.Error("failure pages differ between wrong password, unknown email and deactivated account")
	}
	if n := ta.countAudit(t, db.ActionLoginFailed, ""); n != 3 {
		t.Errorf("failed-login audit rows = %d, want 3", n)
	}
}

func TestSafeNext(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/", "/"},
		{"/dashboards/sales?x=1", "/dashboards/sales?x=1"},
		{"", "/"},
		{"//evil.example", "/"},
		{"https://evil.example", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"/%2F%2Fevil.example", "/"}, // decodes to //evil.example: refused to be safe
		{"http:/evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"/ok\r\nLocation: x", "/"},
		{"/\tevil", "/"},
		{"evil.example", "/"},
	} {
		if got := safeNext(tc.in); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLoginOpenRedirectAttemptsLandOnHome(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "ann@example.com", false)
	for _, next := range []string{"//evil.example", "https://evil.example", "/\\evil.example", "http://evil.example/x"} {
		res, _ := ta.post(t, ta.client(), "/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}, "next": {next}})
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != "/" {
			t.Errorf("next=%q: got %d to %q, want 303 to /", next, res.StatusCode, loc)
		}
	}
}

func TestLoginRotatesSessionID(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "ann@example.com", false)
	c := ta.login(t, "ann@example.com")
	before := ta.sessionCookie(c)
	// Logging in again from the same browser must issue a new id and kill the old one.
	res, _ := ta.post(t, c, "/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("second login: %d", res.StatusCode)
	}
	after := ta.sessionCookie(c)
	if after == "" || after == before {
		t.Fatal("session cookie did not change on login")
	}
	old := ta.client()
	u, _ := url.Parse(ta.Server.URL)
	old.Jar.SetCookies(u, []*http.Cookie{{Name: "gatehouse_session", Value: before}})
	if res, _ := ta.get(t, old, "/", false); res.StatusCode != http.StatusSeeOther {
		t.Errorf("pre-login session id still works: %d", res.StatusCode)
	}
	if res, _ := ta.get(t, c, "/", false); res.StatusCode != http.StatusOK {
		t.Errorf("new session does not work: %d", res.StatusCode)
	}
}

func TestLogoutKillsServerSideSession(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "ann@example.com", false)
	c := ta.login(t, "ann@example.com")
	cookie := ta.sessionCookie(c)
	res, _ := ta.post(t, c, "/logout", nil)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Fatalf("logout: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	replay := ta.client()
	u, _ := url.Parse(ta.Server.URL)
	replay.Jar.SetCookies(u, []*http.Cookie{{Name: "gatehouse_session", Value: cookie}})
	res, _ = ta.get(t, replay, "/", false)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?next=%2F" {
		t.Errorf("replayed cookie: %d to %q, want 303 to /login?next=%%2F", res.StatusCode, res.Header.Get("Location"))
	}
	n, _ := ta.store.CountActiveSessions(context.Background())
	if n != 0 {
		t.Errorf("%d sessions left in the database", n)
	}
	if ta.countAudit(t, db.ActionLogout, "ann@example.com") != 1 {
		t.Error("logout not audited")
	}
}

func TestAnonymousRequests(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	res, _ := ta.get(t, c, "/", false)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?next=%2F" {
		t.Errorf("GET /: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, _ = ta.get(t, c, "/dashboards/access/panels/overview", true)
	if res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("HX-Redirect"), "/login?next=") {
		t.Errorf("htmx panel: %d HX-Redirect %q, want 401 with HX-Redirect", res.StatusCode, res.Header.Get("HX-Redirect"))
	}
	res, _ = ta.get(t, c, "/dashboards/access/panels/overview", false)
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("plain panel: %d, want 303", res.StatusCode)
	}
}

func TestRevocationOnDeactivationAndPasswordChange(t *testing.T) {
	ctx := context.Background()
	ta := newTestApp(t)
	u := ta.createUser(t, "ann@example.com", false)

	c1, c2 := ta.login(t, "ann@example.com"), ta.login(t, "ann@example.com")
	hash, _ := ta.hasher.Hash(ctx, "another good passphrase")
	if err := ta.store.SetPassword(ctx, db.Actor{Email: "cli"}, u.ID, hash, false); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*http.Client{c1, c2} {
		if res, _ := ta.get(t, c, "/", false); res.StatusCode != http.StatusSeeOther {
			t.Errorf("client %d still logged in after password change: %d", i, res.StatusCode)
		}
	}

	if err := ta.store.SetPassword(ctx, db.Actor{}, u.ID, mustHash(t, ta, testPassword), false); err != nil {
		t.Fatal(err)
	}
	c3 := ta.login(t, "ann@example.com")
	if err := ta.store.SetActive(ctx, db.Actor{Email: "cli"}, u.ID, false); err != nil {
		t.Fatal(err)
	}
	if res, _ := ta.get(t, c3, "/", false); res.StatusCode != http.StatusSeeOther {
		t.Errorf("deactivated user still logged in: %d", res.StatusCode)
	}
}

func mustHash(t testing.TB, ta *testApp, pw string) string {
	h, err := ta.hasher.Hash(context.Background(), pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestChangeOwnPasswordRevokesOtherSessions(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "ann@example.com", false)
	here, other := ta.login(t, "ann@example.com"), ta.login(t, "ann@example.com")
	for _, tc := range []struct {
		name    string
		form    url.Values
		status  int
		message string
	}{
		{"wrong current", url.Values{"current": {"nope nope nope"}, "new": {"a brand new passphrase"}, "confirm": {"a brand new passphrase"}}, 422, "current password is not correct"},
		{"mismatch", url.Values{"current": {testPassword}, "new": {"a brand new passphrase"}, "confirm": {"a brand new passphrasf"}}, 422, "do not match"},
		{"too short", url.Values{"current": {testPassword}, "new": {"short"}, "confirm": {"short"}}, 422, "at least 12 characters"},
		{"common", url.Values{"current": {testPassword}, "new": {"password1234"}, "confirm": {"password1234"}}, 422, "too common"},
	} {
		res, body := ta.post(t, here, "/account/password", tc.form)
		if res.StatusCode != tc.status || !strings.Contains(body, tc.message) {
			t.Errorf("%s: %d, want %d with %q", tc.name, res.StatusCode, tc.status, tc.message)
		}
	}
	res, _ := ta.post(t, here, "/account/password", url.Values{"current": {testPassword}, "new": {"a brand new passphrase"}, "confirm": {"a brand new passphrase"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("change: %d", res.StatusCode)
	}
	if res, _ := ta.get(t, here, "/account", false); res.StatusCode != http.StatusOK {
		t.Errorf("this browser was logged out: %d", res.StatusCode)
	}
	if res, _ := ta.get(t, other, "/", false); res.StatusCode != http.StatusSeeOther {
		t.Errorf("other session survived the password change: %d", res.StatusCode)
	}
	c := ta.client()
	res, _ = ta.post(t, c, "/login", url.Values{"email": {"ann@example.com"}, "password": {"a brand new passphrase"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("new password does not log in: %d", res.StatusCode)
	}
}

func TestTemporaryPasswordMustBeChanged(t *testing.T) {
	ctx := context.Background()
	ta := newTestApp(t)
	hash := mustHash(t, ta, "temporary-pass-1234")
	if _, err := ta.store.CreateUser(ctx, db.Actor{}, db.NewUser{Email: "new@example.com", PasswordHash: hash, MustChangePassword: true}); err != nil {
		t.Fatal(err)
	}
	c := ta.client()
	res, _ := ta.post(t, c, "/login", url.Values{"email": {"new@example.com"}, "password": {"temporary-pass-1234"}, "next": {"/account"}})
	if res.Header.Get("Location") != "/account/password" {
		t.Fatalf("login sent to %q, want /account/password", res.Header.Get("Location"))
	}
	for _, path := range []string{"/", "/account", "/dashboards/access"} {
		if res, _ := ta.get(t, c, path, false); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account/password" {
			t.Errorf("%s: %d to %q, want the change-password page", path, res.StatusCode, res.Header.Get("Location"))
		}
	}
	res, body := ta.get(t, c, "/account/password", false)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Your password is temporary") {
		t.Fatalf("change page: %d", res.StatusCode)
	}
	res, _ = ta.post(t, c, "/account/password", url.Values{"current": {"temporary-pass-1234"}, "new": {"my own passphrase"}, "confirm": {"my own passphrase"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("change: %d", res.StatusCode)
	}
	if res, _ := ta.get(t, c, "/", false); res.StatusCode != http.StatusOK {
		t.Errorf("after changing, home: %d", res.StatusCode)
	}
}

func TestThrottlePerAccountWithClock(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "ann@example.com", false)
	bad := url.Values{"email": {"ann@example.com"}, "password": {"wrong wrong wrong"}}
	for i := 0; i < 5; i++ {
		if res, _ := ta.post(t, ta.client(), "/login", bad); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i+1, res.StatusCode)
		}
		ta.Clock.Advance(10 * time.Second)
	}
	// The sixth try, even with the right password, is throttled.
	good := url.Values{"email": {"ann@example.com"}, "password": {testPassword}}
	res, body := ta.post(t, ta.client(), "/login", good)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("throttled login: %d Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if !strings.Contains(body, "Too many failed attempts") {
		t.Error("throttle message missing")
	}
	if ta.countAudit(t, db.ActionLoginThrottled, "ann@example.com") != 1 {
		t.Error("throttle not audited")
	}
	// Once the window has passed, the owner gets in.
	ta.Clock.Advance(5 * time.Minute)
	if res, _ := ta.post(t, ta.client(), "/login", good); res.StatusCode != http.StatusSeeOther {
		t.Errorf("after the window: %d", res.StatusCode)
	}
}

func TestThrottlePerIP(t *testing.T) {
	ta := newTestApp(t, func(c *Config, _ *dashboards.Registry) { c.IPFailures = 4 })
	for i := 0; i < 4; i++ {
		email := "user" + string(rune('a'+i)) + "@example.com"
		ta.post(t, ta.client(), "/login", url.Values{"email": {email}, "password": {"wrong wrong wrong"}})
	}
	res, _ := ta.post(t, ta.client(), "/login", url.Values{"email": {"fresh@example.com"}, "password": {"wrong wrong wrong"}})
	if res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("per-IP throttle: %d, want 429", res.StatusCode)
	}
}

func TestArgonOverloadIsShed(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "ann@example.com", false)
	// Occupy every hashing slot with a hasher that cannot get a slot in time.
	ta.hasher = db.NewHasher(testHashParams, 1, time.Millisecond)
	release := ta.hasher.HoldForTest()
	defer release()
	res, body := ta.post(t, ta.client(), "/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}})
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("overloaded login: %d Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if !strings.Contains(body, "busy") {
		t.Error("no busy message")
	}
}

func TestConcurrentLoginsAreBounded(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "ann@example.com", false)
	ta.hasher = db.NewHasher(db.PasswordParams, 1, 20*time.Millisecond)
	var wg sync.WaitGroup
	codes := make(chan int, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, _ := ta.post(t, ta.client(), "/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}})
			codes <- res.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	counts := map[int]int{}
	for c := range codes {
		counts[c]++
	}
	if counts[http.StatusServiceUnavailable] == 0 || counts[http.StatusSeeOther] == 0 {
		t.Errorf("want some logins served and some shed, got %v", counts)
	}
	if len(counts) != 2 {
		t.Errorf("unexpected statuses: %v", counts)
	}
}

func TestHealthz(t *testing.T) {
	ta := newTestApp(t)
	res, body := ta.get(t, ta.client(), "/healthz", false)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"database":"ok"`) {
		t.Errorf("healthz: %d %s", res.StatusCode, body)
	}
	ta.store.Close()
	res, _ = ta.get(t, ta.client(), "/healthz", false)
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("healthz with a closed database: %d, want 503", res.StatusCode)
	}
}
