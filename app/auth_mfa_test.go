package app

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

var (
	totpSecretRE    = regexp.MustCompile(`<code id="totp-secret">([A-Z2-7 ]+)</code>`)
	recoveryCodesRE = regexp.MustCompile(`<li><code>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</code></li>`)
)

// code is the authenticator app's code for secret at the test clock's time.
func (ta *testApp) code(t testing.TB, secret string) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, ta.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enrolTOTP sets up an authenticator app for the client's user through the
// pages, and returns the secret and the recovery codes shown once.
func (ta *testApp) enrolTOTP(t testing.TB, c *http.Client) (string, []string) {
	t.Helper()
	res, body := ta.post(t, c, "/account/security/totp", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `src="data:image/png;base64,`) {
		t.Fatalf("start TOTP: %d, want 200 with a QR code PNG\n%s", res.StatusCode, body)
	}
	m := totpSecretRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no secret on the setup page:\n%s", body)
	}
	secret := strings.ReplaceAll(m[1], " ", "") // shown in groups of four
	if res, body := ta.post(t, c, "/account/security/totp/confirm", url.Values{"code": {"000000"}}); res.StatusCode != http.StatusUnprocessableEntity ||
		!strings.Contains(body, "That code is not right") {
		t.Fatalf("confirm with a wrong code: %d\n%s", res.StatusCode, body)
	}
	res, body = ta.post(t, c, "/account/security/totp/confirm", url.Values{"code": {ta.code(t, secret)}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("confirm: %d\n%s", res.StatusCode, body)
	}
	var codes []string
	for _, m := range recoveryCodesRE.FindAllStringSubmatch(body, -1) {
		codes = append(codes, m[1])
	}
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown, want 10:\n%s", len(codes), body)
	}
	return secret, codes
}

