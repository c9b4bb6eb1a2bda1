package app

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

// TestAdminGroupPageShowsIdPGroupsAndSources: an admin maps and unmaps IdP
// groups on the group's page, which shows which IdP groups feed the group
// and where each membership came from; the explainer and `access check`
// name the IdP group behind an access.
func TestAdminGroupPageShowsIdPGroupsAndSources(t *testing.T) {
	e := newSSOApp(t)
	ctx := context.Background()
	e.createUser(t, "root@corp.example.org", true)
	admin := e.login(t, "root@corp.example.org")
	fin := e.group(t, "Finance")
	path := "/admin/groups/" + strconv.FormatInt(fin.ID, 10)

	res, _ := e.post(t, admin, path+"/idp-groups", url.Values{"idp_group": {"fin-team"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("map: %d", res.StatusCode)
	}
	for _, tc := range []struct {
		path, value string
		status      int
		want        string
	}{
		{"/idp-groups", "fin-team", http.StatusConflict, "already feeds this group"},
		{"/idp-groups", "  ", http.StatusUnprocessableEntity, "IdP group is required"},
		{"/idp-groups/remove", "nobody", http.StatusNotFound, "does not feed this group"},
	} {
		res, body := e.post(t, admin, path+tc.path, url.Values{"idp_group": {tc.value}})
		if res.StatusCode != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("POST %s %q: %d, want %d saying %q", tc.path, tc.value, res.StatusCode, tc.status, tc.want)
		}
	}
	if err := e.store.AddGrant(ctx, db.Actor{}, dashboards.AccessSlug, fin.ID); err != nil {
		t.Fatal(err)
	}
	e.addIdPUser("ann", "ann@example.com", "fin-team")
	e.mustSignIn(t, "ann")
	bob := e.createUser(t, "bob@corp.example.org", false)
	if err := e.store.AddMember(ctx, db.Actor{}, fin.ID, bob.ID, 0); err != nil {
		t.Fatal(err)
	}

	_, body := e.get(t, admin, path, false)
	for _, want := range []string{"Identity provider groups", "<code>fin-team</code>", "from IdP group fin-team", ">manual<"} {
		if !strings.Contains(body, want) {
			t.Errorf("group page lacks %q:\n%s", want, body[strings.Index(body, "<main"):])
		}
	}
	_, body = e.get(t, admin, "/admin/explain?user=ann%40example.com&dashboard=access", false)
	if !strings.Contains(body, "From the identity provider group") || !strings.Contains(body, "fin-team") {
		t.Error("the explainer does not name the IdP group behind Ann's access")
	}
	cli := &cliEnv{t: t, data: e.cfg.DataDir}
	var onDB []string // the app's database when it is PostgreSQL
	if e.cfg.DSN != "" {
		onDB = []string{"--db", e.cfg.DSN}
	}
	if out := cli.ok("", append([]string{"access", "check", "ann@example.com", "access"}, onDB...)...); !strings.Contains(out, `identity provider group "fin-team"`) {
		t.Errorf("access check does not name the IdP group: %q", out)
	}
	if out := cli.ok("", append([]string{"groups", "members", "Finance"}, onDB...)...); !strings.Contains(out, "idp:fin-team") || !strings.Contains(out, "manual") {
		t.Errorf("groups members does not show the sources:\n%s", out)
	}

	res, _ = e.post(t, admin, path+"/idp-groups/remove", url.Values{"idp_group": {"fin-team"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("unmap: %d", res.StatusCode)
	}
	if got, _ := e.store.IdPGroupsOf(ctx, fin.ID); len(got) != 0 {
		t.Errorf("still mapped: %v", got)
	}
	// Mappings are for admins: a member cannot change them.
	res, _ = e.post(t, e.login(t, "bob@corp.example.org"), path+"/idp-groups", url.Values{"idp_group": {"x"}})
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("a non-admin mapping: %d, want 403", res.StatusCode)
	}
}
