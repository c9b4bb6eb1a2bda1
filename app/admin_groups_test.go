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

// adminApp is a test app with one logged-in admin.
func adminApp(t *testing.T) (*testApp, *http.Client, db.User) {
	t.Helper()
	ta := newTestApp(t)
	admin := ta.createUser(t, "admin@example.com", true)
	return ta, ta.login(t, "admin@example.com"), admin
}

func countGroups(t *testing.T, ta *testApp) int {
	t.Helper()
	_, n, err := ta.store.ListGroups(context.Background(), db.GroupFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAdminGroupCreate(t *testing.T) {
	ta, c, _ := adminApp(t)
	ctx := context.Background()
	for _, htmx := range []bool{false, true} {
		name := fmt.Sprintf("Sales %v", htmx)
		res, body := ta.send(t, c, http.MethodPost, "/admin/groups", url.Values{"name": {"  " + name + "  "}, "description": {"The sales team"}}, htmx)
		g, err := ta.store.GroupByName(ctx, name)
		if err != nil {
			t.Fatalf("group not created (status %d): %v\n%s", res.StatusCode, err, body)
		}
		if g.Name != name || g.Description != "The sales team" {
			t.Errorf("stored %+v", g)
		}
		loc := res.Header.Get("Location")
		if htmx {
			loc = res.Header.Get("HX-Redirect")
		}
		if loc != "/admin/groups/"+idStr(g.ID)+"?msg=group-created" {
			t.Errorf("redirect %q", loc)
		}
		if n := ta.countAudit(t, db.ActionGroupCreate, name); n != 1 {
			t.Errorf("audit rows %d", n)
		}
	}
	_, body := ta.get(t, c, "/admin/groups/1?msg=group-created", false)
	if !strings.Contains(body, "Group created.") {
		t.Error("no notice after create")
	}

	for _, tc := range []struct {
		name, desc, want string
	}{
		{"", "", "Group name is required."},
		{"   ", "", "Group name is required."},
		{strings.Repeat("x", 65), "", "Group name must be at most 64 characters."},
		{"sales TRUE", "", `A group named "sales TRUE" already exists (names are unique regardless of case).`},
		{"ok", strings.Repeat("d", 501), "Description must be at most 500 characters."},
		{"tab\tname", "", "Group name must not contain control characters."},
	} {
		for _, htmx := range []bool{false, true} {
			t.Run(fmt.Sprintf("%q htmx=%v", tc.name, htmx), func(t *testing.T) {
				before, audits := countGroups(t, ta), ta.totalAudit(t)
				res, body := ta.send(t, c, http.MethodPost, "/admin/groups", url.Values{"name": {tc.name}, "description": {tc.desc}}, htmx)
				wantStatus(t, res, body, http.StatusUnprocessableEntity)
				if !strings.Contains(body, htmlEscape(tc.want)) {
					t.Errorf("body lacks %q:\n%s", tc.want, body)
				}
				if htmx && (strings.Contains(body, "<html") || !strings.Contains(body, `id="group-create"`)) {
					t.Error("htmx 422 is not the form fragment")
				}
				if !htmx && !strings.Contains(body, "<html") {
					t.Error("plain 422 is not a page")
				}
				if countGroups(t, ta) != before || ta.totalAudit(t) != audits {
					t.Error("a refused create changed something")
				}
			})
		}
	}
	// 64 characters is fine.
	res, body := ta.post(t, c, "/admin/groups", url.Values{"name": {strings.Repeat("é", 64)}})
	wantStatus(t, res, body, http.StatusSeeOther)
}

// htmlEscape escapes s the way templ does for text.
func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

func TestAdminGroupListSearchAndPagination(t *testing.T) {
	ta, c, _ := adminApp(t)
	for i := 0; i < 60; i++ {
		mustGroup(t, ta, fmt.Sprintf("group-%02d", i))
	}
	mustGroup(t, ta, "Marketing")
	_, body := ta.get(t, c, "/admin/groups", false)
	if !strings.Contains(body, "1–50 of 61 groups") || !strings.Contains(body, `href="/admin/groups?page=2"`) {
		t.Errorf("page 1 lacks pagination")
	}
	if strings.Contains(body, ">group-55<") {
		t.Error("page 1 shows a group of page 2")
	}
	_, body = ta.get(t, c, "/admin/groups?page=2", false)
	if !strings.Contains(body, ">group-55<") || !strings.Contains(body, "51–61 of 61 groups") {
		t.Error("page 2 lacks its groups")
	}
	res, body := ta.get(t, c, "/admin/groups?q=market", true)
	wantStatus(t, res, body, 200)
	if !strings.HasPrefix(body, `<div id="groups-table">`) || strings.Contains(body, "<html") || strings.Contains(body, "New group") {
		t.Errorf("live search did not answer the table alone:\n%s", body)
	}
	if !strings.Contains(body, ">Marketing<") || strings.Contains(body, "group-01") {
		t.Error("search did not filter")
	}
	_, body = ta.get(t, c, "/admin/groups?q=zzz", true)
	if !strings.Contains(body, "No group matches") {
		t.Error("empty search result says nothing")
	}
	// The live search input is debounced and triggered as the issue asks.
	_, body = ta.get(t, c, "/admin/groups", false)
	if !strings.Contains(body, `hx-trigger="input changed delay:300ms, search"`) || !strings.Contains(body, `hx-target="#groups-table"`) {
		t.Error("groups page lacks the active search")
	}
}

func TestAdminGroupEdit(t *testing.T) {
	ta, c, _ := adminApp(t)
	ctx := context.Background()
	g := mustGroup(t, ta, "Sales")
	mustGroup(t, ta, "Support")
	path := "/admin/groups/" + idStr(g.ID)

	res, body := ta.post(t, c, path, url.Values{"name": {"Sales EU"}, "description": {"Europe"}, "was_name": {"Sales"}, "was_description": {""}})
	wantStatus(t, res, body, http.StatusSeeOther)
	got, _ := ta.store.GroupByID(ctx, g.ID)
	if got.Name != "Sales EU" || got.Description != "Europe" {
		t.Fatalf("not saved: %+v", got)
	}
	if ta.countAudit(t, db.ActionGroupUpdate, "Sales EU") != 1 {
		t.Error("no audit row for the rename")
	}

	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		want   string
	}{
		{"empty", url.Values{"name": {" "}}, 422, "Group name is required."},
		{"too long", url.Values{"name": {strings.Repeat("n", 65)}}, 422, "at most 64 characters"},
		{"duplicate", url.Values{"name": {"SUPPORT"}}, 422, "already exists"},
		{"stale form", url.Values{"name": {"Sales US"}, "description": {""}, "was_name": {"Sales"}, "was_description": {""}}, 409,
			"Someone else changed this group while you were editing"},
	} {
		for _, htmx := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s htmx=%v", tc.name, htmx), func(t *testing.T) {
				audits := ta.totalAudit(t)
				res, body := ta.send(t, c, http.MethodPost, path, tc.form, htmx)
				wantStatus(t, res, body, tc.status)
				if !strings.Contains(body, tc.want) {
					t.Errorf("body lacks %q", tc.want)
				}
				if now, _ := ta.store.GroupByID(ctx, g.ID); now.Name != "Sales EU" || ta.totalAudit(t) != audits {
					t.Errorf("refused edit changed something: %+v", now)
				}
			})
		}
	}
	// The conflict answer carries the current version, so saving again wins.
	_, body = ta.send(t, c, http.MethodPost, path, url.Values{"name": {"Sales US"}, "was_name": {"Sales"}, "was_description": {""}}, true)
	if !strings.Contains(body, `name="was_name" value="Sales EU"`) || !strings.Contains(body, `value="Sales US"`) {
		t.Errorf("conflict form does not keep the edit and the new base:\n%s", body)
	}
	res, body = ta.send(t, c, http.MethodPost, path, url.Values{"name": {"Sales US"}, "was_name": {"Sales EU"}, "was_description": {"Europe"}}, true)
	wantStatus(t, res, body, http.StatusOK)
	// Saved in place: the form says so and starts from the saved version,
	// and the page's heading follows out of band.
	for _, want := range []string{"Saved.", `name="was_name" value="Sales US"`, `id="group-head" hx-swap-oob="true"`, "<h1>Sales US</h1>"} {
		if !strings.Contains(body, want) {
			t.Errorf("save answer lacks %q:\n%s", want, body)
		}
	}
	if now, _ := ta.store.GroupByID(ctx, g.ID); now.Name != "Sales US" {
		t.Errorf("second save: %+v", now)
	}
	res, body = ta.post(t, c, "/admin/groups/9999", url.Values{"name": {"x"}})
	wantStatus(t, res, body, http.StatusNotFound)
	res, body = ta.get(t, c, "/admin/groups/abc", false)
	wantStatus(t, res, body, http.StatusNotFound)
}

