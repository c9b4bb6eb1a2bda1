package app

import (
	"context"
	"gatehouse/db"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func setupToken(t *testing.T, ta *testApp) string {
	t.Helper()
	link, err := ta.SetupURL(context.Background())
	if err != nil || link == "" {
		t.Fatalf("SetupURL = %q, %v", link, err)
	}
	u, _ := url.Parse(link)
	return u.Query().Get("token")
}

func TestSetupCreatesFirstAdminOnce(t *testing.T) {
	ta := newTestApp(t)
	token := setupToken(t, ta)
	c := ta.client()
	res, body := ta.get(t, c, "/setup?token="+url.QueryEscape(token), false)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Create admin") {
		t.Fatalf("setup page: %d", res.StatusCode)
	}
	form := url.Values{"token": {token}, "email": {"Boss@Example.com"}, "name": {"Boss"}, "password": {testPassword}, "confirm": {testPassword}}
	res, _ = ta.post(t, c, "/setup", form)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Fatalf("setup: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res, body := ta.get(t, c, "/", false); res.StatusCode != http.StatusOK || !strings.Contains(body, "Hello, Boss") {
		t.Errorf("new admin is not logged in: %d", res.StatusCode)
	}
	u, err := ta.store.UserByEmail(context.Background(), "boss@example.com")
	if err != nil || !u.IsAdmin || !u.IsActive {
		t.Fatalf("admin row: %+v, %v", u, err)
	}
	// The setup's sign-in is the admin's first login: the users page shows
	// it, and the audit log has it.
	if u.LastLoginAt == 0 || ta.countAudit(t, db.ActionLogin, "boss@example.com") != 1 {
		t.Errorf("the setup sign-in is not a login: last login %d, %d login rows", u.LastLoginAt, ta.countAudit(t, db.ActionLogin, "boss@example.com"))
	}
	if _, body := ta.get(t, c, "/admin/users", false); strings.Contains(body, "never") || strings.Contains(body, "Never") {
		t.Errorf("the users page says the new admin never logged in:\n%s", body[strings.Index(body, "<main"):])
	}
	// The link is dead now, for GET and POST, and no new one is issued.
	if res, _ := ta.get(t, ta.client(), "/setup?token="+url.QueryEscape(token), false); res.StatusCode != http.StatusNotFound {
		t.Errorf("used token GET: %d, want 404", res.StatusCode)
	}
	form.Set("email", "second@example.com")
	if res, _ := ta.post(t, ta.client(), "/setup", form); res.StatusCode != http.StatusNotFound {
		t.Errorf("used token POST: %d, want 404", res.StatusCode)
	}
	if link, _ := ta.SetupURL(context.Background()); link != "" {
		t.Errorf("a setup link was issued although an admin exists: %s", link)
	}
	if n, _ := ta.store.CountActiveAdmins(context.Background()); n != 1 {
		t.Errorf("%d admins, want 1", n)
	}
}

func TestSetupTokenExpires(t *testing.T) {
	ta := newTestApp(t)
	token := setupToken(t, ta)
	ta.Clock.Advance(SetupTokenTTL + time.Second)
	if res, _ := ta.get(t, ta.client(), "/setup?token="+url.QueryEscape(token), false); res.StatusCode != http.StatusNotFound {
		t.Errorf("expired token: %d, want 404", res.StatusCode)
	}
	form := url.Values{"token": {token}, "email": {"boss@example.com"}, "password": {testPassword}, "confirm": {testPassword}}
	if res, _ := ta.post(t, ta.client(), "/setup", form); res.StatusCode != http.StatusNotFound {
		t.Errorf("expired token POST: %d, want 404", res.StatusCode)
	}
}

func TestSetupBadInput(t *testing.T) {
	ta := newTestApp(t)
	token := setupToken(t, ta)
	for _, tc := range []struct {
		name string
		form url.Values
		want string
	}{
		{"bad email", url.Values{"email": {"not-an-email"}, "password": {testPassword}, "confirm": {testPassword}}, "not a valid email"},
		{"short password", url.Values{"email": {"b@example.com"}, "password": {"short"}, "confirm": {"short"}}, "at least 12"},
		{"mismatch", url.Values{"email": {"b@example.com"}, "password": {testPassword}, "confirm": {testPassword + "x"}}, "do not match"},
		{"common", url.Values{"email": {"b@example.com"}, "password": {"qwertyuiop123"}, "confirm": {"qwertyuiop123"}}, "too common"},
	} {
		tc.form.Set("token", token)
		res, body := ta.post(t, ta.client(), "/setup", tc.form)
		if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d, want 422 with %q", tc.name, res.StatusCode, tc.want)
		}
	}
	if n, _ := ta.store.CountActiveAdmins(context.Background()); n != 0 {
		t.Error("bad input created an admin")
	}
	// The token survives bad input.
	if res, _ := ta.get(t, ta.client(), "/setup?token="+url.QueryEscape(token), false); res.StatusCode != http.StatusOK {
		t.Errorf("token died on bad input: %d", res.StatusCode)
	}
}

// TestLoginPageTellsAFreshInstallHowToFinishSetup.
func TestLoginPageTellsAFreshInstallHowToFinishSetup(t *testing.T) {
	ta := newTestApp(t)
	const hint = "Finish setup with the link printed in the server log"
	if _, body := ta.get(t, ta.client(), "/login", false); !strings.Contains(body, hint) {
		t.Errorf("fresh install's login page lacks %q", hint)
	}
	ta.createUser(t, "admin@example.com", true)
	if _, body := ta.get(t, ta.client(), "/login", false); strings.Contains(body, hint) {
		t.Error("the setup hint stays after an admin exists")
	}
}
