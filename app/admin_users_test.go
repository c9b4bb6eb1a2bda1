package app

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"gatehouse/db"
)

var tempPasswordRE = regexp.MustCompile(`<code class="temp-password">([a-z0-9-]+)</code>`)

func TestAdminUserCreate(t *testing.T) {
	ta, c, _ := adminApp(t)
	ctx := context.Background()
	for _, htmx := range []bool{false, true} {
		email := fmt.Sprintf("new-%v@example.com", htmx)
		res, body := ta.send(t, c, http.MethodPost, "/admin/users", url.Values{"email": {"  " + strings.ToUpper(email)}, "name": {"New Person"}}, htmx)
		wantStatus(t, res, body, 200)
		m := tempPasswordRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no temporary password shown:\n%s", body)
		}
		u, err := ta.store.UserByEmail(ctx, email)
		if err != nil || u.Name != "New Person" || u.IsAdmin || !u.MustChangePassword {
			t.Fatalf("stored %+v %v", u, err)
		}
		if ta.countAudit(t, db.ActionUserCreate, email) != 1 {
			t.Error("no audit row")
		}
		if htmx {
			// The list beside the form follows, out of band, counting the new user.
			totals, _ := ta.store.CountTotals(ctx)
			total := totals.Users
			table := between(body, `<div id="users-table" hx-swap-oob="true">`, "</nav>")
			if !strings.Contains(table, email) || !strings.Contains(table, fmt.Sprintf("of %d users", total)) {
				t.Errorf("users list not refreshed with the new user (want of %d users):\n%s", total, body)
			}
		}
		// The password is shown once: the user's page does not show it again.
		if _, page := ta.get(t, c, "/admin/users/"+idStr(u.ID), false); strings.Contains(page, m[1]) {
			t.Error("temporary password shown again")
		}
		// It works, and must be changed at first login.
		uc := ta.client()
		res, _ = ta.post(t, uc, "/login", url.Values{"email": {email}, "password": {m[1]}})
		if res.StatusCode != 303 || res.Header.Get("Location") != "/account/password" {
			t.Errorf("first login: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
	}
	res, body := ta.post(t, c, "/admin/users", url.Values{"email": {"boss@example.com"}, "admin": {"on"}})
	wantStatus(t, res, body, 200)
	if u, _ := ta.store.UserByEmail(ctx, "boss@example.com"); !u.IsAdmin {
		t.Error("admin box ignored")
	}
	for _, tc := range []struct{ email, name, want string }{
		{"", "", "Email is required."},
		{"not-an-email", "", "is not a valid email address"},
		{"NEW-TRUE@example.com", "", "A user with this email already exists."},
		{"ok@example.com", strings.Repeat("n", 101), "Name must be at most 100 characters."},
	} {
		for _, htmx := range []bool{false, true} {
			audits := ta.totalAudit(t)
			res, body := ta.send(t, c, http.MethodPost, "/admin/users", url.Values{"email": {tc.email}, "name": {tc.name}}, htmx)
			wantStatus(t, res, body, 422)
			if !strings.Contains(body, htmlEscape(tc.want)) {
				t.Errorf("%q: body lacks %q", tc.email, tc.want)
			}
			if tempPasswordRE.MatchString(body) || ta.totalAudit(t) != audits {
				t.Errorf("%q: refused create changed something", tc.email)
			}
		}
	}
}

func TestAdminUsersListFilters(t *testing.T) {
	f := newAccessFixture(t)
	ta, c := f.ta, f.adminC
	ctx := context.Background()
	for i := 0; i < 52; i++ {
		ta.createUser(t, fmt.Sprintf("bulk%02d@example.com", i), false)
	}
	if err := ta.store.SetActive(ctx, db.Actor{}, f.outsider.ID, false); err != nil {
		t.Fatal(err)
	}
	_, body := ta.get(t, c, "/admin/users", false)
	if !strings.Contains(body, "1–50 of 56 users") || !strings.Contains(body, `href="/admin/users?page=2"`) {
		t.Error("users page 1 lacks pagination")
	}
	for _, tc := range []struct {
		query     string
		want, not []string
	}{
		{"q=BULK0", []string{"bulk01@example.com", "1–10 of 10 users"}, []string{"member@example.com"}},
		{"group=" + idStr(f.team.ID), []string{"member@example.com", "lead@example.com"}, []string{"outsider@", "bulk"}},
		{"admin=on", []string{"admin@example.com"}, []string{"member@example.com"}},
		{"inactive=on", []string{"outsider@example.com"}, []string{"member@example.com"}},
		{"q=lead&group=" + idStr(f.team.ID), []string{"lead@example.com"}, []string{"member@example.com"}},
		{"q=nobody", []string{"No user matches these filters."}, nil},
	} {
		res, body := ta.get(t, c, "/admin/users?"+tc.query, true)
		wantStatus(t, res, body, 200)
		if !strings.HasPrefix(body, `<div id="users-table">`) {
			t.Errorf("%s: htmx answer is not the table", tc.query)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: lacks %q", tc.query, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(body, n) {
				t.Errorf("%s: shows %q", tc.query, n)
			}
		}
	}
	// Pagination keeps the filters.
	_, body = ta.get(t, c, "/admin/users?q=bulk", false)
	if !strings.Contains(body, `href="/admin/users?page=2&amp;q=bulk"`) {
		t.Error("page link drops the search")
	}
}