func TestAdminGroupDelete(t *testing.T) {
	f := newAccessFixture(t)
	ta, c := f.ta, f.adminC
	ctx := context.Background()
	path := "/admin/groups/" + idStr(f.team.ID) + "/delete"
	res, body := ta.get(t, c, path, false)
	wantStatus(t, res, body, 200)
	for _, want := range []string{"Delete group “team”?", "2 memberships", "1 dashboard grant", "test", `method="post"`} {
		if !strings.Contains(body, want) {
			t.Errorf("confirmation lacks %q", want)
		}
	}
	if _, err := ta.store.GroupByID(ctx, f.team.ID); err != nil {
		t.Fatal("GET deleted the group")
	}
	res, body = ta.post(t, c, path, nil)
	wantStatus(t, res, body, http.StatusSeeOther)
	if _, err := ta.store.GroupByID(ctx, f.team.ID); err == nil {
		t.Fatal("group still there")
	}
	if gs, _ := ta.store.GroupsOfUser(ctx, f.member.ID); len(gs) != 0 {
		t.Error("memberships survived")
	}
	if gs, _ := ta.store.GrantingGroups(ctx, f.member.ID, "test"); len(gs) != 0 {
		t.Error("grants survived")
	}
	if ta.countAudit(t, db.ActionGroupDelete, "team") != 1 {
		t.Error("no audit row")
	}
	if res, _ := ta.get(t, f.memberC, "/dashboards/test/panels/open", true); res.StatusCode != 403 {
		t.Errorf("member still sees the dashboard: %d", res.StatusCode)
	}
	res, body = ta.post(t, c, path, nil)
	wantStatus(t, res, body, http.StatusNotFound)
	res, body = ta.get(t, c, path, false)
	wantStatus(t, res, body, http.StatusNotFound)
}