// passwordStep logs in with the password and expects to be sent to want.
func (ta *testApp) passwordStep(t testing.TB, email, want string) *http.Client {
	t.Helper()
	c := ta.client()
	res, body := ta.post(t, c, "/login", url.Values{"email": {email}, "password": {testPassword}, "next": {"/account"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != want {
		t.Fatalf("password step: %d to %q, want 303 to %q\n%s", res.StatusCode, res.Header.Get("Location"), want, body)
	}
	return c
}

// sessionMethods lists the auth_method of a user's sessions.
func (ta *testApp) sessionMethods(t testing.TB, userID int64) []string {
	t.Helper()
	rows, err := ta.store.ListSessions(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	var ms []string
	for _, r := range rows {
		ms = append(ms, r.AuthMethod)
	}
	slices.Sort(ms)
	return ms
}

func TestTOTPEnrolmentAndSignIn(t *testing.T) {
	ta := newTestApp(t)
	u := ta.createUser(t, "tia@example.com", false)
	c := ta.login(t, u.Email)
	if _, body := ta.get(t, c, "/account/security", false); !strings.Contains(body, "Set up an authenticator app") {
		t.Fatalf("security page:\n%s", body)
	}
	secret, _ := ta.enrolTOTP(t, c)
	if ta.countAudit(t, db.ActionTOTPEnable, u.Email) != 1 {
		t.Error("enrolment not audited")
	}
	if _, body := ta.get(t, c, "/account/security", false); !strings.Contains(body, "Remove authenticator app") ||
		!strings.Contains(body, `<strong id="recovery-left">10</strong>`) {
		t.Errorf("security page after enrolment:\n%s", body)
	}

	// The password alone now gives a half-authenticated session that can do
	// nothing but give the second factor.
	c = ta.passwordStep(t, u.Email, "/login/mfa")
	for _, path := range []string{"/", "/account", "/account/security", "/dashboards/access"} {
		if res, _ := ta.get(t, c, path, false); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login/mfa" {
			t.Errorf("GET %s half-authenticated: %d to %q, want 303 to /login/mfa", path, res.StatusCode, res.Header.Get("Location"))
		}
	}
	if res, _ := ta.get(t, c, "/account", true); res.StatusCode != http.StatusUnauthorized || res.Header.Get("HX-Redirect") != "/login/mfa" {
		t.Errorf("htmx half-authenticated: %d HX-Redirect %q", res.StatusCode, res.Header.Get("HX-Redirect"))
	}
	if got := ta.sessionMethods(t, u.ID); !slices.Equal(got, []string{db.MethodMFAPending, db.MethodPassword}) {
		t.Errorf("session methods = %q, want the enrolling browser's and a half-authenticated one", got)
	}
	if res, body := ta.get(t, c, "/login/mfa", false); res.StatusCode != http.StatusOK || !strings.Contains(body, "Code from your authenticator app") {
		t.Fatalf("second factor page: %d\n%s", res.StatusCode, body)
	}

	// The code used to confirm is spent: replaying it within its window fails.
	res, body := ta.post(t, c, "/login/mfa", url.Values{"code": {ta.code(t, secret)}})
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "already used") {
		t.Errorf("replayed code: %d\n%s", res.StatusCode, body)
	}
	if res, body := ta.post(t, c, "/login/mfa", url.Values{"code": {"123456"}}); res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "That code is not right") {
		t.Errorf("wrong code: %d\n%s", res.StatusCode, body)
	}
	if n := ta.countAudit(t, db.ActionMFAFailed, u.Email); n != 2 {
		t.Errorf("%d failed second factors audited, want 2", n)
	}

	// The next code signs in, to where the login was going.
	ta.Clock.Advance(30 * time.Second)
	code := ta.code(t, secret)
	before := ta.sessionCookie(c)
	res, _ = ta.post(t, c, "/login/mfa", url.Values{"code": {code[:3] + " " + code[3:]}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
		t.Fatalf("right code: %d to %q, want 303 to /account", res.StatusCode, res.Header.Get("Location"))
	}
	if ta.sessionCookie(c) == before {
		t.Error("the session id did not rotate after the second factor")
	}
	if res, _ := ta.get(t, c, "/account", false); res.StatusCode != http.StatusOK {
		t.Errorf("GET /account signed in: %d", res.StatusCode)
	}
	if got := ta.sessionMethods(t, u.ID); !slices.Contains(got, db.MethodPasswordTOTP) || slices.Contains(got, db.MethodMFAPending) {
		t.Errorf("session methods = %q, want %q and no half-authenticated one", got, db.MethodPasswordTOTP)
	}

	// The same code cannot sign in a second browser.
	c2 := ta.passwordStep(t, u.Email, "/login/mfa")
	if res, _ := ta.post(t, c2, "/login/mfa", url.Values{"code": {code}}); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("code replayed in another browser: %d, want 401", res.StatusCode)
	}
}

func TestRecoveryCodeWorksOnce(t *testing.T) {
	ta := newTestApp(t)
	u := ta.createUser(t, "rex@example.com", false)
	_, codes := ta.enrolTOTP(t, ta.login(t, u.Email))

	c := ta.passwordStep(t, u.Email, "/login/mfa")
	if res, _ := ta.post(t, c, "/login/mfa", url.Values{"code": {strings.ToUpper(codes[3])}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("recovery code: %d, want 303", res.StatusCode)
	}
	if got := ta.sessionMethods(t, u.ID); !strings.Contains(strings.Join(got, ","), db.MethodPasswordRecovery) {
		t.Errorf("session methods = %q, want one %q", got, db.MethodPasswordRecovery)
	}
	if ta.countAudit(t, db.ActionRecoveryUsed, u.Email) != 1 {
		t.Error("recovery code use not audited")
	}
	c = ta.passwordStep(t, u.Email, "/login/mfa")
	if res, _ := ta.post(t, c, "/login/mfa", url.Values{"code": {codes[3]}}); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("the same recovery code again: %d, want 401", res.StatusCode)
	}
	if _, body := ta.get(t, ta.loginWithCode(t, u.Email, codes[4]), "/account/security", false); !strings.Contains(body, `<strong id="recovery-left">8</strong>`) {
		t.Errorf("security page does not say 8 codes are left:\n%s", body)
	}
}

// loginWithCode signs in with the password and a code (or recovery code).
func (ta *testApp) loginWithCode(t testing.TB, email, code string) *http.Client {
	t.Helper()
	c := ta.passwordStep(t, email, "/login/mfa")
	if res, body := ta.post(t, c, "/login/mfa", url.Values{"code": {code}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("second factor: %d\n%s", res.StatusCode, body)
	}
	return c
}

func TestSecondFactorGuessesAreThrottled(t *testing.T) {
	ta := newTestApp(t)
	u := ta.createUser(t, "guy@example.com", false)
	secret, _ := ta.enrolTOTP(t, ta.login(t, u.Email))
	ta.Clock.Advance(30 * time.Second)
	c := ta.passwordStep(t, u.Email, "/login/mfa")
	for i := range 5 {
		if res, _ := ta.post(t, c, "/login/mfa", url.Values{"code": {"000000"}}); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i+1, res.StatusCode)
		}
		ta.Clock.Advance(5 * time.Second)
	}
	// The sixth try is refused even with the right code; a fresh password
	// step does not reset the count.
	c = ta.passwordStep(t, u.Email, "/login/mfa")
	res, body := ta.post(t, c, "/login/mfa", url.Values{"code": {ta.code(t, secret)}})
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many wrong codes") {
		t.Fatalf("throttled: %d Retry-After %q\n%s", res.StatusCode, res.Header.Get("Retry-After"), body)
	}
	if ta.countAudit(t, db.ActionMFAThrottled, u.Email) != 1 {
		t.Error("throttling not audited")
	}
	ta.Clock.Advance(5 * time.Minute)
	if res, _ := ta.post(t, c, "/login/mfa", url.Values{"code": {ta.code(t, secret)}}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("after the window: %d, want 303", res.StatusCode)
	}
}

