package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"gatehouse/db"
)

// send sends method to path with form (for POST); htmx adds HX-Request.
func (ta *testApp) send(t testing.TB, c *http.Client, method, path string, form url.Values, htmx bool) (*http.Response, string) {
	t.Helper()
	var body *strings.Reader
	if method == http.MethodPost {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, ta.Server.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if htmx {
		req.Header.Set("HX-Request", "true")
	}
	return ta.do(t, c, req)
}

// hxPost sends an htmx form POST.
func (ta *testApp) hxPost(t testing.TB, c *http.Client, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	return ta.send(t, c, http.MethodPost, path, form, true)
}

// totalAudit counts every audit row.
func (ta *testApp) totalAudit(t testing.TB) int {
	t.Helper()
	n, err := ta.store.DB.NewSelect().Model((*db.AuditEvent)(nil)).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func idStr(n int64) string { return strconv.FormatInt(n, 10) }

func mustGroup(t testing.TB, ta *testApp, name string) db.Group {
	t.Helper()
	g, err := ta.store.CreateGroup(context.Background(), db.Actor{Email: "test"}, name, "")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func mustMember(t testing.TB, ta *testApp, g db.Group, u db.User, expires int64) {
	t.Helper()
	if err := ta.store.AddMember(context.Background(), db.Actor{Email: "test"}, g.ID, u.ID, expires); err != nil {
		t.Fatal(err)
	}
}

// wantStatus fails the test unless res has status want.
func wantStatus(t testing.TB, res *http.Response, body string, want int) {
	t.Helper()
	if res.StatusCode != want {
		t.Fatalf("status %d, want %d; body:\n%s", res.StatusCode, want, body)
	}
}

// adminRoute is one /admin route of the authorization matrix. setup
// prepares fresh data for one request and returns its path and form, so
// each variant of a state-changing request has something to change.
type adminRoute struct {
	method string
	name   string
	setup  func(t *testing.T, n int) (string, url.Values)
	// plain and htmx are an admin's expected statuses.
	plain, htmx int
}

// TestAdminAuthorizationMatrix sends every /admin route as anonymous
// (plain: 303 to the login page with next; htmx: 401 with HX-Redirect), as
// a logged-in non-admin (403) and as an admin, with and without htmx, raw
// POSTs included. Refused requests change nothing.
func TestAdminAuthorizationMatrix(t *testing.T) {
	f := newAccessFixture(t)
	ta := f.ta
	ctx := context.Background()
	extra := mustGroup(t, ta, "extra")
	mustMember(t, ta, extra, f.member, 0)
	victim := ta.createUser(t, "victim@example.com", false)

	fixed := func(path string, form url.Values) func(*testing.T, int) (string, url.Values) {
		return func(*testing.T, int) (string, url.Values) { return path, form }
	}
	freshGroup := func(t *testing.T, n int) db.Group { return mustGroup(t, ta, fmt.Sprintf("fresh-%d", n)) }
	routes := []adminRoute{
		{"GET", "overview", fixed("/admin", nil), 200, 200},
		{"GET", "overview slash", fixed("/admin/", nil), 200, 200},
		{"GET", "groups", fixed("/admin/groups", nil), 200, 200},
		{"POST", "create group", func(_ *testing.T, n int) (string, url.Values) {
			return "/admin/groups", url.Values{"name": {fmt.Sprintf("created-%d", n)}}
		}, 303, 204},
		{"GET", "group", fixed("/admin/groups/"+idStr(f.team.ID), nil), 200, 200},
		{"POST", "edit group", fixed("/admin/groups/"+idStr(extra.ID), url.Values{"name": {"extra"}, "description": {"d"}}), 303, 200},
		{"GET", "confirm delete", fixed("/admin/groups/"+idStr(extra.ID)+"/delete", nil), 200, 200},
		{"POST", "delete group", func(t *testing.T, n int) (string, url.Values) {
			return "/admin/groups/" + idStr(freshGroup(t, n).ID) + "/delete", nil
		}, 303, 204},
		{"GET", "candidates", fixed("/admin/groups/"+idStr(f.team.ID)+"/candidates?q=out", nil), 303, 200},
		{"POST", "add member", func(t *testing.T, n int) (string, url.Values) {
			return "/admin/groups/" + idStr(freshGroup(t, n).ID) + "/members", url.Values{"user_id": {idStr(f.outsider.ID)}}
		}, 303, 200},
		{"POST", "remove member", func(t *testing.T, n int) (string, url.Values) {
			g := freshGroup(t, n)
			mustMember(t, ta, g, f.outsider, 0)
			return "/admin/groups/" + idStr(g.ID) + "/members/" + idStr(f.outsider.ID) + "/remove", nil
		}, 303, 200},
		{"POST", "member expiry", fixed("/admin/groups/"+idStr(extra.ID)+"/members/"+idStr(f.member.ID)+"/expiry", url.Values{"expires": {"2030-01-01"}}), 303, 200},
		{"GET", "users", fixed("/admin/users", nil), 200, 200},
		{"POST", "create user", func(_ *testing.T, n int) (string, url.Values) {
			return "/admin/users", url.Values{"email": {fmt.Sprintf("new%d@example.com", n)}}
		}, 200, 200},
		{"GET", "user", fixed("/admin/users/"+idStr(f.member.ID), nil), 200, 200},
		{"POST", "rename user", fixed("/admin/users/"+idStr(f.member.ID), url.Values{"name": {"Member"}}), 303, 200},
		{"POST", "toggle group", fixed("/admin/users/"+idStr(f.outsider.ID)+"/groups/"+idStr(extra.ID), url.Values{"member": {"on"}}), 303, 200},
		{"POST", "active", fixed("/admin/users/"+idStr(f.outsider.ID)+"/active", url.Values{"active": {"true"}}), 303, 200},
		{"POST", "admin flag", fixed("/admin/users/"+idStr(f.outsider.ID)+"/admin", url.Values{"admin": {"false"}}), 303, 200},
		{"POST", "reset password", fixed("/admin/users/"+idStr(victim.ID)+"/password", nil), 200, 200},
		{"POST", "revoke session", func(t *testing.T, n int) (string, url.Values) {
			ta.login(t, "outsider@example.com")
			sess, err := ta.store.ListSessions(ctx, f.outsider.ID)
			if err != nil || len(sess) == 0 {
				t.Fatal("no session", err)
			}
			return "/admin/users/" + idStr(f.outsider.ID) + "/sessions/" + sess[0].IDHash + "/revoke", nil
		}, 303, 200},
		{"GET", "access", fixed("/admin/access", nil), 200, 200},
		{"POST", "toggle grant", fixed("/admin/access/test/"+idStr(extra.ID), url.Values{"grant": {"on"}}), 303, 200},
		{"GET", "requests", fixed("/admin/requests", nil), 200, 200},
		{"POST", "decide request", func(t *testing.T, n int) (string, url.Values) {
			req, err := ta.store.CreateAccessRequest(ctx, db.Actor{}, victim.ID, "test", "")
			if errors.Is(err, db.ErrDuplicate) { // still pending after a refused variant
				reqs, _, err2 := ta.store.ListAccessRequests(ctx, db.RequestPending, 1, 0)
				if err2 != nil || len(reqs) == 0 {
					t.Fatal(err2)
				}
				req, err = reqs[0], nil
			}
			if err != nil {
				t.Fatal(err)
			}
			return "/admin/requests/" + idStr(req.ID), url.Values{"decision": {"deny"}}
		}, 303, 200},
		{"GET", "explain", fixed("/admin/explain?user=member%40example.com&dashboard=test", nil), 200, 200},
		{"GET", "audit", fixed("/admin/audit", nil), 200, 200},
		{"GET", "unknown admin page", fixed("/admin/nope", nil), 404, 404},
		{"POST", "unknown admin action", fixed("/admin/users/"+idStr(f.member.ID)+"/nope", nil), 404, 404},
	}
	type who struct {
		name string
		c    *http.Client
	}
	n := 0
	for _, rt := range routes {
		for _, w := range []who{{"anonymous", ta.client()}, {"non-admin", f.memberC}, {"admin", f.adminC}} {
			for _, htmx := range []bool{false, true} {
				n++
				name := fmt.Sprintf("%s %s/%s", rt.name, w.name, map[bool]string{false: "plain", true: "htmx"}[htmx])
				t.Run(name, func(t *testing.T) {
					path, form := rt.setup(t, n)
					before := ta.totalAudit(t)
					res, body := ta.send(t, w.c, rt.method, path, form, htmx)
					switch w.name {
					case "anonymous":
						loginTo := "/login?next=" + url.QueryEscape(path)
						if htmx {
							wantStatus(t, res, body, http.StatusUnauthorized)
							if got := res.Header.Get("HX-Redirect"); !strings.HasPrefix(got, "/login?next=") {
								t.Errorf("HX-Redirect %q", got)
							}
						} else {
							wantStatus(t, res, body, http.StatusSeeOther)
							if got := res.Header.Get("Location"); got != loginTo {
								t.Errorf("Location %q, want %q", got, loginTo)
							}
						}
					case "non-admin":
						wantStatus(t, res, body, http.StatusForbidden)
						if !strings.Contains(body, "for admins") { // "admins only", or "admins and … managers"
							t.Errorf("403 does not say why: %s", body)
						}
					case "admin":
						want := rt.plain
						if htmx {
							want = rt.htmx
						}
						wantStatus(t, res, body, want)
						if want == 200 && htmx && strings.Contains(body, "<html") {
							t.Error("htmx answer is a full page")
						}
						if want == 200 && !htmx && !strings.Contains(body, "<html") {
							t.Error("plain answer is not a full page")
						}
						if want == 204 && !strings.HasPrefix(res.Header.Get("HX-Redirect"), "/admin/") {
							t.Errorf("204 without HX-Redirect: %q", res.Header.Get("HX-Redirect"))
						}
					}
					if w.name != "admin" {
						if after := ta.totalAudit(t); after != before {
							t.Errorf("a refused request wrote %d audit rows", after-before)
						}
					}
				})
			}
		}
	}
	// The refused requests changed nothing: the victim still has their
	// password and the outsider is no admin.
	if u, _ := ta.store.UserByID(ctx, f.outsider.ID); u.IsAdmin || !u.IsActive {
		t.Errorf("outsider changed: %+v", u)
	}
}

// TestAdminRefusalsChangeNothing sends each kind of change as a non-admin
// and checks the database, not just the status.
func TestAdminRefusalsChangeNothing(t *testing.T) {
	f := newAccessFixture(t)
	ta := f.ta
	ctx := context.Background()
	for _, c := range []*http.Client{ta.client(), f.memberC} {
		ta.post(t, c, "/admin/groups", url.Values{"name": {"sneaky"}})
		ta.post(t, c, "/admin/users/"+idStr(f.member.ID)+"/admin", url.Values{"admin": {"true"}})
		ta.post(t, c, "/admin/users/"+idStr(f.admin.ID)+"/active", url.Values{"active": {"false"}})
		ta.post(t, c, "/admin/groups/"+idStr(f.leads.ID)+"/members", url.Values{"user_id": {idStr(f.member.ID)}})
		ta.post(t, c, "/admin/access/access/"+idStr(f.team.ID), url.Values{"grant": {"on"}})
		ta.post(t, c, "/admin/groups/"+idStr(f.team.ID)+"/delete", nil)
	}
	if _, err := ta.store.GroupByName(ctx, "sneaky"); err == nil {
		t.Error("a non-admin created a group")
	}
	if u, _ := ta.store.UserByID(ctx, f.member.ID); u.IsAdmin {
		t.Error("a non-admin promoted themselves")
	}
	if u, _ := ta.store.UserByID(ctx, f.admin.ID); !u.IsActive {
		t.Error("a non-admin deactivated the admin")
	}
	if _, err := ta.store.MemberOf(ctx, f.leads.ID, f.member.ID); err == nil {
		t.Error("a non-admin joined a group")
	}
	if gs, _ := ta.store.GrantingGroups(ctx, f.member.ID, "access"); len(gs) != 0 {
		t.Error("a non-admin granted a dashboard")
	}
	if _, err := ta.store.GroupByID(ctx, f.team.ID); err != nil {
		t.Error("a non-admin deleted a group")
	}
}

func TestAdminOverview(t *testing.T) {
	f := newAccessFixture(t)
	ta := f.ta
	if _, err := ta.store.CreateAccessRequest(context.Background(), db.Actor{}, f.outsider.ID, "test", "please"); err != nil {
		t.Fatal(err)
	}
	res, body := ta.get(t, f.adminC, "/admin", false)
	wantStatus(t, res, body, 200)
	for _, want := range []string{"Active users", "Pending requests", `href="/admin/requests"`,
		"1 access request is waiting", "1 dashboard is not granted to any group", `aria-current="page"`} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
}