func TestAdminGroupMembers(t *testing.T) {
	f := newAccessFixture(t)
	ta, c := f.ta, f.adminC
	ctx := context.Background()
	g := f.leads // lead is a member
	base := "/admin/groups/" + idStr(g.ID)
	carol := ta.createUser(t, "carol@example.com", false)
	if err := ta.store.UpdateUserName(ctx, db.Actor{}, carol.ID, "Carol Outsidewright"); err != nil {
		t.Fatal(err)
	}

	t.Run("candidates", func(t *testing.T) {
		res, body := ta.get(t, c, base+"/candidates?q=OUTSIDE", true)
		wantStatus(t, res, body, 200)
		if !strings.Contains(body, "outsider@example.com") || !strings.Contains(body, "Carol Outsidewright") {
			t.Errorf("search by email and name failed:\n%s", body)
		}
		if !strings.Contains(body, `hx-post="`+base+`/members"`) {
			t.Error("results lack the Add form")
		}
		_, body = ta.get(t, c, base+"/candidates?q=lead", true)
		if strings.Contains(body, "lead@example.com") {
			t.Error("a member is offered again")
		}
		_, body = ta.get(t, c, base+"/candidates?q=", true)
		if strings.Contains(body, "@example.com") {
			t.Error("an empty query lists users")
		}
		// Without JavaScript the search is a GET of the group page.
		_, body = ta.get(t, c, base+"?q=outsider", false)
		if !strings.Contains(body, `<input type="hidden" name="user_id" value="`+idStr(f.outsider.ID)+`"`) {
			t.Error("no-JS search shows no results")
		}
	})

	t.Run("add", func(t *testing.T) {
		res, body := ta.hxPost(t, c, base+"/members", url.Values{"user_id": {idStr(f.outsider.ID)}, "expires": {"2027-01-01"}})
		wantStatus(t, res, body, 200)
		if !strings.Contains(body, "Added until 1 Jan 2027") || !strings.Contains(body, `id="members" hx-swap-oob="true"`) {
			t.Errorf("htmx add answer:\n%s", body)
		}
		m, err := ta.store.MemberOf(ctx, g.ID, f.outsider.ID)
		if err != nil || dayOf(m.ExpiresAt) != "2027-01-01" {
			t.Fatalf("membership: %+v %v", m, err)
		}
		if ta.countAudit(t, db.ActionMemberAdd, "leads / outsider@example.com") != 1 {
			t.Error("no audit row")
		}
		res, body = ta.post(t, c, base+"/members", url.Values{"user_id": {idStr(carol.ID)}})
		wantStatus(t, res, body, http.StatusSeeOther)
		if _, err := ta.store.MemberOf(ctx, g.ID, carol.ID); err != nil {
			t.Error("plain add did not add")
		}
	})

	t.Run("add refused", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			form   url.Values
			path   string
			status int
			want   string
		}{
			{"twice", url.Values{"user_id": {idStr(f.lead.ID)}}, base, 422, "lead@example.com is already a member of leads."},
			{"past expiry", url.Values{"user_id": {idStr(f.member.ID)}, "expires": {"2020-01-01"}}, base, 422, "Expiry 2020-01-01 is not in the future."},
			{"today", url.Values{"user_id": {idStr(f.member.ID)}, "expires": {"2026-11-23"}}, base, 422, "not in the future"},
			{"not a date", url.Values{"user_id": {idStr(f.member.ID)}, "expires": {"soon"}}, base, 422, "is not a date like"},
			{"month 13", url.Values{"user_id": {idStr(f.member.ID)}, "expires": {"2026-13-40"}}, base, 422, "Expiry &#34;2026-13-40&#34; is not a date like 2026-12-31."},
			{"a word", url.Values{"user_id": {idStr(f.member.ID)}, "expires": {"tomorrow"}}, base, 422, "Expiry &#34;tomorrow&#34; is not a date like 2026-12-31."},
			{"as printed", url.Values{"user_id": {idStr(f.member.ID)}, "expires": {"11 Jul 2027"}}, base, 422, "Expiry &#34;11 Jul 2027&#34; is not a date like 2026-12-31."},
			{"unknown user", url.Values{"user_id": {"99999"}}, base, 404, ""},
			{"bad user id", url.Values{"user_id": {"x"}}, base, 404, ""},
			{"unknown group", url.Values{"user_id": {idStr(f.member.ID)}}, "/admin/groups/99999", 404, ""},
		} {
			for _, htmx := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s htmx=%v", tc.name, htmx), func(t *testing.T) {
					audits := ta.totalAudit(t)
					res, body := ta.send(t, c, http.MethodPost, tc.path+"/members", tc.form, htmx)
					wantStatus(t, res, body, tc.status)
					if !strings.Contains(body, tc.want) {
						t.Errorf("body lacks %q:\n%s", tc.want, body)
					}
					if ta.totalAudit(t) != audits {
						t.Error("refused add changed something")
					}
					if _, err := ta.store.MemberOf(ctx, g.ID, f.member.ID); err == nil {
						t.Error("member was added")
					}
				})
			}
		}
	})

	t.Run("expiry", func(t *testing.T) {
		p := base + "/members/" + idStr(f.lead.ID) + "/expiry"
		res, body := ta.hxPost(t, c, p, url.Values{"expires": {"2026-12-24"}})
		wantStatus(t, res, body, 200)
		if !strings.HasPrefix(body, `<tr id="member-`+idStr(f.lead.ID)+`"`) || !strings.Contains(body, "until 24 Dec 2026") {
			t.Errorf("row:\n%s", body)
		}
		if m, _ := ta.store.MemberOf(ctx, g.ID, f.lead.ID); dayOf(m.ExpiresAt) != "2026-12-24" {
			t.Errorf("expiry %d", m.ExpiresAt)
		}
		res, body = ta.hxPost(t, c, p, url.Values{"expires": {"2001-01-01"}})
		wantStatus(t, res, body, 422)
		if !strings.Contains(body, "not in the future") {
			t.Error("no reason for the refused expiry")
		}
		if m, _ := ta.store.MemberOf(ctx, g.ID, f.lead.ID); dayOf(m.ExpiresAt) != "2026-12-24" {
			t.Error("refused expiry changed it")
		}
		for _, bad := range []string{"2026-13-40", "tomorrow", "12/24/2026"} {
			for _, htmx := range []bool{false, true} {
				audits := ta.totalAudit(t)
				res, body = ta.send(t, c, http.MethodPost, p, url.Values{"expires": {bad}}, htmx)
				wantStatus(t, res, body, 422)
				if !strings.Contains(body, "Expiry &#34;"+bad+"&#34; is not a date like 2026-12-31.") {
					t.Errorf("expiry %q (htmx=%v) not explained:\n%s", bad, htmx, body)
				}
				if m, _ := ta.store.MemberOf(ctx, g.ID, f.lead.ID); dayOf(m.ExpiresAt) != "2026-12-24" {
					t.Errorf("refused expiry %q changed it", bad)
				}
				if ta.totalAudit(t) != audits {
					t.Errorf("refused expiry %q was audited", bad)
				}
			}
		}
		res, body = ta.post(t, c, p, url.Values{"expires": {"2026-12-24"}, "clear": {"1"}})
		wantStatus(t, res, body, http.StatusSeeOther)
		if m, _ := ta.store.MemberOf(ctx, g.ID, f.lead.ID); m.ExpiresAt != 0 {
			t.Error("clear did not clear")
		}
		if ta.countAudit(t, db.ActionMemberExpires, "leads / lead@example.com") != 2 {
			t.Error("expiry changes not audited")
		}
		res, body = ta.hxPost(t, c, base+"/members/"+idStr(f.member.ID)+"/expiry", url.Values{"expires": {"2027-01-01"}})
		wantStatus(t, res, body, 404)
	})

	t.Run("remove", func(t *testing.T) {
		p := base + "/members/" + idStr(f.outsider.ID) + "/remove"
		res, body := ta.hxPost(t, c, p, nil)
		wantStatus(t, res, body, 200)
		// The whole section comes back, so the badge, the rows and the
		// footer all count the member gone.
		for _, want := range []string{`id="member-count" class="badge badge-gray">2<`, "1–2 of 2 members", "Removed outsider@example.com from leads."} {
			if !strings.Contains(body, want) {
				t.Errorf("remove answer lacks %q:\n%s", want, body)
			}
		}
		if strings.Contains(body, `id="member-`+idStr(f.outsider.ID)+`"`) {
			t.Errorf("remove answer still lists the member:\n%s", body)
		}
		if _, err := ta.store.MemberOf(ctx, g.ID, f.outsider.ID); err == nil {
			t.Error("still a member")
		}
		if ta.countAudit(t, db.ActionMemberRemove, "leads / outsider@example.com") != 1 {
			t.Error("no audit row")
		}
		for _, htmx := range []bool{false, true} {
			res, body = ta.send(t, c, http.MethodPost, p, nil, htmx)
			wantStatus(t, res, body, 404)
			if !strings.Contains(body, "outsider@example.com is not a member of leads.") {
				t.Errorf("404 does not say why:\n%s", body)
			}
		}
		res, body = ta.post(t, c, base+"/members/99999/remove", nil)
		wantStatus(t, res, body, 404)
		res, body = ta.post(t, c, base+"/members/"+idStr(carol.ID)+"/remove", nil)
		wantStatus(t, res, body, http.StatusSeeOther)
	})

	t.Run("pagination", func(t *testing.T) {
		big := mustGroup(t, ta, "big")
		for i := 0; i < 55; i++ {
			u := ta.createUser(t, fmt.Sprintf("m%02d@example.com", i), false)
			mustMember(t, ta, big, u, 0)
		}
		_, body := ta.get(t, c, "/admin/groups/"+idStr(big.ID), false)
		if !strings.Contains(body, "1–50 of 55 members") || strings.Contains(body, "m52@example.com") {
			t.Error("members page 1")
		}
		_, body = ta.get(t, c, "/admin/groups/"+idStr(big.ID)+"?page=2", false)
		if !strings.Contains(body, "m52@example.com") || strings.Contains(body, "m01@example.com") {
			t.Error("members page 2")
		}
	})
}

