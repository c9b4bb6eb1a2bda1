package app

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"gatehouse/db"
)

// An admin makes a SCIM token on the SCIM page (shown once), sees each
// token's last request and last error there, and revokes it; each change
// is audited with the admin as the actor.
func TestAdminSCIMPage(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "admin@example.com", true)
	c := ta.login(t, "admin@example.com")

	res, body := ta.get(t, c, "/admin/scim", false)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "No tokens yet") || !strings.Contains(body, ta.cfg.PublicURL()+"/scim/v2") ||
		!strings.Contains(body, `aria-current="page"`) {
		t.Fatalf("empty page: %d %s", res.StatusCode, body)
	}
	res, body = ta.post(t, c, "/admin/scim/tokens", url.Values{"name": {"okta"}})
	m := regexp.MustCompile(`<code class="temp-password" id="scim-token">(scim_[A-Za-z0-9_-]+)</code>`).FindStringSubmatch(body)
	if res.StatusCode != http.StatusOK || m == nil || !strings.Contains(body, "shown only once") {
		t.Fatalf("create: %d %s", res.StatusCode, body)
	}
	tok := m[1]
	if _, body := ta.get(t, c, "/admin/scim", false); strings.Contains(body, tok) {
		t.Error("the token is shown again")
	}
	for _, f := range []struct{ name, want string }{
		{"okta", "A token named “okta” exists"},
		{"bad name", "must be 1–64 letters"},
		{"", "must be 1–64 letters"},
	} {
		if res, body := ta.post(t, c, "/admin/scim/tokens", url.Values{"name": {f.name}}); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, f.want) {
			t.Errorf("create %q: %d, want 422 saying %q", f.name, res.StatusCode, f.want)
		}
	}

	// A provisioned user's page says so; another's does not.
	res, body = ta.scimRequest(t, ta.client(), "POST", "/Users", `{"userName":"pat@example.com","externalId":"okta-00u1"}`, "Bearer "+tok, nil)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("SCIM create: %d %s", res.StatusCode, body)
	}
	if _, body := ta.get(t, c, "/admin/users/"+ta.userID(t, "pat@example.com"), false); !strings.Contains(body, "Provisioned by the identity provider") ||
		!strings.Contains(body, "as “pat@example.com” (its id “okta-00u1”).") {
		t.Error("the provisioned user's page does not say the IdP manages them")
	}
	if _, body := ta.get(t, c, "/admin/users/"+ta.userID(t, "admin@example.com"), false); strings.Contains(body, "Provisioned by") {
		t.Error("the admin's page says they are provisioned")
	}
	// One good and one bad request with the token.
	if res, body := ta.scimRequest(t, ta.client(), "GET", "/Users?count=1", "", "Bearer "+tok, nil); res.StatusCode != 200 {
		t.Fatalf("SCIM with the new token: %d %s", res.StatusCode, body)
	}
	if res, _ := ta.scimRequest(t, ta.client(), "POST", "/Groups", `{"displayName":`, "Bearer "+tok, nil); res.StatusCode != 400 {
		t.Fatalf("bad SCIM request: %d", res.StatusCode)
	}
	_, body = ta.get(t, c, "/admin/scim", false)
	row := body[strings.Index(body, `id="scim-token-okta"`):]
	row = row[:strings.Index(row, "</tr>")]
	if !strings.Contains(row, "POST /Groups 400") || !strings.Contains(row, "not valid JSON") {
		t.Errorf("the token's row does not show its last request and error: %s", row)
	}

	res, _ = ta.post(t, c, "/admin/scim/tokens/okta/revoke", nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/scim?msg=token-revoked" {
		t.Fatalf("revoke: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if _, body := ta.get(t, c, "/admin/scim?msg=token-revoked", false); !strings.Contains(body, "Token revoked") || strings.Contains(body, `id="scim-token-okta"`) {
		t.Error("the page after revoking still lists the token or says nothing")
	}
	if res, _ := ta.scimRequest(t, ta.client(), "GET", "/Users", "", "Bearer "+tok, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("the revoked token: %d", res.StatusCode)
	}
	if res, _ := ta.post(t, c, "/admin/scim/tokens/okta/revoke", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("revoking twice: %d", res.StatusCode)
	}
	if ta.countAudit(t, db.ActionSCIMTokenCreate, "okta") != 1 || ta.countAudit(t, db.ActionSCIMTokenRevoke, "okta") != 1 {
		t.Error("token changes are not audited")
	}
}
