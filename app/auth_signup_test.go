package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

func signupForm(email, pw string) url.Values {
	return url.Values{"email": {email}, "name": {"New Person"}, "password": {pw}, "confirm": {pw}}
}

func TestSignupIsOffByDefault(t *testing.T) {
	ta := newTestApp(t)
	for _, htmx := range []bool{false, true} {
		res, _ := ta.get(t, ta.client(), "/signup", htmx)
		if res.StatusCode != 404 {
			t.Errorf("GET /signup: %d", res.StatusCode)
		}
	}
	res, _ := ta.post(t, ta.client(), "/signup", signupForm("a@example.com", testPassword))
	if res.StatusCode != 404 {
		t.Errorf("POST /signup: %d", res.StatusCode)
	}
	if _, err := ta.store.UserByEmail(context.Background(), "a@example.com"); err == nil {
		t.Error("user created while sign-up is off")
	}
}

func TestSignup(t *testing.T) {
	ctx := context.Background()
	ta := newTestApp(t, func(c *Config, _ *dashboards.Registry) {
		c.AllowSignup = true
		c.SignupDomains = []string{"example.com", "example.org"}
		c.SignupGroup = "Newcomers"
	})
	g := mustGroup(t, ta, "newcomers")
	if err := ta.store.AddGrant(ctx, db.Actor{}, "access", g.ID); err != nil {
		t.Fatal(err)
	}
	res, body := ta.get(t, ta.client(), "/signup", false)
	wantStatus(t, res, body, 200)
	if !strings.Contains(body, "example.com, example.org") || !strings.Contains(body, `action="/signup"`) {
		t.Error("form does not say which domains may sign up")
	}

	c := ta.client()
	res, body = ta.post(t, c, "/signup", signupForm("  Fresh@Example.org ", testPassword))
	wantStatus(t, res, body, 303)
	u, err := ta.store.UserByEmail(ctx, "fresh@example.org")
	if err != nil || u.IsAdmin || !u.IsActive || u.MustChangePassword || u.Name != "New Person" {
		t.Fatalf("user %+v %v", u, err)
	}
	if _, err := ta.store.MemberOf(ctx, g.ID, u.ID); err != nil {
		t.Error("not put in the sign-up group")
	}
	if ta.countAudit(t, db.ActionUserSignup, "fresh@example.org") != 1 {
		t.Error("sign-up not audited")
	}
	// Logged in at once, with the group's dashboards.
	if res, _ := ta.get(t, c, "/dashboards/access/panels/overview", true); res.StatusCode != 200 {
		t.Errorf("new user's dashboard: %d", res.StatusCode)
	}
	if res, _ := ta.get(t, c, "/signup", false); res.StatusCode != 303 {
		t.Error("a logged-in user gets the sign-up form")
	}

	for _, tc := range []struct {
		name string
		form url.Values
		want string
	}{
		{"other domain", signupForm("x@evil.example", testPassword), "Sign-up is open only to addresses at example.com, example.org."},
		{"subdomain", signupForm("x@mail.example.com", testPassword), "open only to addresses at"},
		{"bad email", signupForm("nope", testPassword), "is not a valid email address"},
		{"taken", signupForm("FRESH@example.org", testPassword), signupFailedMessage},
		{"short password", signupForm("y@example.com", "short"), "at least 12 characters"},
		{"common password", signupForm("y@example.com", "password1234"), "too common"},
		{"mismatch", url.Values{"email": {"y@example.com"}, "password": {testPassword}, "confirm": {testPassword + "!"}}, "do not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			audits, users := ta.totalAudit(t), countAllUsers(t, ta)
			rc := ta.client()
			res, body := ta.post(t, rc, "/signup", tc.form)
			wantStatus(t, res, body, 422)
			if !strings.Contains(body, htmlEscape(tc.want)) {
				t.Errorf("body lacks %q", tc.want)
			}
			if ta.totalAudit(t) != audits || countAllUsers(t, ta) != users || ta.sessionCookie(rc) != "" {
				t.Errorf("refused sign-up changed something: %d new audit rows, %d new users, session %q",
					ta.totalAudit(t)-audits, countAllUsers(t, ta)-users, ta.sessionCookie(rc))
			}
		})
	}
	// Signing up a taken address leaves its account as it was, and the
	// answer does not say that the address has an account.
	after, err := ta.store.UserByEmail(ctx, "fresh@example.org")
	if err != nil || after.ID != u.ID || after.Name != u.Name || after.PasswordHash != u.PasswordHash || after.UpdatedAt != u.UpdatedAt {
		t.Errorf("the taken address's account changed: before %+v, after %+v (%v)", u, after, err)
	}
	res, body = ta.post(t, ta.client(), "/signup", signupForm("fresh@example.org", testPassword))
	wantStatus(t, res, body, 422)
	for _, leak := range []string{"already exists", "already registered", "already taken", "is taken"} {
		if strings.Contains(body, leak) {
			t.Errorf("the answer for a taken address says %q", leak)
		}
	}
	if res, _ := ta.get(t, c, "/", false); res.StatusCode != 200 {
		t.Errorf("the first sign-up's session ended after the refused ones: %d", res.StatusCode)
	}
}

