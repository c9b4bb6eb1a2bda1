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

// scimRequest sends a SCIM request through the whole server with auth as
// the Authorization header ("" for none), from client c.
func (ta *testApp) scimRequest(t testing.TB, c *http.Client, method, path, body, auth string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, ta.Server.URL+"/scim/v2"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/scim+json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return ta.do(t, c, req)
}

// /scim/v2 takes a bearer token and nothing else: an admin's session
// cookie gets 401 in SCIM JSON, not the login page. It is outside the
// browser's CSRF check (a bearer token is not sent by a browser on its
// own), and that exempts nothing else: a cross-site form post with the
// admin's cookie is still refused.
func TestSCIMTakesBearerTokensOnly(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "admin@example.com", true)
	adminClient := ta.login(t, "admin@example.com")
	tok, err := ta.store.CreateSCIMToken(context.Background(), db.Actor{Email: "test"}, "okta")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/Users", "/Groups", "/ServiceProviderConfig", "/nope", ""} {
		res, body := ta.scimRequest(t, adminClient, "GET", path, "", "", nil)
		if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Content-Type") != "application/scim+json" ||
			!strings.Contains(body, `"status":"401"`) || strings.Contains(body, "<html") {
			t.Errorf("GET /scim/v2%s with the admin's cookie: %d %s %s", path, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	}
	crossSite := map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
	res, body := ta.scimRequest(t, ta.client(), "POST", "/Users", `{"userName":"ann@example.com"}`, "Bearer "+tok, crossSite)
	if res.StatusCode != http.StatusCreated {
		t.Errorf("cross-site SCIM create with the token: %d %s", res.StatusCode, body)
	}
	res, body = ta.scimRequest(t, adminClient, "POST", "/Users", `{"userName":"bob@example.com"}`, "", crossSite)
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("cross-site SCIM create with the admin's cookie: %d %s", res.StatusCode, body)
	}
	req, _ := http.NewRequest("POST", ta.Server.URL+"/admin/groups", strings.NewReader(url.Values{"name": {"evil"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range crossSite {
		req.Header.Set(k, v)
	}
	if res, _ := ta.do(t, adminClient, req); res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site admin form post: %d, want 403", res.StatusCode)
	}
	if _, err := ta.store.GroupByName(context.Background(), "evil"); err == nil {
		t.Error("the cross-site form post created a group")
	}
}

// A SCIM deactivation goes through the one deactivation path: the
// person's signed-in session ends at once.
func TestSCIMDeactivationEndsSessions(t *testing.T) {
	ta := newTestApp(t, func(c *Config, _ *dashboards.Registry) { c.OIDCDomains = []string{"example.com"} })
	ta.createUser(t, "ann@example.com", false)
	ann := ta.login(t, "ann@example.com")
	if res, _ := ta.get(t, ann, "/", false); res.StatusCode != http.StatusOK {
		t.Fatalf("home before: %d", res.StatusCode)
	}
	tok, err := ta.store.CreateSCIMToken(context.Background(), db.Actor{Email: "test"}, "entra")
	if err != nil {
		t.Fatal(err)
	}
	res, body := ta.scimRequest(t, ta.client(), "POST", "/Users", `{"userName":"ann@example.com","externalId":"e1"}`, "Bearer "+tok, nil)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("link: %d %s", res.StatusCode, body)
	}
	if res, _ := ta.get(t, ann, "/", false); res.StatusCode != http.StatusOK {
		t.Fatalf("linking ended the session: %d", res.StatusCode)
	}
	id := ta.userID(t, "ann@example.com")
	res, body = ta.scimRequest(t, ta.client(), "PATCH", "/Users/"+id,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":false}]}`, "Bearer "+tok, nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"active":false`) {
		t.Fatalf("deactivate: %d %s", res.StatusCode, body)
	}
	if res, _ := ta.get(t, ann, "/", false); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Errorf("home after the SCIM deactivation: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if n := ta.countAudit(t, db.ActionUserDeactivate, "ann@example.com"); n != 1 {
		t.Errorf("%d deactivation rows", n)
	}
}

func (ta *testApp) userID(t *testing.T, email string) string {
	t.Helper()
	u, err := ta.store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return idStr(u.ID)
}
