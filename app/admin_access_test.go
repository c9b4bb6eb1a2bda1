package app

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/db"
)

func TestAdminGrantsMatrix(t *testing.T) {
	f := newAccessFixture(t)
	ta, c := f.ta, f.adminC
	ctx := context.Background()
	res, body := ta.get(t, c, "/admin/access", false)
	wantStatus(t, res, body, 200)
	// "access" (built in) is granted to nobody: admins only. "test" is granted to team.
	accessRow := between(body, `id="dash-row-access"`, "</th>")
	testRow := between(body, `id="dash-row-test"`, "</th>")
	if !strings.Contains(accessRow, "admins only") || strings.Contains(testRow, "admins only") || !strings.Contains(testRow, "1 group") {
		t.Errorf("row labels:\naccess: %s\ntest: %s", accessRow, testRow)
	}
	if !strings.Contains(between(body, `id="cell-test-`+idStr(f.team.ID)+`"`, "</td>"), `class="cell-on"`) ||
		!strings.Contains(between(body, `id="cell-access-`+idStr(f.team.ID)+`"`, "</td>"), `class="cell-off"`) {
		t.Error("cells do not show the grants")
	}

	cell := "/admin/access/access/" + idStr(f.leads.ID)
	res, body = ta.hxPost(t, c, cell, url.Values{"grant": {"on"}})
	wantStatus(t, res, body, 200)
	if !strings.HasPrefix(body, `<td id="cell-access-`+idStr(f.leads.ID)+`" data-label="leads">`) || !strings.Contains(body, `class="cell-on"`) {
		t.Errorf("cell answer:\n%s", body)
	}
	if !strings.Contains(body, `id="dash-row-access" hx-swap-oob="true"`) || strings.Contains(between(body, `id="dash-row-access"`, "</th>"), "admins only") {
		t.Error("row label not updated out of band")
	}
	// The status line says what changed and offers to take it back.
	if status := between(body, `id="matrix-status"`, "</div>"); !strings.Contains(status, "Granted <strong>Access</strong> to <strong>leads</strong>") ||
		!strings.Contains(status, `&#34;grant&#34;:&#34;off&#34;`) || !strings.Contains(status, ">Undo</button>") {
		t.Errorf("no undo for the toggle:\n%s", status)
	}
	if ta.countAudit(t, db.ActionGrantAdd, "access → leads") != 1 {
		t.Error("grant not audited")
	}
	// The lead (in leads) may open "access" on their very next request.
	if res, _ := ta.get(t, f.leadC, "/dashboards/access/panels/overview", true); res.StatusCode != 200 {
		t.Errorf("lead after grant: %d", res.StatusCode)
	}
	// Granting again changes nothing.
	audits := ta.totalAudit(t)
	res, body = ta.hxPost(t, c, cell, url.Values{"grant": {"on"}})
	wantStatus(t, res, body, 200)
	if ta.totalAudit(t) != audits {
		t.Error("a no-op grant was audited")
	}
	// Plain form: back to the page it came from.
	res, body = ta.post(t, c, cell, url.Values{"grant": {"off"}, "back": {"/admin/access?q=lea"}})
	wantStatus(t, res, body, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); loc != "/admin/access?q=lea&msg=grant-saved" {
		t.Errorf("redirect %q", loc)
	}
	if res, _ := ta.get(t, f.leadC, "/dashboards/access/panels/overview", true); res.StatusCode != 403 {
		t.Errorf("lead after revoke: %d", res.StatusCode)
	}
	if ta.countAudit(t, db.ActionGrantRemove, "access → leads") != 1 {
		t.Error("revoke not audited")
	}
	// Off-site "back" values are ignored.
	res, _ = ta.post(t, c, cell, url.Values{"grant": {"off"}, "back": {"//evil.example/admin/access"}})
	if loc := res.Header.Get("Location"); loc != "/admin/access?msg=grant-saved" {
		t.Errorf("redirect %q", loc)
	}
	for _, tc := range []struct {
		path, grant string
		status      int
	}{
		{"/admin/access/nope/" + idStr(f.leads.ID), "on", 404},
		{"/admin/access/access/9999", "on", 404},
		{"/admin/access/access/x", "on", 404},
		{cell, "yes", 422},
	} {
		audits := ta.totalAudit(t)
		res, body := ta.hxPost(t, c, tc.path, url.Values{"grant": {tc.grant}})
		wantStatus(t, res, body, tc.status)
		if ta.totalAudit(t) != audits {
			t.Errorf("%s: refused toggle changed something", tc.path)
		}
	}
	if gs, _ := ta.store.GrantingGroups(ctx, f.lead.ID, "access"); len(gs) != 0 {
		t.Error("a refused toggle granted")
	}
}