// countAllUsers counts every user row.
func countAllUsers(t testing.TB, ta *testApp) int {
	t.Helper()
	n, err := ta.store.DB.NewSelect().Model((*db.User)(nil)).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// TestSignupRefusedWithoutItsGroup: when --signup-group names a group that
// does not exist, sign-up is refused (503, logged) and no user is created.
func TestSignupRefusedWithoutItsGroup(t *testing.T) {
	ta := newTestApp(t, func(c *Config, _ *dashboards.Registry) {
		c.AllowSignup = true
		c.SignupGroup = "missing"
	})
	res, body := ta.get(t, ta.client(), "/signup", false)
	wantStatus(t, res, body, 503)
	res, body = ta.post(t, ta.client(), "/signup", signupForm("a@example.com", testPassword))
	wantStatus(t, res, body, 503)
	if !strings.Contains(body, "Sign-up is unavailable") {
		t.Error("503 does not say why")
	}
	if _, err := ta.store.UserByEmail(context.Background(), "a@example.com"); err == nil {
		t.Error("a user was created without the sign-up group")
	}
	if !strings.Contains(ta.Logs.String(), "sign-up group does not exist") {
		t.Error("not logged")
	}
	// The store refuses too, inside its transaction.
	_, err := ta.store.SignupUser(context.Background(), db.Actor{}, db.NewUser{Email: "b@example.com", PasswordHash: "x"}, "missing")
	if err == nil {
		t.Fatal("SignupUser without its group succeeded")
	}
	if _, err := ta.store.UserByEmail(context.Background(), "b@example.com"); err == nil {
		t.Error("SignupUser left a user behind")
	}
}

// TestSignupWithoutGroupOrDomains: with only --allow-signup, any domain may
// register and the user starts in no group.
func TestSignupWithoutGroupOrDomains(t *testing.T) {
	ta := newTestApp(t, func(c *Config, _ *dashboards.Registry) { c.AllowSignup = true })
	res, body := ta.post(t, ta.client(), "/signup", signupForm("anyone@anywhere.example", testPassword))
	wantStatus(t, res, body, 303)
	u, err := ta.store.UserByEmail(context.Background(), "anyone@anywhere.example")
	if err != nil {
		t.Fatal(err)
	}
	if gs, _ := ta.store.GroupsOfUser(context.Background(), u.ID); len(gs) != 0 {
		t.Errorf("groups %v", gs)
	}
}

func TestLoginPageLinksToSignupOnlyWhenOn(t *testing.T) {
	_, body := newTestApp(t).get(t, &http.Client{}, "/login", false)
	if strings.Contains(body, `href="/signup"`) {
		t.Error("login page links to sign-up while it is off")
	}
	on := newTestApp(t, func(c *Config, _ *dashboards.Registry) { c.AllowSignup = true })
	_, body = on.get(t, &http.Client{}, "/login", false)
	if !strings.Contains(body, `href="/signup"`) {
		t.Error("login page does not link to sign-up while it is on")
	}
}