func dayOf(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02")
}

// TestAdminMemberExpiryEnforced: a membership added with an expiry grants
// access until that day, then stops at once, shows as expired, and can be
// renewed.
func TestAdminMemberExpiryEnforced(t *testing.T) {
	f := newAccessFixture(t)
	ta, c := f.ta, f.adminC
	panel := "/dashboards/test/panels/open"
	res, body := ta.post(t, c, "/admin/groups/"+idStr(f.team.ID)+"/members", url.Values{"user_id": {idStr(f.outsider.ID)}, "expires": {"2026-11-25"}})
	wantStatus(t, res, body, http.StatusSeeOther)
	if res, _ := ta.get(t, f.outsiderC, panel, true); res.StatusCode != 200 {
		t.Fatalf("before expiry: %d", res.StatusCode)
	}
	ta.Clock.Advance(36 * time.Hour) // 2026-11-25 00:00 UTC; the idle session ended too
	outsiderC := ta.login(t, "outsider@example.com")
	c = ta.login(t, "admin@example.com")
	res, body = ta.get(t, outsiderC, panel, true)
	if res.StatusCode != 403 || !strings.Contains(body, "has expired") {
		t.Fatalf("after expiry: %d %s", res.StatusCode, body)
	}
	_, page := ta.get(t, c, "/admin/groups/"+idStr(f.team.ID), false)
	if !strings.Contains(page, "expired 25 Nov 2026") || !strings.Contains(page, "Renew") {
		t.Error("group page does not show the membership as expired")
	}
	res, body = ta.post(t, c, "/admin/groups/"+idStr(f.team.ID)+"/members/"+idStr(f.outsider.ID)+"/expiry", url.Values{"expires": {"2027-06-01"}})
	wantStatus(t, res, body, http.StatusSeeOther)
	if res, _ := ta.get(t, outsiderC, panel, true); res.StatusCode != 200 {
		t.Errorf("after renewal: %d", res.StatusCode)
	}
}

