package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"gatehouse/db"
)

// TestAdminAppsExternalURL: the Apps page sets where a team's proxy serves
// an app, shows it, refuses a bad one with the form, and audits the change.
func TestAdminAppsExternalURL(t *testing.T) {
	e := newAppsEnv(t)
	e.createUser(t, "root@example.com", true)
	c := e.login(t, "root@example.com")
	form := url.Values{"url": {e.up.URL}, "title": {"Sales app"}, "user_header": {"X-WEBAUTH-USER"}, "external_url": {"https://sales.example.com"}}
	if res, body := e.post(t, c, "/admin/apps/sales", form); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit: %d %s", res.StatusCode, body)
	}
	if a, _ := e.store.AppBySlug(context.Background(), "sales"); a.ExternalURL != "https://sales.example.com/" {
		t.Errorf("stored external URL %q", a.ExternalURL)
	}
	_, body := e.get(t, c, "/admin/apps", false)
	if !strings.Contains(body, `behind your proxy at <a href="https://sales.example.com/">`) || !strings.Contains(body, `name="external_url"`) {
		t.Errorf("the Apps page does not show the external URL:\n%s", body)
	}
	form.Set("external_url", "https://sales.example.com/?x=1")
	if res, body := e.post(t, c, "/admin/apps/sales", form); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "xternal URL &#34;https://sales.example.com/?x=1&#34; must be") {
		t.Errorf("bad external URL: %d", res.StatusCode)
	}
	if a, _ := e.store.AppBySlug(context.Background(), "sales"); a.ExternalURL != "https://sales.example.com/" {
		t.Errorf("a refused edit changed it to %q", a.ExternalURL)
	}
	if n := e.countAudit(t, db.ActionAppUpdate, "sales"); n != 1 {
		t.Errorf("%d app.update rows, want 1", n)
	}
}