func TestAdminGrantsMatrixPaginatesGroups(t *testing.T) {
	ta, c, _ := adminApp(t)
	for i := 0; i < 25; i++ {
		mustGroup(t, ta, fmt.Sprintf("g%02d", i))
	}
	_, body := ta.get(t, c, "/admin/access", false)
	if !strings.Contains(body, ">g19<") || strings.Contains(body, ">g20<") || !strings.Contains(body, `href="/admin/access?page=2"`) {
		t.Error("matrix page 1")
	}
	res, body := ta.get(t, c, "/admin/access?q=g2", true)
	wantStatus(t, res, body, 200)
	if !strings.HasPrefix(body, `<div id="matrix">`) || !strings.Contains(body, ">g24<") || strings.Contains(body, ">g01<") {
		t.Errorf("matrix filter:\n%s", body)
	}
}

// between returns the text of s from the first from up to the next to.
func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	j := strings.Index(s[i:], to)
	if j < 0 {
		return s[i:]
	}
	return s[i : i+j]
}

func TestAdminAccessRequests(t *testing.T) {
	f := newAccessFixture(t)
	ta, c := f.ta, f.adminC
	ctx := context.Background()
	req, err := ta.store.CreateAccessRequest(ctx, db.Actor{Email: "outsider@example.com"}, f.outsider.ID, "test", "I joined sales")
	if err != nil {
		t.Fatal(err)
	}
	other, err := ta.store.CreateAccessRequest(ctx, db.Actor{}, f.member.ID, "access", "")
	if err != nil {
		t.Fatal(err)
	}
	res, body := ta.get(t, c, "/admin/requests", false)
	wantStatus(t, res, body, 200)
	row := between(body, `id="request-`+idStr(req.ID)+`"`, "</tr>")
	if !strings.Contains(row, "I joined sales") || !strings.Contains(row, `<option value="`+idStr(f.team.ID)+`">team</option>`) {
		t.Errorf("pending row:\n%s", row)
	}
	// Nobody is granted "access": no group to offer, say so and point to the matrix.
	otherRow := between(body, `id="request-`+idStr(other.ID)+`"`, "</tr>")
	if !strings.Contains(otherRow, "Not granted to any group yet") || strings.Contains(otherRow, `value="approve"`) {
		t.Errorf("ungranted row:\n%s", otherRow)
	}

	base := "/admin/requests/" + idStr(req.ID)
	for _, tc := range []struct {
		name   string
		path   string
		form   url.Values
		status int
		want   string
	}{
		{"group not granted", base, url.Values{"decision": {"approve"}, "group_id": {idStr(f.leads.ID)}}, 422, "Choose one of the groups that are granted this dashboard."},
		{"no group", base, url.Values{"decision": {"approve"}}, 422, "Choose one of the groups"},
		{"no decision", base, url.Values{"decision": {"maybe"}}, 422, "Choose Approve or Deny."},
		{"ungranted dashboard", "/admin/requests/" + idStr(other.ID), url.Values{"decision": {"approve"}, "group_id": {idStr(f.team.ID)}}, 422, "No group is granted this dashboard"},
		{"note too long", base, url.Values{"decision": {"deny"}, "note": {strings.Repeat("n", 501)}}, 422, "Note must be at most 500 characters."},
		{"unknown", "/admin/requests/9999", url.Values{"decision": {"deny"}}, 404, ""},
	} {
		for _, htmx := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s htmx=%v", tc.name, htmx), func(t *testing.T) {
				audits := ta.totalAudit(t)
				res, body := ta.send(t, c, http.MethodPost, tc.path, tc.form, htmx)
				wantStatus(t, res, body, tc.status)
				if !strings.Contains(body, tc.want) {
					t.Errorf("body lacks %q", tc.want)
				}
				if ta.totalAudit(t) != audits {
					t.Error("refused decision changed something")
				}
			})
		}
	}

	res, body = ta.hxPost(t, c, base, url.Values{"decision": {"approve"}, "group_id": {idStr(f.team.ID)}, "note": {"welcome"}})
	wantStatus(t, res, body, 200)
	if !strings.Contains(body, "approved") || !strings.Contains(body, "into team") || !strings.Contains(body, "welcome") {
		t.Errorf("decided row:\n%s", body)
	}
	// Both lists come back: the request left "Waiting" for "Recently decided".
	if waiting := between(body, "<h2>Waiting", "Recently decided"); strings.Contains(waiting, "outsider@example.com") {
		t.Errorf("the approved request is still waiting:\n%s", waiting)
	}
	if decided := body[strings.Index(body, "Recently decided"):]; !strings.Contains(decided, "outsider@example.com") || strings.Contains(decided, "No decisions yet") {
		t.Errorf("the approved request is not under Recently decided:\n%s", decided)
	}
	if !strings.Contains(body, "Approved: outsider@example.com joined team") {
		t.Errorf("no word of what was done:\n%s", body)
	}
	if _, err := ta.store.MemberOf(ctx, f.team.ID, f.outsider.ID); err != nil {
		t.Error("approval did not add the membership")
	}
	if res, _ := ta.get(t, f.outsiderC, "/dashboards/test/panels/open", true); res.StatusCode != 200 {
		t.Errorf("approved user denied: %d", res.StatusCode)
	}
	if ta.countAudit(t, db.ActionRequestApprove, "test / outsider@example.com") != 1 || ta.countAudit(t, db.ActionMemberAdd, "team / outsider@example.com") != 1 {
		t.Error("approval not audited")
	}
	// A second admin deciding the same request changes nothing.
	res, body = ta.hxPost(t, c, base, url.Values{"decision": {"deny"}})
	wantStatus(t, res, body, 422)
	if !strings.Contains(body, "already been decided") {
		t.Error("no reason for the second decision")
	}
	res, body = ta.post(t, c, "/admin/requests/"+idStr(other.ID), url.Values{"decision": {"deny"}, "note": {"not for you"}})
	wantStatus(t, res, body, http.StatusSeeOther)
	if ta.countAudit(t, db.ActionRequestDeny, "access / member@example.com") != 1 {
		t.Error("denial not audited")
	}
	_, body = ta.get(t, c, "/admin/requests", false)
	if !strings.Contains(body, "No request is waiting.") || !strings.Contains(body, "not for you") {
		t.Error("queue after decisions")
	}
}