// TestAdminNamesAreEscaped: a group or user named like markup is text on
// every admin page.
func TestAdminNamesAreEscaped(t *testing.T) {
	f := newAccessFixture(t)
	ta, c := f.ta, f.adminC
	ctx := context.Background()
	evil := `<img src=x onerror=alert(1)>`
	g, err := ta.store.CreateGroup(ctx, db.Actor{}, evil, `<script>alert(2)</script>`)
	if err != nil {
		t.Fatal(err)
	}
	mustMember(t, ta, g, f.member, 0)
	if err := ta.store.UpdateUserName(ctx, db.Actor{}, f.member.ID, `<b onmouseover=alert(3)>`); err != nil {
		t.Fatal(err)
	}
	if err := ta.store.AddGrant(ctx, db.Actor{}, "test", g.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ta.store.CreateAccessRequest(ctx, db.Actor{}, f.outsider.ID, "test", `<i>hi</i>`); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/admin", "/admin/groups", "/admin/groups?q=img", "/admin/groups/" + idStr(g.ID), "/admin/groups/" + idStr(g.ID) + "/delete",
		"/admin/users", "/admin/users/" + idStr(f.member.ID), "/admin/access", "/admin/requests", "/admin/audit",
		"/admin/explain?user=member%40example.com&dashboard=test", "/admin/groups/" + idStr(f.team.ID) + "/candidates?q=member"} {
		for _, htmx := range []bool{false, true} {
			res, body := ta.get(t, c, p, htmx)
			if res.StatusCode != 200 && res.StatusCode != 303 {
				t.Errorf("%s: %d", p, res.StatusCode)
			}
			for _, bad := range []string{"<img src=x", "<script>alert", "<b onmouseover", "<i>hi"} {
				if strings.Contains(body, bad) {
					t.Errorf("%s (htmx=%v) contains unescaped %q", p, htmx, bad)
				}
			}
		}
	}
	_, body := ta.get(t, c, "/admin/groups", false)
	if !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Error("the group name is not shown as text")
	}
}

