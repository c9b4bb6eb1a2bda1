package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

func TestClientIPWalksForwardedForFromTheRight(t *testing.T) {
	mustProxies := func(s string) Config {
		p, err := ParseTrustedProxies(s)
		if err != nil {
			t.Fatal(err)
		}
		return Config{TrustedProxies: p}
	}
	loopback := Config{TrustedProxies: loopbackProxies}
	lan := mustProxies("10.0.0.0/8, 192.0.2.7")
	for _, tc := range []struct {
		name   string
		cfg    Config
		remote string
		xff    []string
		want   string
	}{
		{"no proxies: the header is ignored", Config{}, "198.51.100.1:1234", []string{"6.6.6.6"}, "198.51.100.1"},
		{"no header", loopback, "127.0.0.1:1234", nil, "127.0.0.1"},
		{"forged first entry", loopback, "127.0.0.1:1234", []string{"6.6.6.6, 203.0.113.9"}, "203.0.113.9"},
		{"forged line before the proxy's line", loopback, "127.0.0.1:1234", []string{"6.6.6.6", "203.0.113.9"}, "203.0.113.9"},
		{"forged loopback entry", loopback, "127.0.0.1:1234", []string{"127.0.0.1", "203.0.113.9"}, "203.0.113.9"},
		{"remote not a trusted proxy", lan, "203.0.113.50:1234", []string{"6.6.6.6"}, "203.0.113.50"},
		{"two trusted hops", lan, "10.1.1.1:1234", []string{"6.6.6.6, 203.0.113.9, 10.0.0.5"}, "203.0.113.9"},
		{"trusted single address", lan, "192.0.2.7:1234", []string{"203.0.113.9, 10.2.2.2", "192.0.2.7"}, "203.0.113.9"},
		{"garbage left of the client", lan, "10.1.1.1:1", []string{"not-an-ip, 203.0.113.9"}, "203.0.113.9"},
		{"garbage from a trusted hop", lan, "10.1.1.1:1", []string{"203.0.113.9, garbage, 10.0.0.5"}, "10.0.0.5"},
		{"all hops trusted", lan, "10.1.1.1:1", []string{"10.0.0.9, 10.0.0.5"}, "10.0.0.9"},
		{"port and IPv6", lan, "[::ffff:10.1.1.1]:1", []string{"[2001:db8::1]:4711"}, "2001:db8::1"},
		{"empty entries", lan, "10.1.1.1:1", []string{" , 203.0.113.9 ,"}, "203.0.113.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &App{cfg: tc.cfg}
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := a.clientIP(r); got != tc.want {
				t.Errorf("clientIP = %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := ParseTrustedProxies("10.0.0.0/8,nonsense"); err == nil || !strings.Contains(err.Error(), `"nonsense"`) {
		t.Errorf("bad CIDR: err %v", err)
	}
}

// TestForgedForwardedForBehindProxy: behind --trust-proxy, a client that
// sends its own X-Forwarded-For (first in the line, or as a line of its
// own before the proxy's) is still recorded, and throttled, by the address
// the proxy saw.
func TestForgedForwardedForBehindProxy(t *testing.T) {
	ta := newTestApp(t, func(c *Config, _ *dashboards.Registry) { c.TrustProxy = true; c.IPFailures = 3 })
	ta.createUser(t, "ann@example.com", false)
	try := func(lines ...string) *http.Response {
		form := url.Values{"email": {"nobody" + lines[0] + "@example.com"}, "password": {"wrong password"}}
		req, _ := http.NewRequest("POST", ta.Server.URL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, l := range lines {
			req.Header.Add("X-Forwarded-For", l)
		}
		res, _ := ta.do(t, ta.client(), req)
		return res
	}
	// The client forges a different address each time; the proxy (the test
	// server's loopback peer) appends the real one, 203.0.113.9.
	try("6.6.6.1, 203.0.113.9")
	try("6.6.6.2", "203.0.113.9")
	try("6.6.6.3", "198.51.100.1, 203.0.113.9")
	var rows []db.AuditEvent
	if err := ta.store.DB.NewSelect().Model(&rows).Where("action = ?", db.ActionLoginFailed).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d failed-login rows, want 3", len(rows))
	}
	for _, r := range rows {
		if r.IP != "203.0.113.9" {
			t.Errorf("failed login recorded from %q, want the proxy's 203.0.113.9", r.IP)
		}
	}
	if res := try("6.6.6.4", "203.0.113.9"); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("fourth failure from one real address behind forged ones: %d, want 429", res.StatusCode)
	}
}