// TestAdminApproveRenewsExpiredMembership: approving into a group the
// requester's membership in has expired renews it.
func TestAdminApproveRenewsExpiredMembership(t *testing.T) {
	f := newAccessFixture(t)
	ta, c := f.ta, f.adminC
	ctx := context.Background()
	if err := ta.store.SetMemberExpiry(ctx, db.Actor{}, f.team.ID, f.member.ID, ta.Clock.Now().Add(time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	ta.Clock.Advance(2 * time.Hour)
	req, err := ta.store.CreateAccessRequest(ctx, db.Actor{}, f.member.ID, "test", "")
	if err != nil {
		t.Fatal(err)
	}
	_, body := ta.get(t, c, "/admin/requests", false)
	if !strings.Contains(body, "team (renew expired membership)") {
		t.Error("the queue does not say the membership expired")
	}
	res, body := ta.post(t, c, "/admin/requests/"+idStr(req.ID), url.Values{"decision": {"approve"}, "group_id": {idStr(f.team.ID)}})
	wantStatus(t, res, body, http.StatusSeeOther)
	if m, _ := ta.store.MemberOf(ctx, f.team.ID, f.member.ID); m.ExpiresAt != 0 {
		t.Error("expired membership not renewed")
	}
}

func TestAdminExplain(t *testing.T) {
	f := newAccessFixture(t)
	ta, c := f.ta, f.adminC
	for _, tc := range []struct {
		user, dash string
		status     int
		want       []string
	}{
		{"", "", 200, []string{`name="user"`, `<option value="test"`}},
		{"member@example.com", "test", 200, []string{"allowed", "They are a member of &#34;team&#34;", "Through group", "team",
			"Leads panel", "This panel is only for members of &#34;leads&#34;"}},
		{"lead@example.com", "test", 200, []string{"allowed", "Leads panel"}},
		{"outsider@example.com", "test", 200, []string{"denied", "They are not in a group that has access", "Groups that would grant it", "not-member"}},
		{"OUTSIDER@example.com", "access", 200, []string{"denied", "No group has been granted this dashboard yet, so only admins can open it"}},
		{"admin@example.com", "access", 200, []string{"allowed", "Admins can open every dashboard"}},
		{"nobody@example.com", "test", 404, []string{"There is no user with the email “nobody@example.com”."}},
		{"member@example.com", "nope", 404, []string{"There is no dashboard “nope”."}},
	} {
		res, body := ta.get(t, c, "/admin/explain?user="+url.QueryEscape(tc.user)+"&dashboard="+tc.dash, false)
		if res.StatusCode != tc.status {
			t.Errorf("%s/%s: status %d", tc.user, tc.dash, res.StatusCode)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s/%s: lacks %q", tc.user, tc.dash, w)
			}
		}
	}
	// "you" never appears in an explanation for someone else.
	_, body := ta.get(t, c, "/admin/explain?user=outsider%40example.com&dashboard=test", false)
	if strings.Contains(body, "you are") {
		t.Error("explainer speaks to the viewer instead of about the user")
	}
}

// TestAuditShowsApply: the audit log marks the changes an apply made, with
// the file's sha256, and panel edits made after it are not marked.
func TestAuditShowsApply(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "admin@example.com", true)
	ta.createUser(t, "ann@example.com", false)
	c := ta.login(t, "admin@example.com")
	ctx := context.Background()
	want := db.AccessState{Groups: []db.StateGroup{{Name: "ops", Members: []db.StateMember{{Email: "ann@example.com"}}}}}
	sha := strings.Repeat("ab", 32)
	if _, err := ta.store.ApplyAccess(ctx, db.Actor{Email: "cli"}, "access.yaml", sha, func(db.AccessState, map[string]int64) (db.AccessState, error) {
		return want, nil
	}); err != nil {
		t.Fatal(err)
	}
	res, body := ta.get(t, c, "/admin/audit", false)
	wantStatus(t, res, body, 200)
	if n := strings.Count(body, "from access apply abababababab…"); n != 2 {
		t.Errorf("%d audit rows marked as from the apply, want 2 (group.create, member.add)", n)
	}
	if !strings.Contains(body, "access.apply") || !strings.Contains(body, sha) {
		t.Error("the audit log does not show the apply with its sha256")
	}
}

