package app

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/uptrace/bun"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

// forwardedFor makes c's requests come from ip, as a trusted reverse
// proxy on loopback would say (the app must run with TrustProxy).
func forwardedFor(c *http.Client, ip string) *http.Client {
	cc := *c
	base := http.DefaultTransport
	if c.Transport != nil {
		base = c.Transport
	}
	cc.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("X-Forwarded-For", ip)
		return base.RoundTrip(r)
	})
	return &cc
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// challengesFrom counts the ceremonies in progress begun from network.
func challengesFrom(t testing.TB, ta *testApp, column, value string) int {
	t.Helper()
	n, err := ta.store.DB.NewSelect().Table("webauthn_challenges").Where("? = ?", bun.Ident(column), value).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// TestPasskeyFloodFromOneClientLocksOutNoOne: one client (an IPv4 address,
// then many addresses of one IPv6 /64) begins passkey sign-ins far past the
// table's bound; it holds only MaxChallengesPerClient of them, every begin
// is answered, and another client still signs in with its passkey.
func TestPasskeyFloodFromOneClientLocksOutNoOne(t *testing.T) {
	ta := newPasskeyApp(t, func(c *Config, _ *dashboards.Registry) { c.TrustProxy = true })
	u := ta.createUser(t, "vic@example.com", false)
	k := ta.registerPasskey(t, forwardedFor(ta.login(t, u.Email), "198.51.100.9"), "Laptop")
	defer func(n int) { db.MaxChallenges = n }(db.MaxChallenges)
	db.MaxChallenges = 3 * db.MaxChallengesPerClient // the flood alone would fill it
	flood := func(ip func(i int) string, network string) {
		t.Helper()
		for i := range 4 * db.MaxChallengesPerClient {
			if res, out := ta.postJSON(t, forwardedFor(ta.client(), ip(i)), "/login/passkey/begin", []byte(`{}`)); res.StatusCode != http.StatusOK {
				t.Fatalf("flood begin %d from %s: %d %s", i, ip(i), res.StatusCode, out)
			}
		}
		if n := challengesFrom(t, ta, "client", network); n != db.MaxChallengesPerClient {
			t.Fatalf("%s holds %d ceremonies, want %d", network, n, db.MaxChallengesPerClient)
		}
	}
	flood(func(int) string { return "203.0.113.7" }, "203.0.113.7")
	flood(func(i int) string { return fmt.Sprintf("2001:db8:1:2::%x", i+1) }, "2001:db8:1:2::/64")

	victim := forwardedFor(ta.client(), "198.51.100.9")
	res, opts := ta.postJSON(t, victim, "/login/passkey/begin", []byte(`{}`))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("another client's begin during the flood: %d %s", res.StatusCode, opts)
	}
	if res, out := ta.postJSON(t, victim, "/login/passkey/finish", soft.get(t, []byte(opts), k)); res.StatusCode != http.StatusOK {
		t.Fatalf("another client's sign-in during the flood: %d %s", res.StatusCode, out)
	}
}

// TestPasskeyCeremoniesPerSessionAreBounded: a session that begins
// registering again and again holds at most MaxChallengesPerSession
// ceremonies, and its newest one still finishes.
func TestPasskeyCeremoniesPerSessionAreBounded(t *testing.T) {
	ta := newPasskeyApp(t)
	u := ta.createUser(t, "ses@example.com", false)
	c := ta.login(t, u.Email)
	for i := range 3 * db.MaxChallengesPerSession {
		if res, out := ta.postJSON(t, c, "/account/security/passkeys/begin", []byte(`{"name":"x"}`)); res.StatusCode != http.StatusOK {
			t.Fatalf("begin %d: %d %s", i, res.StatusCode, out)
		}
	}
	var hash string
	if err := ta.store.DB.NewSelect().Table("webauthn_challenges").Column("session_hash").Where("purpose = ?", "register").Limit(1).Scan(context.Background(), &hash); err != nil {
		t.Fatal(err)
	}
	if n := challengesFrom(t, ta, "session_hash", hash); n != db.MaxChallengesPerSession {
		t.Fatalf("the session holds %d ceremonies, want %d", n, db.MaxChallengesPerSession)
	}
	ta.registerPasskey(t, c, "After")
}
