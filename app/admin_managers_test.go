package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/db"
)

// withManager adds manager@example.com, who manages the fixture's "team"
// group without being a member of it or an admin, and returns their client.
func (f *accessFixture) withManager(t *testing.T) *http.Client {
	t.Helper()
	u := f.ta.createUser(t, "manager@example.com", false)
	if err := f.ta.store.AddManager(context.Background(), db.Actor{Email: "test"}, f.team.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	return f.ta.login(t, "manager@example.com")
}

func TestGroupManager(t *testing.T) {
	f := newAccessFixture(t)
	ta, ctx := f.ta, context.Background()
	mgr := ta.createUser(t, "manager@example.com", false)
	mc := ta.login(t, "manager@example.com")
	team, leads := "/admin/groups/"+idStr(f.team.ID), "/admin/groups/"+idStr(f.leads.ID)

	// Before being made a manager: nothing.
	if res, body := ta.get(t, mc, team, false); res.StatusCode != http.StatusForbidden {
		t.Fatalf("not yet a manager: %d %s", res.StatusCode, body)
	}
	if _, body := ta.get(t, mc, "/", false); strings.Contains(body, "Groups you manage") {
		t.Error("top bar offers managed groups to a user who manages none")
	}

	// An admin makes them a manager on the group page.
	res, body := ta.post(t, f.adminC, team+"/managers", url.Values{"email": {"Manager@Example.com"}})
	wantStatus(t, res, body, http.StatusSeeOther)
	if ta.countAudit(t, db.ActionManagerAdd, "team / manager@example.com") != 1 {
		t.Error("adding a manager was not audited")
	}
	res, body = ta.post(t, f.adminC, team+"/managers", url.Values{"email": {"nobody@example.com"}})
	wantStatus(t, res, body, http.StatusUnprocessableEntity)
	if !strings.Contains(body, "There is no user with the email nobody@example.com.") {
		t.Errorf("unknown manager email: %s", body)
	}
	_, body = ta.get(t, f.adminC, team, false)
	if !strings.Contains(between(body, `id="managers"`, "</article>"), "manager@example.com") {
		t.Error("group page does not list the manager")
	}

	// The top bar now offers the group; its page opens, without admin-only controls.
	_, body = ta.get(t, mc, "/", false)
	if !strings.Contains(body, "Groups you manage") || !strings.Contains(body, `href="`+team+`"`) || strings.Contains(body, `href="/admin"`) {
		t.Errorf("top bar for a manager:\n%s", between(body, `<header`, `</header>`))
	}
	res, body = ta.get(t, mc, team, false)
	wantStatus(t, res, body, http.StatusOK)
	for _, hidden := range []string{"Delete group", `action="/admin/groups/` + idStr(f.team.ID) + `"`, "/admin/users", "/admin/access", "Add manager", `href="/admin/audit"`} {
		if strings.Contains(body, hidden) {
			t.Errorf("manager's group page shows %q", hidden)
		}
	}
	if !strings.Contains(body, "member@example.com") {
		t.Error("manager's group page does not list the members")
	}

	// Members: add (with expiry), change the expiry, remove; all audited as the manager.
	res, body = ta.post(t, mc, team+"/members", url.Values{"user_id": {idStr(f.outsider.ID)}, "email": {f.outsider.Email}, "expires": {"2027-01-31"}})
	wantStatus(t, res, body, http.StatusSeeOther)
	if res, _ := ta.get(t, f.outsiderC, "/dashboards/test/panels/open", true); res.StatusCode != http.StatusOK {
		t.Errorf("member added by a manager: panel %d", res.StatusCode)
	}
	res, body = ta.hxPost(t, mc, team+"/members/"+idStr(f.outsider.ID)+"/expiry", url.Values{"expires": {"2027-02-28"}})
	wantStatus(t, res, body, http.StatusOK)
	res, body = ta.hxPost(t, mc, team+"/members/"+idStr(f.outsider.ID)+"/remove", nil)
	wantStatus(t, res, body, http.StatusOK)
	var byManager int
	if err := ta.store.DB.NewSelect().Model((*db.AuditEvent)(nil)).ColumnExpr("COUNT(*)").
		Where("actor_email = ? AND action IN (?, ?, ?)", "manager@example.com", db.ActionMemberAdd, db.ActionMemberExpires, db.ActionMemberRemove).
		Scan(ctx, &byManager); err != nil || byManager != 3 {
		t.Errorf("manager's member changes audited: %d (%v), want 3", byManager, err)
	}
	// The add-member search finds only an exact email for a manager.
	if _, body := ta.get(t, mc, team+"/candidates?q=out", true); strings.Contains(body, "outsider@example.com") {
		t.Error("a manager can browse users by part of their email")
	}
	if _, body := ta.get(t, mc, team+"/candidates?q=outsider%40example.com", true); !strings.Contains(body, "outsider@example.com") {
		t.Errorf("exact email not found: %s", body)
	}

	// Everything else in /admin: 403, plain and htmx.
	for _, tc := range []struct{ method, path string }{
		{"GET", leads}, {"GET", leads + "/candidates?q=x"}, {"POST", leads + "/members"},
		{"POST", leads + "/members/" + idStr(f.lead.ID) + "/remove"}, {"POST", leads + "/members/" + idStr(f.lead.ID) + "/expiry"},
		{"POST", team}, {"GET", team + "/delete"}, {"POST", team + "/delete"}, {"POST", team + "/managers"},
		{"POST", "/admin/groups"}, {"GET", "/admin/groups"}, {"GET", "/admin/users"}, {"GET", "/admin/users/" + idStr(f.member.ID)},
		{"GET", "/admin/access"}, {"POST", "/admin/access/test/" + idStr(f.team.ID)}, {"GET", "/admin/audit"},
		{"GET", "/admin/explain"}, {"GET", "/admin"},
	} {
		for _, htmx := range []bool{false, true} {
			res, body := ta.send(t, mc, tc.method, tc.path, url.Values{"grant": {"on"}, "name": {"renamed"}, "user_id": {idStr(f.outsider.ID)}}, htmx)
			if res.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s (htmx %v) as manager: %d, want 403", tc.method, tc.path, htmx, res.StatusCode)
			}
			if htmx && strings.Contains(body, "<html") {
				t.Errorf("%s %s htmx 403 is a whole page", tc.method, tc.path)
			}
		}
	}
	if g, _ := ta.store.GroupByID(ctx, f.team.ID); g.Name != "team" || g.GrantCount != 1 {
		t.Errorf("a manager changed the group: %+v", g)
	}

	// Access requests: the queue shows the manager only what they can decide.
	mine, err := ta.store.CreateAccessRequest(ctx, db.Actor{}, f.outsider.ID, "test", "please")
	if err != nil {
		t.Fatal(err)
	}
	other, err := ta.store.CreateAccessRequest(ctx, db.Actor{}, f.member.ID, "access", "")
	if err != nil {
		t.Fatal(err)
	}
	res, body = ta.get(t, mc, "/admin/requests", false)
	wantStatus(t, res, body, http.StatusOK)
	if !strings.Contains(body, `id="request-`+idStr(mine.ID)+`"`) || strings.Contains(body, `id="request-`+idStr(other.ID)+`"`) {
		t.Errorf("manager's queue:\n%s", body)
	}
	if _, body := ta.get(t, f.adminC, "/admin/requests", false); !strings.Contains(body, `id="request-`+idStr(other.ID)+`"`) {
		t.Error("the admin's queue lost a request")
	}
	res, body = ta.post(t, mc, "/admin/requests/"+idStr(other.ID), url.Values{"decision": {"deny"}})
	wantStatus(t, res, body, http.StatusForbidden)
	// Approving into a group they do not manage is refused.
	if err := ta.store.AddGrant(ctx, db.Actor{}, "test", f.leads.ID); err != nil {
		t.Fatal(err)
	}
	res, body = ta.post(t, mc, "/admin/requests/"+idStr(mine.ID), url.Values{"decision": {"approve"}, "group_id": {idStr(f.leads.ID)}})
	wantStatus(t, res, body, http.StatusUnprocessableEntity)
	res, body = ta.post(t, mc, "/admin/requests/"+idStr(mine.ID), url.Values{"decision": {"approve"}, "group_id": {idStr(f.team.ID)}})
	wantStatus(t, res, body, http.StatusSeeOther)
	if req, _ := ta.store.AccessRequestByID(ctx, mine.ID); req.Status != db.RequestApproved || req.DecidedBy != "manager@example.com" {
		t.Errorf("request after the manager's approval: %+v", req)
	}
	if req, _ := ta.store.AccessRequestByID(ctx, other.ID); req.Status != db.RequestPending {
		t.Errorf("the other request was decided: %+v", req)
	}

	// Removed as manager (by the CLI, another process): the next request is refused.
	if err := ta.store.RemoveManager(ctx, db.Actor{Email: "cli"}, f.team.ID, mgr.ID); err != nil {
		t.Fatal(err)
	}
	for _, htmx := range []bool{false, true} {
		if res, _ := ta.get(t, mc, team, htmx); res.StatusCode != http.StatusForbidden {
			t.Errorf("removed manager (htmx %v): %d, want 403", htmx, res.StatusCode)
		}
	}
	if res, _ := ta.get(t, mc, "/admin/requests", false); res.StatusCode != http.StatusForbidden {
		t.Errorf("removed manager's queue: %d, want 403", res.StatusCode)
	}
	if _, body := ta.get(t, mc, "/", false); strings.Contains(body, "Groups you manage") {
		t.Error("top bar still offers the group after removal")
	}
	if ta.countAudit(t, db.ActionManagerRemove, "team / manager@example.com") != 1 {
		t.Error("removing a manager was not audited")
	}
}