func TestAdminUserGroupToggle(t *testing.T) {
	f := newAccessFixture(t)
	ta, c := f.ta, f.adminC
	ctx := context.Background()
	p := "/admin/users/" + idStr(f.outsider.ID) + "/groups/" + idStr(f.team.ID)

	_, body := ta.get(t, c, "/admin/users/"+idStr(f.outsider.ID), false)
	if !strings.Contains(body, `hx-post="`+p+`"`) {
		t.Fatal("user page lacks the team checkbox")
	}
	// The checkbox posts a hidden "off" then "on" when ticked.
	res, body := ta.hxPost(t, c, p, url.Values{"member": {"off", "on"}})
	wantStatus(t, res, body, 200)
	if !strings.Contains(body, "checked") {
		t.Errorf("answer not ticked:\n%s", body)
	}
	if _, err := ta.store.MemberOf(ctx, f.team.ID, f.outsider.ID); err != nil {
		t.Fatal("not added")
	}
	if res, _ := ta.get(t, f.outsiderC, "/dashboards/test/panels/open", true); res.StatusCode != 200 {
		t.Errorf("new member denied: %d", res.StatusCode)
	}
	// Ticking again changes nothing and is not an error.
	audits := ta.totalAudit(t)
	res, body = ta.hxPost(t, c, p, url.Values{"member": {"off", "on"}})
	wantStatus(t, res, body, 200)
	if ta.totalAudit(t) != audits {
		t.Error("a no-op toggle wrote audit rows")
	}
	res, body = ta.post(t, c, p, url.Values{"member": {"off"}})
	wantStatus(t, res, body, http.StatusSeeOther)
	if _, err := ta.store.MemberOf(ctx, f.team.ID, f.outsider.ID); err == nil {
		t.Fatal("not removed")
	}
	if ta.countAudit(t, db.ActionMemberAdd, "team / outsider@example.com") != 1 || ta.countAudit(t, db.ActionMemberRemove, "team / outsider@example.com") != 1 {
		t.Error("toggles not audited")
	}
	res, body = ta.hxPost(t, c, p, url.Values{"member": {"maybe"}})
	wantStatus(t, res, body, 422)
	res, body = ta.hxPost(t, c, "/admin/users/"+idStr(f.outsider.ID)+"/groups/9999", url.Values{"member": {"on"}})
	wantStatus(t, res, body, 404)
	res, body = ta.hxPost(t, c, "/admin/users/9999/groups/"+idStr(f.team.ID), url.Values{"member": {"on"}})
	wantStatus(t, res, body, 404)

	// The checklist search answers the checklist alone, the user's groups first.
	req, _ := http.NewRequest("GET", ta.Server.URL+"/admin/users/"+idStr(f.lead.ID)+"?gq=lea", nil)
	req.Header.Set("HX-Request", "true")
	req.Header.Set("HX-Target", "user-groups")
	res, body = ta.do(t, c, req)
	wantStatus(t, res, body, 200)
	if !strings.HasPrefix(body, `<article id="user-groups">`) || !strings.Contains(body, "leads") || strings.Contains(body, ">team<") {
		t.Errorf("checklist search:\n%s", body)
	}
}

