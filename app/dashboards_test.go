package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/a-h/templ"

	"gatehouse/app/dashboards"
	"gatehouse/components/charts"
	"gatehouse/db"
)

// dataCalls counts how often the test dashboard's Data functions ran.
type dataCalls struct{ open, leads atomic.Int64 }

// withTestDashboard registers "test" with an open panel and a panel for
// the "leads" group only; their Data functions count their calls.
func withTestDashboard(calls *dataCalls) func(*Config, *dashboards.Registry) {
	return func(_ *Config, r *dashboards.Registry) {
		r.MustRegister(&dashboards.Dashboard{
			Slug: "test", Title: "Test board", Description: "For tests",
			Panels: []*dashboards.Panel{
				{ID: "open", Title: "Open panel", Refresh: time.Second, Data: func(ctx context.Context, q dashboards.Query) (templ.Component, error) {
					calls.open.Add(1)
					return charts.Empty("secret open data"), nil
				}},
				{ID: "leads", Title: "Leads panel", RequireGroup: "leads", Data: func(ctx context.Context, q dashboards.Query) (templ.Component, error) {
					calls.leads.Add(1)
					return charts.Empty("secret leads data"), nil
				}},
			},
		})
	}
}

// accessFixture: "team" is granted "test"; member is in team; lead is in
// team and leads; outsider is in nothing; admin is an admin.
type accessFixture struct {
	ta                                *testApp
	calls                             *dataCalls
	team, leads                       db.Group
	member, lead, outsider, admin     db.User
	memberC, leadC, outsiderC, adminC *http.Client
}

