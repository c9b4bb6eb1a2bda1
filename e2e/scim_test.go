package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSCIMDeprovisioningCutsOpenPage: alice has the Sales dashboard open;
// the identity provider deactivates her over SCIM (Okta's path-less
// replace of active). Her session ends and the access feed sends her
// open page to the login form at once, as a deactivation in the admin
// panel or the command line does.
func TestSCIMDeprovisioningCutsOpenPage(t *testing.T) {
	b := newBrowser(t)
	// --oidc-domains lets SCIM link the existing alice@demo.example.
	srv := startServer(t, []string{"GATEHOUSE_PANEL_REFRESH=1s"}, "--demo", "--oidc-domains", "demo.example")
	token := strings.TrimSpace(srv.cli(t, "scim", "token", "create", "okta"))
	scim := func(method, path, body string) map[string]any {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+"/scim/v2"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %v %v", method, path, res.StatusCode, out, err)
		}
		return out
	}
	user := scim("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice@demo.example",
		"name":{"givenName":"Alice","familyName":"Demo"},"externalId":"00u1alice","active":true}`)
	id, _ := user["id"].(string)

	alice := b.newTab(t, "alice")
	defer alice.assertClean(t)
	// Five rounds: deprovision with alice's dashboard open, then the IdP
	// reactivates her and she signs in again. The slowest of five is
	// logged as the p95 the issue asks about (the bound waited for is
	// liveBound, wide for a loaded CI machine).
	const rounds = 5
	var took []time.Duration
	for round := range rounds {
		logIn(t, alice, srv.URL, "alice@demo.example", demoPassword)
		alice.open(t, srv.URL+"/dashboards/sales")
		waitDashboard(t, alice)
		start := time.Now()
		if got := scim("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`); got["active"] != false {
			t.Fatalf("PATCH answered %v", got)
		}
		alice.waitFor(t, "the login page", `location.pathname === "/login" && !!document.querySelector('form[action="/login"]')`, liveBound)
		took = append(took, time.Since(start))
		var next string
		alice.eval(t, `document.querySelector('input[name="next"]').value`, &next)
		if next != "/dashboards/sales" {
			t.Errorf("round %d: login form next = %q, want /dashboards/sales", round+1, next)
		}
		if round < rounds-1 {
			scim("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":true}]}`)
		}
	}
	slices.Sort(took)
	t.Logf("deprovisioned over SCIM: the open page showed the login form after %v (slowest of %d, the p95 here: %v)", took, rounds, took[len(took)-1].Round(time.Millisecond))
	if out := srv.cli(t, "audit", "list", "--limit", "20"); !strings.Contains(out, "scim:okta") || !strings.Contains(out, "user.deactivate") {
		t.Errorf("the audit log has no deactivation by scim:okta:\n%s", out)
	}
}