// TestAdminLastAdminGuard: the only active admin cannot be demoted or
// deactivated; the page says why and nothing changes. With a second admin
// both work.
func TestAdminLastAdminGuard(t *testing.T) {
	ta, c, admin := adminApp(t)
	ctx := context.Background()
	for _, tc := range []struct{ path, field, value, want string }{
		{"/admin", "admin", "false", "admin@example.com is the last active admin, so they cannot be demoted"},
		{"/active", "active", "false", "admin@example.com is the last active admin, so they cannot be deactivated"},
	} {
		for _, htmx := range []bool{false, true} {
			audits := ta.totalAudit(t)
			res, body := ta.send(t, c, http.MethodPost, "/admin/users/"+idStr(admin.ID)+tc.path, url.Values{tc.field: {tc.value}}, htmx)
			wantStatus(t, res, body, 422)
			if !strings.Contains(body, tc.want) || !strings.Contains(body, "Make another user an admin first.") {
				t.Errorf("%s: reason missing:\n%s", tc.path, body)
			}
			if htmx && !strings.HasPrefix(body, `<article id="user-status">`) {
				t.Error("htmx 422 is not the status card")
			}
			if u, _ := ta.store.UserByID(ctx, admin.ID); !u.IsAdmin || !u.IsActive || ta.totalAudit(t) != audits {
				t.Errorf("%s: refused change changed something", tc.path)
			}
		}
	}
	// Still logged in and still an admin.
	if res, _ := ta.get(t, c, "/admin", false); res.StatusCode != 200 {
		t.Fatal("the admin lost access")
	}
	second := ta.createUser(t, "second@example.com", false)
	res, body := ta.post(t, c, "/admin/users/"+idStr(second.ID)+"/admin", url.Values{"admin": {"true"}})
	wantStatus(t, res, body, http.StatusSeeOther)
	if ta.countAudit(t, db.ActionUserPromote, "second@example.com") != 1 {
		t.Error("promotion not audited")
	}
	// Demoting yourself now works and takes you out of the admin pages.
	res, body = ta.hxPost(t, c, "/admin/users/"+idStr(admin.ID)+"/admin", url.Values{"admin": {"false"}})
	wantStatus(t, res, body, http.StatusNoContent)
	if res.Header.Get("HX-Redirect") != "/" {
		t.Errorf("self-demotion redirect %q", res.Header.Get("HX-Redirect"))
	}
	if u, _ := ta.store.UserByID(ctx, admin.ID); u.IsAdmin {
		t.Error("not demoted")
	}
	if ta.countAudit(t, db.ActionUserDemote, "admin@example.com") != 1 {
		t.Error("demotion not audited")
	}
	if res, _ := ta.get(t, c, "/admin", false); res.StatusCode != 403 {
		t.Errorf("demoted admin still gets the panel: %d", res.StatusCode)
	}
}

