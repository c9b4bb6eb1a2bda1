package app

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

// TestSingleLabelDomains: an intranet address such as carol@corp is an
// account like any other when an admin creates it (and its owner signs in
// with it), while the public sign-up form takes it only from a domain the
// admin listed in --signup-domains.
func TestSingleLabelDomains(t *testing.T) {
	ta := newTestApp(t, func(c *Config, _ *dashboards.Registry) { c.AllowSignup = true })
	admin := ta.login(t, ta.createUser(t, "root@example.com", true).Email)
	res, body := ta.post(t, admin, "/admin/users", url.Values{"email": {"Carol@Corp"}, "name": {"Carol"}})
	if res.StatusCode >= 400 {
		t.Fatalf("admin creating carol@corp: %d\n%s", res.StatusCode, body)
	}
	u, err := ta.store.UserByEmail(context.Background(), "carol@corp")
	if err != nil {
		t.Fatalf("carol@corp was not created: %v", err)
	}
	hash, err := ta.hasher.Hash(context.Background(), testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := ta.store.SetPassword(context.Background(), db.Actor{}, u.ID, hash, false); err != nil {
		t.Fatal(err)
	}
	ta.login(t, "carol@corp")

	res, body = ta.post(t, ta.client(), "/signup", signupForm("dave@corp", testPassword))
	wantStatus(t, res, body, 422)
	if want := htmlEscape(`"dave@corp" is not a valid email address: the domain needs a dot`); !strings.Contains(body, want) {
		t.Errorf("sign-up of dave@corp without --signup-domains: body lacks %q", want)
	}

	listed := newTestApp(t, func(c *Config, _ *dashboards.Registry) { c.AllowSignup = true; c.SignupDomains = []string{"corp"} })
	res, body = listed.post(t, listed.client(), "/signup", signupForm("dave@corp", testPassword))
	wantStatus(t, res, body, 303)
}