// TestGroupNamesAreNFCAndVisible: group names are stored in NFC, and a
// name with a zero-width character, a leading byte order mark or a bidi
// control is refused (422 with the reason, plain and htmx; on the command
// line exit 1 with the reason, as for any bad name), so "SALES\u200b" cannot sit beside "sales" looking
// the same, nor "Cafe\u0301" beside "Café".
func TestGroupNamesAreNFCAndVisible(t *testing.T) {
	ta, c, _ := adminApp(t)
	ctx := context.Background()
	mustGroup(t, ta, "sales")
	other := mustGroup(t, ta, "other")
	for _, tc := range []struct{ name, want string }{
		{"SALES\u200b", "Group name must not contain invisible characters (it contains U+200B)"},
		{"sa\u2060les", "Group name must not contain invisible characters (it contains U+2060)"},
		{"\ufeffsales", "Group name starts with an invisible byte order mark (U+FEFF)"},
		{"sales\u202e", "Group name must not contain bidi controls, which reorder text on screen (it contains U+202E)"},
	} {
		for _, htmx := range []bool{false, true} {
			before := countGroups(t, ta)
			res, body := ta.send(t, c, http.MethodPost, "/admin/groups", url.Values{"name": {tc.name}}, htmx)
			wantStatus(t, res, body, http.StatusUnprocessableEntity)
			if !strings.Contains(body, tc.want) || strings.Contains(body, "<html") == htmx {
				t.Errorf("create %q (htmx %v): the reason is missing, or the wrong shape:\n%s", tc.name, htmx, body)
			}
			if countGroups(t, ta) != before {
				t.Errorf("create %q (htmx %v) made a group", tc.name, htmx)
			}
		}
		// Renaming a group to it is refused the same way.
		res, body := ta.post(t, c, "/admin/groups/"+idStr(other.ID), url.Values{"name": {tc.name}, "was_name": {"other"}, "was_description": {""}})
		wantStatus(t, res, body, http.StatusUnprocessableEntity)
		if g, _ := ta.store.GroupByID(ctx, other.ID); g.Name != "other" || !strings.Contains(body, tc.want) {
			t.Errorf("rename to %q: now %q\n%s", tc.name, g.Name, body)
		}
	}

	// Decomposed "Café" is stored composed, and is then the same name.
	res, body := ta.post(t, c, "/admin/groups", url.Values{"name": {"Cafe\u0301"}})
	wantStatus(t, res, body, http.StatusSeeOther)
	if g, err := ta.store.GroupByName(ctx, "caf\u00e9"); err != nil || g.Name != "Caf\u00e9" {
		t.Fatalf("stored as %q (%v), want NFC %q", g.Name, err, "Caf\u00e9")
	}
	if g, err := ta.store.GroupByName(ctx, "CAFE\u0301"); err != nil || g.Name != "Caf\u00e9" {
		t.Errorf("looked up in the decomposed form: %q (%v)", g.Name, err)
	}
	for _, name := range []string{"CAF\u00c9", "cafe\u0301"} {
		res, body := ta.post(t, c, "/admin/groups", url.Values{"name": {name}})
		wantStatus(t, res, body, http.StatusUnprocessableEntity)
		if !strings.Contains(body, "already exists") {
			t.Errorf("%q beside Café: %s", name, body)
		}
	}

}