// TestAdminDeactivateRevokesSessions: deactivation ends the user's sessions
// at once; their browser is sent to the login page on its next request and
// cannot log in again until reactivated.
func TestAdminDeactivateRevokesSessions(t *testing.T) {
	f := newAccessFixture(t)
	ta, c := f.ta, f.adminC
	ctx := context.Background()
	phone := ta.login(t, "member@example.com")
	res, body := ta.hxPost(t, c, "/admin/users/"+idStr(f.member.ID)+"/active", url.Values{"active": {"false"}})
	wantStatus(t, res, body, 200)
	if !strings.Contains(body, "deactivated") || !strings.Contains(body, "Reactivate") {
		t.Errorf("status card:\n%s", body)
	}
	if s, _ := ta.store.ListSessions(ctx, f.member.ID); len(s) != 0 {
		t.Errorf("%d sessions left", len(s))
	}
	for _, cl := range []*http.Client{f.memberC, phone} {
		res, _ := ta.get(t, cl, "/", false)
		if res.StatusCode != 303 || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
			t.Errorf("deactivated user's browser: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		res, _ = ta.get(t, cl, "/dashboards/test/panels/open", true)
		if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("HX-Redirect"), "/login") {
			t.Errorf("deactivated user's panel: %d", res.StatusCode)
		}
	}
	res, _ = ta.post(t, ta.client(), "/login", url.Values{"email": {"member@example.com"}, "password": {testPassword}})
	if res.StatusCode != 401 {
		t.Errorf("deactivated user logged in: %d", res.StatusCode)
	}
	if ta.countAudit(t, db.ActionUserDeactivate, "member@example.com") != 1 {
		t.Error("not audited")
	}
	res, body = ta.post(t, c, "/admin/users/"+idStr(f.member.ID)+"/active", url.Values{"active": {"true"}})
	wantStatus(t, res, body, http.StatusSeeOther)
	ta.login(t, "member@example.com")
	if ta.countAudit(t, db.ActionUserActivate, "member@example.com") != 1 {
		t.Error("reactivation not audited")
	}
	res, body = ta.post(t, c, "/admin/users/"+idStr(f.member.ID)+"/active", url.Values{"active": {"perhaps"}})
	wantStatus(t, res, body, 422)
	res, body = ta.post(t, c, "/admin/users/9999/active", url.Values{"active": {"false"}})
	wantStatus(t, res, body, 404)
}