func newAccessFixture(t *testing.T) *accessFixture {
	t.Helper()
	ctx := context.Background()
	calls := &dataCalls{}
	ta := newTestApp(t, withTestDashboard(calls))
	f := &accessFixture{ta: ta, calls: calls}
	var err error
	a := db.Actor{Email: "test"}
	if f.team, err = ta.store.CreateGroup(ctx, a, "team", ""); err != nil {
		t.Fatal(err)
	}
	if f.leads, err = ta.store.CreateGroup(ctx, a, "leads", ""); err != nil {
		t.Fatal(err)
	}
	f.member = ta.createUser(t, "member@example.com", false)
	f.lead = ta.createUser(t, "lead@example.com", false)
	f.outsider = ta.createUser(t, "outsider@example.com", false)
	f.admin = ta.createUser(t, "admin@example.com", true)
	for _, m := range []struct{ g, u int64 }{{f.team.ID, f.member.ID}, {f.team.ID, f.lead.ID}, {f.leads.ID, f.lead.ID}} {
		if err := ta.store.AddMember(ctx, a, m.g, m.u, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := ta.store.AddGrant(ctx, a, "test", f.team.ID); err != nil {
		t.Fatal(err)
	}
	f.memberC, f.leadC = ta.login(t, "member@example.com"), ta.login(t, "lead@example.com")
	f.outsiderC, f.adminC = ta.login(t, "outsider@example.com"), ta.login(t, "admin@example.com")
	return f
}

const denied = "You cannot view this dashboard"

func TestDashboardAuthorizationMatrix(t *testing.T) {
	f := newAccessFixture(t)
	anon := f.ta.client()
	type who struct {
		name string
		c    *http.Client
	}
	anonymous, outsider, member, lead, admin := who{"anonymous", anon}, who{"outsider", f.outsiderC}, who{"member", f.memberC}, who{"lead", f.leadC}, who{"admin", f.adminC}
	for _, tc := range []struct {
		path   string
		who    who
		htmx   bool
		status int
		text   string
	}{
		{"/dashboards/test", anonymous, false, 303, ""},
		{"/dashboards/test", outsider, false, 403, denied},
		{"/dashboards/test", member, false, 200, `hx-get="/dashboards/test/panels/open"`},
		{"/dashboards/test", admin, false, 200, `hx-get="/dashboards/test/panels/leads"`},
		{"/dashboards/test/panels/open", anonymous, true, 401, ""},
		{"/dashboards/test/panels/open", anonymous, false, 303, ""},
		{"/dashboards/test/panels/open", outsider, true, 403, denied},
		{"/dashboards/test/panels/open", outsider, false, 403, denied},
		{"/dashboards/test/panels/open", member, true, 200, "secret open data"},
		{"/dashboards/test/panels/open", member, false, 200, "secret open data"},
		{"/dashboards/test/panels/open", admin, true, 200, "secret open data"},
		{"/dashboards/test/panels/leads", member, true, 403, denied},
		{"/dashboards/test/panels/leads", member, false, 403, denied},
		{"/dashboards/test/panels/leads", lead, true, 200, "secret leads data"},
		{"/dashboards/test/panels/leads", outsider, true, 403, denied},
		{"/dashboards/test/panels/leads", admin, true, 200, "secret leads data"},
		{"/dashboards/nope", member, false, 404, ""},
		{"/dashboards/nope/panels/open", member, true, 404, ""},
		{"/dashboards/test/panels/nope", member, true, 404, ""},
		{"/dashboards/test/panels/nope", outsider, true, 404, ""},
		{"/dashboards/access/panels/overview", member, true, 403, "no group has been granted this dashboard"},
		{"/dashboards/access/panels/overview", admin, true, 200, "Active sessions"},
	} {
		name := tc.who.name + " " + tc.path
		if tc.htmx {
			name += " (htmx)"
		}
		t.Run(name, func(t *testing.T) {
			res, body := f.ta.get(t, tc.who.c, tc.path, tc.htmx)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if !strings.Contains(body, tc.text) {
				t.Errorf("body lacks %q", tc.text)
			}
			if tc.htmx && strings.Contains(body, "<html") {
				t.Error("htmx response is a full page")
			}
			if !tc.htmx && res.StatusCode == 200 && !strings.Contains(body, "<html") {
				t.Error("plain response is not a full page")
			}
			if tc.status == 401 && !strings.HasPrefix(res.Header.Get("HX-Redirect"), "/login?next=") {
				t.Errorf("401 without HX-Redirect to login: %q", res.Header.Get("HX-Redirect"))
			}
		})
	}
}

func TestDeniedViewerNeverRunsDataFunction(t *testing.T) {
	f := newAccessFixture(t)
	for i := 0; i < 3; i++ {
		f.ta.get(t, f.outsiderC, "/dashboards/test/panels/open", true)
		f.ta.get(t, f.outsiderC, "/dashboards/test/panels/leads", true)
		f.ta.get(t, f.memberC, "/dashboards/test/panels/leads", true)
		f.ta.get(t, f.ta.client(), "/dashboards/test/panels/open", true)
	}
	if n, m := f.calls.open.Load(), f.calls.leads.Load(); n != 0 || m != 0 {
		t.Fatalf("data functions ran for denied viewers: open=%d leads=%d", n, m)
	}
	f.ta.get(t, f.memberC, "/dashboards/test/panels/open", true)
	if f.calls.open.Load() != 1 {
		t.Error("allowed request did not run the data function (the counter is broken)")
	}
}

func TestDenialsAreAudited(t *testing.T) {
	f := newAccessFixture(t)
	for i := 0; i < 5; i++ { // polling: one row per minute, not per request
		f.ta.get(t, f.outsiderC, "/dashboards/test/panels/open", true)
	}
	if n := f.ta.countAudit(t, db.ActionAccessDenied, "test/open"); n != 1 {
		t.Errorf("denial audit rows = %d, want 1", n)
	}
	f.ta.Clock.Advance(2 * time.Minute)
	f.ta.get(t, f.outsiderC, "/dashboards/test/panels/open", true)
	if n := f.ta.countAudit(t, db.ActionAccessDenied, "test/open"); n != 2 {
		t.Errorf("denial audit rows after a while = %d, want 2", n)
	}
}

func TestRevocationTakesEffectOnNextRequest(t *testing.T) {
	ctx := context.Background()
	panel := "/dashboards/test/panels/open"
	t.Run("membership removed", func(t *testing.T) {
		f := newAccessFixture(t)
		if res, _ := f.ta.get(t, f.memberC, panel, true); res.StatusCode != 200 {
			t.Fatalf("before: %d", res.StatusCode)
		}
		if err := f.ta.store.RemoveMember(ctx, db.Actor{Email: "cli"}, f.team.ID, f.member.ID); err != nil {
			t.Fatal(err)
		}
		res, body := f.ta.get(t, f.memberC, panel, true)
		if res.StatusCode != 403 || !strings.Contains(body, "not in a group that has access") {
			t.Errorf("after removal: %d %s", res.StatusCode, body)
		}
	})
	t.Run("membership expired", func(t *testing.T) {
		f := newAccessFixture(t)
		exp := f.ta.Clock.Now().Add(time.Hour).UnixMilli()
		if err := f.ta.store.SetMemberExpiry(ctx, db.Actor{}, f.team.ID, f.member.ID, exp); err != nil {
			t.Fatal(err)
		}
		if res, _ := f.ta.get(t, f.memberC, panel, true); res.StatusCode != 200 {
			t.Fatalf("before expiry: %d", res.StatusCode)
		}
		f.ta.Clock.Advance(time.Hour)
		res, body := f.ta.get(t, f.memberC, panel, true)
		if res.StatusCode != 403 || !strings.Contains(body, "has expired") {
			t.Errorf("after expiry: %d %s", res.StatusCode, body)
		}
	})
	t.Run("grant removed", func(t *testing.T) {
		f := newAccessFixture(t)
		if err := f.ta.store.RemoveGrant(ctx, db.Actor{}, "test", f.team.ID); err != nil {
			t.Fatal(err)
		}
		if res, _ := f.ta.get(t, f.memberC, panel, true); res.StatusCode != 403 {
			t.Errorf("after grant removal: %d", res.StatusCode)
		}
	})
	t.Run("user deactivated", func(t *testing.T) {
		f := newAccessFixture(t)
		if err := f.ta.store.SetActive(ctx, db.Actor{}, f.member.ID, false); err != nil {
			t.Fatal(err)
		}
		res, _ := f.ta.get(t, f.memberC, panel, true)
		if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("HX-Redirect"), "/login") {
			t.Errorf("after deactivation: %d HX-Redirect %q", res.StatusCode, res.Header.Get("HX-Redirect"))
		}
	})
}

func TestRequestAccessFromDenial(t *testing.T) {
	f := newAccessFixture(t)
	_, body := f.ta.get(t, f.outsiderC, "/dashboards/test/panels/open", true)
	if !strings.Contains(body, "Request access") {
		t.Fatal("denial has no Request access button")
	}
	req, _ := http.NewRequest("POST", f.ta.Server.URL+"/dashboards/test/request", strings.NewReader(url.Values{"message": {"<b>please</b>"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	res, body := f.ta.do(t, f.outsiderC, req)
	if res.StatusCode != 200 || !strings.Contains(body, "waiting for an admin") {
		t.Fatalf("request: %d %s", res.StatusCode, body)
	}
	// A second request while one is pending changes nothing.
	f.ta.post(t, f.outsiderC, "/dashboards/test/request", url.Values{"message": {"again"}})
	reqs, total, err := f.ta.store.ListAccessRequests(context.Background(), db.RequestPending, 10, 0)
	if err != nil || total != 1 || reqs[0].Message != "<b>please</b>" || reqs[0].UserEmail != "outsider@example.com" {
		t.Fatalf("pending requests: %d %+v %v", total, reqs, err)
	}
	_, home := f.ta.get(t, f.outsiderC, "/", false)
	if !strings.Contains(home, "Access requested") {
		t.Error("home page does not show the pending request")
	}
	if err := f.ta.store.DecideAccessRequest(context.Background(), db.Actor{Email: "admin@example.com"}, reqs[0].ID, true, f.team.ID, ""); err != nil {
		t.Fatal(err)
	}
	if res, _ := f.ta.get(t, f.outsiderC, "/dashboards/test/panels/open", true); res.StatusCode != 200 {
		t.Errorf("after approval: %d", res.StatusCode)
	}
	_, home = f.ta.get(t, f.outsiderC, "/", false)
	if !strings.Contains(home, "Access approved") {
		t.Error("home page does not show the approval")
	}
	for _, action := range []string{db.ActionRequestCreate, db.ActionRequestApprove, db.ActionMemberAdd} {
		if f.ta.countAudit(t, action, "") == 0 {
			t.Errorf("no %s audit row", action)
		}
	}
}

func TestHomeListsDashboardsWithDecisions(t *testing.T) {
	f := newAccessFixture(t)
	_, body := f.ta.get(t, f.memberC, "/", false)
	if !strings.Contains(body, `href="/dashboards/test"`) {
		t.Error("member's home lacks a link to the granted dashboard")
	}
	if !strings.Contains(body, "Access") || !strings.Contains(body, "Locked") {
		t.Error("member's home does not show the locked built-in dashboard")
	}
	_, body = f.ta.get(t, f.outsiderC, "/", false)
	if strings.Contains(body, `href="/dashboards/test"`) || !strings.Contains(body, "Request access") {
		t.Error("outsider's home links the dashboard or lacks Request access")
	}
}

func TestDecideExplains(t *testing.T) {
	d := &dashboards.Dashboard{Slug: "d"}
	p := &dashboards.Panel{ID: "p", RequireGroup: "leads"}
	active := dashboards.Viewer{UserID: 1, IsActive: true}
	for _, tc := range []struct {
		name    string
		v       dashboards.Viewer
		panel   *dashboards.Panel
		facts   dashboards.Facts
		allowed bool
		code    string
		via     string
	}{
		{"inactive admin", dashboards.Viewer{IsAdmin: true}, nil, dashboards.Facts{}, false, dashboards.CodeInactive, ""},
		{"admin", dashboards.Viewer{IsAdmin: true, IsActive: true}, nil, dashboards.Facts{}, true, dashboards.CodeAdmin, ""},
		{"no grant", active, nil, dashboards.Facts{}, false, dashboards.CodeNoGrant, ""},
		{"not member", active, nil, dashboards.Facts{Granting: []db.GrantingGroup{{GroupName: "a"}}}, false, dashboards.CodeNotMember, ""},
		{"member", active, nil, dashboards.Facts{Granting: []db.GrantingGroup{{GroupName: "a"}, {GroupName: "b", Member: true}}}, true, dashboards.CodeGrant, "b"},
		{"expired", active, nil, dashboards.Facts{NowMS: 10, Granting: []db.GrantingGroup{{GroupName: "a", Member: true, ExpiresAt: 10}}}, false, dashboards.CodeExpired, ""},
		{"not member, quoted names", active, nil, dashboards.Facts{Granting: []db.GrantingGroup{{GroupName: `o"k`}, {GroupName: "b c"}}}, false, dashboards.CodeNotMember, ""},
		{"unexpired", active, nil, dashboards.Facts{NowMS: 10, Granting: []db.GrantingGroup{{GroupName: "a", Member: true, ExpiresAt: 11}}}, true, dashboards.CodeGrant, "a"},
		{"panel group missing", active, p, dashboards.Facts{Granting: []db.GrantingGroup{{GroupName: "a", Member: true}}}, false, dashboards.CodePanelGroup, ""},
		{"panel group expired", active, p, dashboards.Facts{NowMS: 5, PanelGroup: &db.Membership{ExpiresAt: 5}, Granting: []db.GrantingGroup{{GroupName: "a", Member: true}}}, false, dashboards.CodePanelGroup, ""},
		{"panel group ok", active, p, dashboards.Facts{PanelGroup: &db.Membership{}, Granting: []db.GrantingGroup{{GroupName: "a", Member: true}}}, true, dashboards.CodeGrant, "a"},
	} {
		got := dashboards.Decide(tc.v, d, tc.panel, tc.facts)
		if got.Allowed != tc.allowed || got.Code != tc.code || got.Via != tc.via || got.Reason == "" {
			t.Errorf("%s: got %+v, want allowed=%v code=%s via=%q", tc.name, got, tc.allowed, tc.code, tc.via)
		}
		if want, ok := reasons[tc.name]; ok && got.Reason != want {
			t.Errorf("%s: reason %q, want %q", tc.name, got.Reason, want)
		}
	}
}

// reasons are the sentences TestDecideExplains expects, word for word: the
// denial fragment, the audit log, the explainer and `access check` show them.
var reasons = map[string]string{
	"not member":               `you are not in a group that has access ("a" would grant it)`,
	"not member, quoted names": `you are not in a group that has access ("o\"k", "b c" would grant it)`,
	"member":                   `you are a member of "b", which is granted this dashboard`,
	"expired":                  `your membership in "a" has expired`,
	"panel group missing":      `this panel is only for members of "leads"`,
}

func TestDenialFragmentFollowsRequestStatus(t *testing.T) {
	f := newAccessFixture(t)
	_, before := f.ta.get(t, f.outsiderC, "/dashboards/test/panels/open", true)
	if !strings.Contains(before, "Request access") || strings.Contains(before, "waiting for an admin") {
		t.Fatal("first denial should offer Request access")
	}
	f.ta.post(t, f.outsiderC, "/dashboards/test/request", url.Values{"message": {"please"}})
	_, after := f.ta.get(t, f.outsiderC, "/dashboards/test/panels/open", true)
	if !strings.Contains(after, "waiting for an admin") {
		t.Error("after a request the denial still offers the button (a stale cached fragment)")
	}
	// Another outsider still sees the button: fragments are not per-user state.
	f.ta.createUser(t, "other@example.com", false)
	_, fresh := f.ta.get(t, f.ta.login(t, "other@example.com"), "/dashboards/test/panels/open", true)
	if !strings.Contains(fresh, "Request access") || strings.Contains(fresh, "waiting for an admin") {
		t.Error("another viewer got the first viewer's request status")
	}
}