// TestApplyWithPanelEdits: an admin working in the panel while an apply
// runs waits for it, then sees its result: an add of someone the file
// added answers "already a member", a removal lands after the apply. The
// apply itself is never broken or mixed by them.
func TestApplyWithPanelEdits(t *testing.T) {
	ta := newTestApp(t)
	ctx := context.Background()
	ta.createUser(t, "admin@example.com", true)
	c := ta.login(t, "admin@example.com")
	ann := ta.createUser(t, "ann@example.com", false)
	bob := ta.createUser(t, "bob@example.com", false)
	team := mustGroup(t, ta, "team")
	side := mustGroup(t, ta, "side")
	mustMember(t, ta, side, bob, 0)
	want := db.AccessState{Groups: []db.StateGroup{
		{Name: "side", Members: []db.StateMember{{Email: "bob@example.com"}}},
		{Name: "team", Members: []db.StateMember{{Email: "ann@example.com"}, {Email: "bob@example.com"}}},
	}}
	type answer struct {
		status int
		body   string
	}
	add, remove := make(chan answer, 1), make(chan answer, 1)
	_, err := ta.store.ApplyAccess(ctx, db.Actor{Email: "cli"}, "f", "s", func(db.AccessState, map[string]int64) (db.AccessState, error) {
		// The apply's transaction is open: the admin clicks in the panel.
		go func() {
			res, body := ta.hxPost(t, c, "/admin/groups/"+idStr(team.ID)+"/members", url.Values{"user_id": {idStr(ann.ID)}})
			add <- answer{res.StatusCode, body}
		}()
		go func() {
			res, body := ta.hxPost(t, c, "/admin/groups/"+idStr(side.ID)+"/members/"+idStr(bob.ID)+"/remove", nil)
			remove <- answer{res.StatusCode, body}
		}()
		time.Sleep(300 * time.Millisecond) // let them reach the database
		return want, nil
	})
	if err != nil {
		t.Fatalf("apply beside panel edits: %v", err)
	}
	if a := <-add; a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, "ann@example.com is already a member of team") {
		t.Errorf("panel add during the apply: %d %s", a.status, a.body)
	}
	if r := <-remove; r.status != http.StatusOK {
		t.Errorf("panel remove during the apply: %d %s", r.status, r.body)
	}
	plan, err := ta.store.PlanAccess(ctx, func(db.AccessState, map[string]int64) (db.AccessState, error) { return want, nil })
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, ch := range plan.Changes {
		lines = append(lines, ch.String())
	}
	if strings.Join(lines, "\n") != `+ member "side" / bob@example.com` {
		t.Errorf("after the apply and the panel's edits the file would change: %q", lines)
	}
}