func TestRequireMFAAdminsForcesEnrolment(t *testing.T) {
	ta := newTestApp(t, func(c *Config, _ *dashboards.Registry) { c.RequireMFA = "admins" })
	admin := ta.createUser(t, "root@example.com", true)
	ta.createUser(t, "viv@example.com", false)

	// Someone not required goes straight in.
	ta.passwordStep(t, "viv@example.com", "/account")

	c := ta.passwordStep(t, admin.Email, "/account/security")
	for _, path := range []string{"/", "/admin", "/admin/users", "/account"} {
		if res, _ := ta.get(t, c, path, false); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account/security" {
			t.Errorf("GET %s before enrolling: %d to %q, want 303 to /account/security", path, res.StatusCode, res.Header.Get("Location"))
		}
	}
	if res, _ := ta.post(t, c, "/admin/users", url.Values{"email": {"new@example.com"}}); res.StatusCode != http.StatusSeeOther ||
		res.Header.Get("Location") != "/account/security" {
		t.Errorf("POST /admin/users before enrolling: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if _, err := ta.store.UserByEmail(context.Background(), "new@example.com"); err == nil {
		t.Error("an admin who had not enrolled created a user")
	}
	res, body := ta.get(t, c, "/account/security", false)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "requires a second factor") {
		t.Fatalf("enrolment page: %d\n%s", res.StatusCode, body)
	}
	if got := ta.sessionMethods(t, admin.ID); len(got) != 1 || got[0] != db.MethodEnrolPending {
		t.Errorf("session methods = %q, want one %q", got, db.MethodEnrolPending)
	}
	ta.enrolTOTP(t, c)
	if res, _ := ta.get(t, c, "/admin", false); res.StatusCode != http.StatusOK {
		t.Errorf("GET /admin after enrolling: %d, want 200", res.StatusCode)
	}
	if got := ta.sessionMethods(t, admin.ID); len(got) != 1 || got[0] != db.MethodPasswordTOTP {
		t.Errorf("session methods = %q, want one %q", got, db.MethodPasswordTOTP)
	}
	// Keeping one: the last factor cannot be removed while required.
	if res, body := ta.post(t, c, "/account/security/totp/remove", nil); res.StatusCode != http.StatusConflict || !strings.Contains(body, "must keep a second factor") {
		t.Errorf("removing the only factor: %d\n%s", res.StatusCode, body)
	}
}