func TestAdminResetPassword(t *testing.T) {
	f := newAccessFixture(t)
	ta, c := f.ta, f.adminC
	ctx := context.Background()
	res, body := ta.hxPost(t, c, "/admin/users/"+idStr(f.member.ID)+"/password", nil)
	wantStatus(t, res, body, 200)
	m := tempPasswordRE.FindStringSubmatch(body)
	if m == nil || !strings.HasPrefix(body, `<article id="user-password">`) {
		t.Fatalf("no temporary password:\n%s", body)
	}
	if s, _ := ta.store.ListSessions(ctx, f.member.ID); len(s) != 0 {
		t.Error("sessions survived the reset")
	}
	if res, _ := ta.get(t, f.memberC, "/", false); res.StatusCode != 303 {
		t.Error("old session still works")
	}
	if res, _ := ta.post(t, ta.client(), "/login", url.Values{"email": {"member@example.com"}, "password": {testPassword}}); res.StatusCode != 401 {
		t.Error("old password still works")
	}
	res, _ = ta.post(t, ta.client(), "/login", url.Values{"email": {"member@example.com"}, "password": {m[1]}})
	if res.StatusCode != 303 || res.Header.Get("Location") != "/account/password" {
		t.Errorf("temporary password login: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if ta.countAudit(t, db.ActionPasswordChange, "member@example.com") != 1 {
		t.Error("not audited")
	}
	// Plain form: the full page shows the password once.
	res, body = ta.post(t, c, "/admin/users/"+idStr(f.member.ID)+"/password", nil)
	wantStatus(t, res, body, 200)
	if !tempPasswordRE.MatchString(body) || !strings.Contains(body, "<html") {
		t.Error("plain reset does not show the password in the page")
	}
	// Admins change their own password on their account page.
	res, body = ta.hxPost(t, c, "/admin/users/"+idStr(f.admin.ID)+"/password", nil)
	wantStatus(t, res, body, 422)
	if tempPasswordRE.MatchString(body) {
		t.Error("self reset went through")
	}
	res, body = ta.post(t, c, "/admin/users/9999/password", nil)
	wantStatus(t, res, body, 404)
}

func TestAdminRevokeSession(t *testing.T) {
	f := newAccessFixture(t)
	ta, c := f.ta, f.adminC
	ctx := context.Background()
	laptop := ta.login(t, "member@example.com")
	sessions, _ := ta.store.ListSessions(ctx, f.member.ID)
	if len(sessions) != 2 {
		t.Fatalf("%d sessions", len(sessions))
	}
	laptopHash := db.HashToken(mustSessionID(t, ta, laptop))
	_, page := ta.get(t, c, "/admin/users/"+idStr(f.member.ID), false)
	if !strings.Contains(page, "/sessions/"+laptopHash+"/revoke") {
		t.Fatal("sessions list lacks the laptop")
	}
	res, body := ta.hxPost(t, c, "/admin/users/"+idStr(f.member.ID)+"/sessions/"+laptopHash+"/revoke", nil)
	wantStatus(t, res, body, 200)
	// The sessions list comes back without the laptop, saying what happened.
	if strings.Contains(body, laptopHash) || !strings.Contains(body, `id="sessions"`) || !strings.Contains(body, "Session revoked") {
		t.Errorf("revoke answer should be the sessions list without the laptop: %q", body)
	}
	if res, _ := ta.get(t, laptop, "/", false); res.StatusCode != 303 {
		t.Error("revoked session still works")
	}
	if res, _ := ta.get(t, f.memberC, "/", false); res.StatusCode != 200 {
		t.Error("the other session was revoked too")
	}
	if ta.countAudit(t, db.ActionSessionRevoke, "member@example.com") != 1 {
		t.Error("not audited")
	}
	res, body = ta.hxPost(t, c, "/admin/users/"+idStr(f.member.ID)+"/sessions/"+laptopHash+"/revoke", nil)
	wantStatus(t, res, body, 404)
	// Someone else's session id under this user is unknown too.
	adminHash := db.HashToken(mustSessionID(t, ta, c))
	res, body = ta.post(t, c, "/admin/users/"+idStr(f.member.ID)+"/sessions/"+adminHash+"/revoke", nil)
	wantStatus(t, res, body, 404)
}

// mustSessionID returns the server-side id of a client's session.
func mustSessionID(t *testing.T, ta *testApp, c *http.Client) string {
	t.Helper()
	value := ta.sessionCookie(c)
	req, _ := http.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: ta.sessions.CookieName(), Value: value})
	sess, err := ta.sessions.New(req, ta.sessions.CookieName())
	if err != nil || sess.ID == "" {
		t.Fatalf("cannot read session: %v", err)
	}
	return sess.ID
}

func TestAdminRenameUser(t *testing.T) {
	f := newAccessFixture(t)
	ta, c := f.ta, f.adminC
	ctx := context.Background()
	p := "/admin/users/" + idStr(f.member.ID)
	res, body := ta.hxPost(t, c, p, url.Values{"name": {"  Mem Ber  "}})
	wantStatus(t, res, body, 200)
	if !strings.Contains(body, `value="Mem Ber"`) || !strings.Contains(body, "Name saved.") {
		t.Errorf("answer:\n%s", body)
	}
	if u, _ := ta.store.UserByID(ctx, f.member.ID); u.Name != "Mem Ber" {
		t.Errorf("name %q", u.Name)
	}
	if ta.countAudit(t, db.ActionUserUpdate, "member@example.com") != 1 {
		t.Error("rename not audited")
	}
	for bad, status := range map[string]int{strings.Repeat("n", 101): 422, "a\x07b": 422, "a\x00b": 400} {
		audits := ta.totalAudit(t)
		res, body = ta.post(t, c, p, url.Values{"name": {bad}})
		wantStatus(t, res, body, status)
		if u, _ := ta.store.UserByID(ctx, f.member.ID); u.Name != "Mem Ber" || ta.totalAudit(t) != audits {
			t.Error("refused rename changed something")
		}
	}
	res, body = ta.post(t, c, "/admin/users/9999", url.Values{"name": {"x"}})
	wantStatus(t, res, body, 404)
}
