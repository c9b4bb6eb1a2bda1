package app

import (
	"gatehouse/app/dashboards"
	"gatehouse/internal/testidp"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSSORechecksAreVisible: every re-check is counted by its result
// (gatehouse_oidc_rechecks_total), and one that postpones or ends a
// session says so in the log as a warning.
func TestSSORechecksAreVisible(t *testing.T) {
	e := newSSOApp(t, func(c *Config, _ *dashboards.Registry) { c.MetricsAddr = "127.0.0.1:0" })
	e.addIdPUser("fay", "fay@example.com")
	c := e.mustSignIn(t, "fay")
	step := func(what string, want int) {
		t.Helper()
		e.Clock.Advance(16 * time.Minute)
		if res, _ := e.get(t, c, "/", false); res.StatusCode != want {
			t.Fatalf("%s: %d, want %d", what, res.StatusCode, want)
		}
	}
	step("a re-check the IdP answers", http.StatusOK)
	e.idp.Stop()
	step("a re-check while the IdP is down", http.StatusOK)
	e.idp.Restart()
	e.idp.Update("fay", func(u *testidp.User) { u.Disabled = true })
	step("a re-check the IdP refuses", http.StatusSeeOther)

	m := scrape(t, e.App)
	for _, want := range []string{`gatehouse_oidc_rechecks_total{result="kept"} 1`, `gatehouse_oidc_rechecks_total{result="postponed"} 1`,
		`gatehouse_oidc_rechecks_total{result="ended"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	logs := e.Logs.String()
	if !strings.Contains(logs, "level=WARN msg=\"SSO re-check postponed: the identity provider cannot be reached\"") ||
		!strings.Contains(logs, "level=WARN msg=\"SSO session ended by the re-check\"") {
		t.Errorf("the log does not warn about the postponed and the ended re-check:\n%s", logs)
	}
}