func TestResetMFAEndsTheUsersSessions(t *testing.T) {
	ta := newTestApp(t)
	admin := ta.createUser(t, "root@example.com", true)
	u := ta.createUser(t, "ria@example.com", false)
	secret, _ := ta.enrolTOTP(t, ta.login(t, u.Email))
	ta.Clock.Advance(30 * time.Second)
	userC := ta.loginWithCode(t, u.Email, ta.code(t, secret))
	adminC := ta.login(t, admin.Email)

	// The admin sees how the session was authenticated, and the factors.
	_, body := ta.get(t, adminC, "/admin/users/"+strconv.FormatInt(u.ID, 10), false)
	if !strings.Contains(body, "Password + authenticator app") || !strings.Contains(body, "Reset second factors") ||
		!strings.Contains(body, "<li>10 unused recovery codes</li>") || strings.Contains(body, "(s)") {
		t.Fatalf("user page:\n%s", body)
	}
	res, _ := ta.post(t, adminC, "/admin/users/"+strconv.FormatInt(u.ID, 10)+"/mfa/reset", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("reset: %d", res.StatusCode)
	}
	if res, _ := ta.get(t, userC, "/account", false); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Errorf("the user's session survived the reset: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if ta.countAudit(t, db.ActionMFAReset, u.Email) != 1 {
		t.Error("reset not audited")
	}
	// Now the password alone signs in.
	ta.passwordStep(t, u.Email, "/account")

	// The command line does the same, for anyone, the last admin included.
	secret, _ = ta.enrolTOTP(t, adminC)
	ta.Clock.Advance(30 * time.Second)
	adminC = ta.loginWithCode(t, admin.Email, ta.code(t, secret))
	// The app's database, SQLite or (GATEHOUSE_TEST_APP_DB=postgres) PostgreSQL.
	cli := &cliEnv{t: t, data: filepath.Join(ta.Dir, "data"), dsn: ta.cfg.DSN}
	run := func(args ...string) (string, string, int) { return cli.run("", args...) }
	out, errOut, code := run("users", "reset-mfa", admin.Email)
	if code != 0 || !strings.Contains(out, "second factors of root@example.com removed") || !strings.Contains(out, "logged out") {
		t.Errorf("reset-mfa: exit %d, output %q, stderr %q", code, out, errOut)
	}
	if res, _ := ta.get(t, adminC, "/admin", false); res.StatusCode != http.StatusSeeOther {
		t.Errorf("the admin's session survived reset-mfa: %d", res.StatusCode)
	}
	if n := ta.countAudit(t, db.ActionMFAReset, admin.Email); n != 1 {
		t.Errorf("reset-mfa audited %d times, want 1", n)
	}
	if _, errOut, code := run("users", "reset-mfa", "nobody@example.com"); code != 1 || !strings.Contains(errOut, "no user with email") {
		t.Errorf("unknown user: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := run("users", "reset-mfa"); code != 2 || !strings.Contains(errOut, "missing arguments") {
		t.Errorf("no email: exit %d, stderr %q", code, errOut)
	}
}

func TestLogoutEndsAHalfAuthenticatedSession(t *testing.T) {
	ta := newTestApp(t)
	u := ta.createUser(t, "lou@example.com", false)
	ta.enrolTOTP(t, ta.login(t, u.Email))
	c := ta.passwordStep(t, u.Email, "/login/mfa")
	if res, _ := ta.post(t, c, "/logout", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if got := ta.sessionMethods(t, u.ID); slices.Contains(got, db.MethodMFAPending) {
		t.Errorf("session methods after logging out = %q: the half-authenticated session survived", got)
	}
}

// TestTOTPConfirmIsThrottledAuditedAndNeedsARecentSignIn: confirming a new
// authenticator app is guarded like the second-factor step: each wrong code
// is audited, the sixth try within the window is refused (429) even with
// the right code, and a session older than 15 minutes must sign in again.
func TestTOTPConfirmIsThrottledAuditedAndNeedsARecentSignIn(t *testing.T) {
	ta := newTestApp(t)
	ctx := context.Background()
	u := ta.createUser(t, "tom@example.com", false)
	c := ta.login(t, u.Email)
	start := func(c *http.Client) string {
		t.Helper()
		res, body := ta.post(t, c, "/account/security/totp", nil)
		m := totpSecretRE.FindStringSubmatch(body)
		if res.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("start TOTP: %d\n%s", res.StatusCode, body)
		}
		return strings.ReplaceAll(m[1], " ", "")
	}
	enabled := func(id int64) bool {
		f, err := ta.store.Factors(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return f.TOTP
	}
	secret := start(c)
	for i := range 5 {
		res, body := ta.post(t, c, "/account/security/totp/confirm", url.Values{"code": {"000000"}})
		if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "That code is not right") {
			t.Fatalf("wrong code %d: %d\n%s", i+1, res.StatusCode, body)
		}
		ta.Clock.Advance(time.Second)
	}
	if n := ta.countAudit(t, db.ActionTOTPConfirmFailed, u.Email); n != 5 {
		t.Errorf("%d wrong setup codes audited, want 5", n)
	}
	res, body := ta.post(t, c, "/account/security/totp/confirm", url.Values{"code": {ta.code(t, secret)}})
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many wrong codes") {
		t.Fatalf("sixth try: %d Retry-After %q, want 429\n%s", res.StatusCode, res.Header.Get("Retry-After"), body)
	}
	if enabled(u.ID) {
		t.Fatal("a throttled confirmation turned the app on")
	}
	if ta.countAudit(t, db.ActionMFAThrottled, u.Email) != 1 {
		t.Error("throttled setup not audited")
	}
	ta.Clock.Advance(5 * time.Minute)
	if res, body := ta.post(t, c, "/account/security/totp/confirm", url.Values{"code": {ta.code(t, secret)}}); res.StatusCode != http.StatusOK || !enabled(u.ID) {
		t.Fatalf("after the window: %d, want 200 and the app on\n%s", res.StatusCode, body)
	}

	// A session signed in more than 15 minutes ago must sign in again.
	v := ta.createUser(t, "val@example.com", false)
	c = ta.login(t, v.Email)
	secret = start(c)
	ta.Clock.Advance(16 * time.Minute)
	res, body = ta.post(t, c, "/account/security/totp/confirm", url.Values{"code": {ta.code(t, secret)}})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "sign in again") {
		t.Fatalf("confirm from an old session: %d, want 403\n%s", res.StatusCode, body)
	}
	if enabled(v.ID) {
		t.Error("an old session turned the app on")
	}
}