func TestRequestDeciders(t *testing.T) {
	f := newAccessFixture(t)
	ta, ctx := f.ta, context.Background()
	f.withManager(t)
	other := ta.createUser(t, "other-manager@example.com", false)
	if err := ta.store.AddManager(ctx, db.Actor{}, f.leads.ID, other.ID); err != nil {
		t.Fatal(err)
	}
	off := ta.createUser(t, "off-admin@example.com", true)
	if err := ta.store.SetActive(ctx, db.Actor{}, off.ID, false); err != nil {
		t.Fatal(err)
	}
	emails := func(dashboard string) string {
		us, err := ta.store.RequestDeciders(ctx, dashboard)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, u := range us {
			out = append(out, u.Email)
		}
		return strings.Join(out, " ")
	}
	// "test" is granted to team (managed by manager@); nobody is granted "access".
	if got := emails("test"); got != "admin@example.com manager@example.com" {
		t.Errorf("deciders of test: %q", got)
	}
	if got := emails("access"); got != "admin@example.com" {
		t.Errorf("deciders of access: %q", got)
	}
}

// TestManagerCannotGiveThemselvesAccess: managing a group does not make one
// a member, so a manager who is not an admin can neither add themselves,
// nor extend their own membership, nor approve their own request. Each
// refusal is 403 with the reason in the page (plain and htmx), changes
// nothing, and leaves a denial in the audit log.
func TestManagerCannotGiveThemselvesAccess(t *testing.T) {
	f := newAccessFixture(t)
	ta, ctx := f.ta, context.Background()
	mc := f.withManager(t)
	mgr, err := ta.store.UserByEmail(ctx, "manager@example.com")
	if err != nil {
		t.Fatal(err)
	}
	team := "/admin/groups/" + idStr(f.team.ID)
	const reason = "managing a group does not make you a member of it"
	isMember := func() bool {
		_, err := ta.store.MemberOf(ctx, f.team.ID, mgr.ID)
		return err == nil
	}

	// Adding themselves, as a plain form and through the live search.
	for _, htmx := range []bool{false, true} {
		res, body := ta.send(t, mc, http.MethodPost, team+"/members", url.Values{"user_id": {idStr(mgr.ID)}, "email": {mgr.Email}}, htmx)
		wantStatus(t, res, body, http.StatusForbidden)
		if !strings.Contains(body, reason) || strings.Contains(body, "<html") == htmx {
			t.Errorf("self-add refused (htmx %v) without the reason, or in the wrong shape:\n%s", htmx, body)
		}
		if isMember() {
			t.Fatalf("the manager added themselves (htmx %v)", htmx)
		}
	}
	if n := ta.countAudit(t, db.ActionAccessDenied, "team / manager@example.com"); n != 1 {
		t.Errorf("%d denials audited for the self-add, want 1 (repeats within a minute are one)", n)
	}
	// The same add of someone else still works.
	res, body := ta.post(t, mc, team+"/members", url.Values{"user_id": {idStr(f.outsider.ID)}, "email": {f.outsider.Email}})
	wantStatus(t, res, body, http.StatusSeeOther)

	// Their own request: not in their queue, and approving it is refused.
	req, err := ta.store.CreateAccessRequest(ctx, db.Actor{}, mgr.ID, "test", "let me in")
	if err != nil {
		t.Fatal(err)
	}
	if _, body := ta.get(t, mc, "/admin/requests", false); strings.Contains(body, `id="request-`+idStr(req.ID)+`"`) {
		t.Error("the manager's queue offers their own request")
	}
	for _, htmx := range []bool{false, true} {
		res, body := ta.send(t, mc, http.MethodPost, "/admin/requests/"+idStr(req.ID), url.Values{"decision": {"approve"}, "group_id": {idStr(f.team.ID)}}, htmx)
		wantStatus(t, res, body, http.StatusForbidden)
		if !strings.Contains(body, "this is your own request") || !strings.Contains(body, reason) || strings.Contains(body, "<html") == htmx {
			t.Errorf("self-approval refused (htmx %v) without the reason, or in the wrong shape:\n%s", htmx, body)
		}
	}
	if got, _ := ta.store.AccessRequestByID(ctx, req.ID); got.Status != db.RequestPending || isMember() {
		t.Errorf("self-approval changed something: request %+v, member %v", got, isMember())
	}
	if n := ta.countAudit(t, db.ActionAccessDenied, "request "+idStr(req.ID)+": manager@example.com / test"); n != 1 {
		t.Errorf("%d denials audited for the self-approval, want 1", n)
	}
	if res, _ := ta.get(t, mc, "/dashboards/test/panels/open", true); res.StatusCode != http.StatusForbidden {
		t.Errorf("the manager opens the panel: %d, want 403", res.StatusCode)
	}

	// An admin gave them a month; they cannot make it longer.
	ta.Clock.Advance(2 * time.Minute)
	month := ta.Clock.Now().AddDate(0, 1, 0).UnixMilli()
	if err := ta.store.AddMember(ctx, db.Actor{Email: "admin@example.com"}, f.team.ID, mgr.ID, month); err != nil {
		t.Fatal(err)
	}
	for _, htmx := range []bool{false, true} {
		res, body := ta.send(t, mc, http.MethodPost, team+"/members/"+idStr(mgr.ID)+"/expiry", url.Values{"clear": {"1"}}, htmx)
		wantStatus(t, res, body, http.StatusForbidden)
		if !strings.Contains(body, reason) || strings.Contains(body, "<html") == htmx {
			t.Errorf("own expiry refused (htmx %v) without the reason, or in the wrong shape:\n%s", htmx, body)
		}
	}
	if m, err := ta.store.MemberOf(ctx, f.team.ID, mgr.ID); err != nil || m.ExpiresAt != month {
		t.Errorf("own expiry changed: %+v %v", m, err)
	}
	if n := ta.countAudit(t, db.ActionAccessDenied, "team / manager@example.com"); n != 2 {
		t.Errorf("%d denials audited for the self-add and the own expiry, want 2", n)
	}

	// An admin decides the request.
	res, body = ta.post(t, f.adminC, "/admin/requests/"+idStr(req.ID), url.Values{"decision": {"approve"}, "group_id": {idStr(f.team.ID)}})
	wantStatus(t, res, body, http.StatusSeeOther)
}