// TestTOTPWindowIsOneStep: the second-factor step accepts a code one step
// (30 s) old or ahead, for clock drift, and refuses one two steps (60 s)
// old or ahead: a wider window would multiply what a guess can hit.
func TestTOTPWindowIsOneStep(t *testing.T) {
	ta := newTestApp(t)
	u := ta.createUser(t, "win@example.com", false)
	secret, _ := ta.enrolTOTP(t, ta.login(t, u.Email))
	ta.Clock.Advance(10 * time.Minute) // every step below is newer than the one used to confirm
	codeAt := func(d time.Duration) string {
		t.Helper()
		c, err := totp.GenerateCode(secret, ta.Clock.Now().Add(d))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := ta.passwordStep(t, u.Email, "/login/mfa")
	for _, d := range []time.Duration{-60 * time.Second, 60 * time.Second} {
		res, body := ta.post(t, c, "/login/mfa", url.Values{"code": {codeAt(d)}})
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "That code is not right") {
			t.Errorf("code from %v: %d, want 401 (not right)\n%s", d, res.StatusCode, body)
		}
	}
	if got := ta.sessionMethods(t, u.ID); slices.Contains(got, db.MethodPasswordTOTP) {
		t.Fatalf("a code two steps away signed in: %q", got)
	}
	// One step either way is drift, accepted (the later step last, as a
	// step older than the last accepted one is a replay).
	for _, d := range []time.Duration{-30 * time.Second, 30 * time.Second} {
		c := ta.passwordStep(t, u.Email, "/login/mfa")
		if res, body := ta.post(t, c, "/login/mfa", url.Values{"code": {codeAt(d)}}); res.StatusCode != http.StatusSeeOther {
			t.Errorf("code from %v: %d, want 303\n%s", d, res.StatusCode, body)
		}
	}
}
