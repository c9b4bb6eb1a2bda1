package app

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

func newDemoTestApp(t *testing.T) *testApp {
	t.Helper()
	return newTestApp(t, func(c *Config, r *dashboards.Registry) { dashboards.RegisterDemo(r) })
}

// seedDemo runs SeedDemo and returns what it printed.
func (ta *testApp) seedDemo(t *testing.T) string {
	t.Helper()
	var out strings.Builder
	if err := ta.SeedDemo(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// demoSnapshot is every row SeedDemo may touch, in a comparable form.
type demoSnapshot struct {
	Users       []string
	Groups      []string
	Memberships []string
	Grants      []string
	Audit       int
}

func (ta *testApp) demoSnapshot(t *testing.T) demoSnapshot {
	t.Helper()
	ctx := context.Background()
	var s demoSnapshot
	var users []db.User
	if err := ta.store.DB.NewSelect().Model(&users).Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		s.Users = append(s.Users, fmt.Sprintf("%d %s %q admin=%v active=%v must=%v hash=%s", u.ID, u.Email, u.Name, u.IsAdmin, u.IsActive, u.MustChangePassword, u.PasswordHash))
	}
	var groups []db.Group
	if err := ta.store.DB.NewSelect().Model(&groups).Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		s.Groups = append(s.Groups, fmt.Sprintf("%d %s %q", g.ID, g.Name, g.Description))
	}
	var members []db.Membership
	if err := ta.store.DB.NewSelect().Model(&members).Order("group_id", "user_id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		s.Memberships = append(s.Memberships, fmt.Sprintf("%d/%d expires=%d", m.GroupID, m.UserID, m.ExpiresAt))
	}
	grants, err := ta.store.ListGrants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range grants {
		s.Grants = append(s.Grants, g.Dashboard+" → "+g.GroupName)
	}
	n, err := ta.store.DB.NewSelect().Model((*db.AuditEvent)(nil)).Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Audit = int(n)
	return s
}

func TestSeedDemoCreatesGroupsUsersAndGrants(t *testing.T) {
	ta := newDemoTestApp(t)
	out := ta.seedDemo(t)

	for _, w := range []string{"/login", DemoPassword, "alice@demo.example", "lee@demo.example", "sam@demo.example",
		"fran@demo.example", "olivia@demo.example", "admin@demo.example", "Rep performance"} {
		if !strings.Contains(out, w) {
			t.Errorf("SeedDemo output lacks %q:\n%s", w, out)
		}
	}
	s := ta.demoSnapshot(t)
	if want := []string{"finance → finance", "sales → sales", "support → support"}; !reflect.DeepEqual(s.Grants, want) {
		t.Errorf("grants = %v, want %v", s.Grants, want)
	}
	ctx := context.Background()
	for _, name := range []string{"sales", "sales-leads", "support", "finance"} {
		g, err := ta.store.GroupByName(ctx, name)
		if err != nil {
			t.Fatalf("group %s: %v", name, err)
		}
		if g.Description == "" {
			t.Errorf("group %s has no description", name)
		}
	}
	wantGroups := map[string][]string{
		"alice@demo.example":  {"sales"},
		"lee@demo.example":    {"sales", "sales-leads"},
		"sam@demo.example":    {"support"},
		"fran@demo.example":   {"finance"},
		"olivia@demo.example": nil,
		"admin@demo.example":  nil,
	}
	for email, want := range wantGroups {
		u, err := ta.store.UserByEmail(ctx, email)
		if err != nil {
			t.Fatalf("user %s: %v", email, err)
		}
		if u.MustChangePassword || !u.IsActive || u.IsAdmin != (email == "admin@demo.example") {
			t.Errorf("%s: must change %v, active %v, admin %v", email, u.MustChangePassword, u.IsActive, u.IsAdmin)
		}
		ok, _, err := ta.hasher.Verify(ctx, DemoPassword, u.PasswordHash)
		if err != nil || !ok {
			t.Errorf("%s: the demo password does not verify (%v)", email, err)
		}
		ugs, err := ta.store.GroupsOfUser(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, g := range ugs {
			got = append(got, g.Name)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s is in %v, want %v", email, got, want)
		}
	}
	// Every creation is audited as the demo.
	var actors []string
	if err := ta.store.DB.NewSelect().Model((*db.AuditEvent)(nil)).ColumnExpr("DISTINCT actor_email").Scan(ctx, &actors); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(actors, []string{"demo"}) {
		t.Errorf("audit actors = %v, want [demo]", actors)
	}
	for action, want := range map[string]int{db.ActionUserCreate: 6, db.ActionGroupCreate: 4, db.ActionMemberAdd: 5, db.ActionGrantAdd: 3} {
		if got := ta.countAudit(t, action, ""); got != want {
			t.Errorf("%d %s audit rows, want %d", got, action, want)
		}
	}
	if err := db.CheckPasswordPolicy(DemoPassword); err != nil {
		t.Errorf("DemoPassword fails the policy: %v", err)
	}
}

func TestSeedDemoTwiceLeavesTheSameData(t *testing.T) {
	ta := newDemoTestApp(t)
	ta.seedDemo(t)
	first := ta.demoSnapshot(t)
	ta.Clock.Advance(24 * time.Hour)
	out := ta.seedDemo(t)
	second := ta.demoSnapshot(t)
	if !reflect.DeepEqual(first, second) {
		t.Errorf("the second run changed the data:\nfirst  %+v\nsecond %+v", first, second)
	}
	if len(first.Users) != 6 || len(first.Groups) != 4 || len(first.Memberships) != 5 || len(first.Grants) != 3 {
		t.Errorf("seeded %d users, %d groups, %d memberships, %d grants; want 6, 4, 5, 3",
			len(first.Users), len(first.Groups), len(first.Memberships), len(first.Grants))
	}
	if !strings.Contains(out, "already existed") {
		t.Errorf("the second run does not say the users already existed:\n%s", out)
	}
}

// TestSeedDemoKeepsWhatPeopleChanged: a demo user's new password survives a
// restart with --demo, and a removed membership or grant is put back.
func TestSeedDemoKeepsChangedPasswords(t *testing.T) {
	ta := newDemoTestApp(t)
	ta.seedDemo(t)
	ctx := context.Background()
	alice, err := ta.store.UserByEmail(ctx, "alice@demo.example")
	if err != nil {
		t.Fatal(err)
	}
	hash, err := ta.hasher.Hash(ctx, "alice's own new password")
	if err != nil {
		t.Fatal(err)
	}
	if err := ta.store.SetPassword(ctx, db.Actor{Email: "alice@demo.example"}, alice.ID, hash, false); err != nil {
		t.Fatal(err)
	}
	sales, err := ta.store.GroupByName(ctx, "sales")
	if err != nil {
		t.Fatal(err)
	}
	if err := ta.store.RemoveGrant(ctx, db.Actor{Email: "test"}, "sales", sales.ID); err != nil {
		t.Fatal(err)
	}
	ta.seedDemo(t)
	after, err := ta.store.UserByEmail(ctx, "alice@demo.example")
	if err != nil {
		t.Fatal(err)
	}
	if after.PasswordHash != hash {
		t.Error("the second run reset alice's changed password")
	}
	grants, err := ta.store.GrantingGroups(ctx, alice.ID, "sales")
	if err != nil {
		t.Fatal(err)
	}
	if len(grants) != 1 || grants[0].GroupName != "sales" {
		t.Errorf("sales grant after re-seeding = %+v, want it back", grants)
	}
}

// demoLogin logs a new client in as a demo user, with the demo password.
func (ta *testApp) demoLogin(t *testing.T, email string) *http.Client {
	t.Helper()
	c := ta.client()
	res, body := ta.post(t, c, "/login", url.Values{"email": {email}, "password": {DemoPassword}, "next": {"/"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Fatalf("login %s: status %d, location %q, body %s", email, res.StatusCode, res.Header.Get("Location"), body)
	}
	return c
}

// TestDemoDashboardAccess logs each demo user in and fetches every demo
// panel: members of the granted group get the panel, others (and members
// without sales-leads, for Rep performance) get the denial.
func TestDemoDashboardAccess(t *testing.T) {
	ta := newDemoTestApp(t)
	ta.seedDemo(t)
	type who struct {
		email  string
		groups []string
		admin  bool
	}
	people := []who{
		{"alice@demo.example", []string{"sales"}, false},
		{"lee@demo.example", []string{"sales", "sales-leads"}, false},
		{"sam@demo.example", []string{"support"}, false},
		{"fran@demo.example", []string{"finance"}, false},
		{"olivia@demo.example", nil, false},
		{"admin@demo.example", nil, true},
	}
	for _, p := range people {
		c := ta.demoLogin(t, p.email)
		for _, d := range ta.registry.All() {
			if d.Slug == dashboards.AccessSlug {
				continue
			}
			for _, panel := range d.Panels {
				allowed := p.admin || (slices.Contains(p.groups, d.Slug) && (panel.RequireGroup == "" || slices.Contains(p.groups, panel.RequireGroup)))
				t.Run(p.email+"/"+d.Slug+"/"+panel.ID, func(t *testing.T) {
					res, body := ta.get(t, c, "/dashboards/"+d.Slug+"/panels/"+panel.ID, true)
					switch {
					case allowed && res.StatusCode != http.StatusOK:
						t.Fatalf("status %d, want 200; body %s", res.StatusCode, body)
					case allowed && !strings.Contains(body, "<svg") && !strings.Contains(body, "<table"):
						t.Fatalf("200 without a chart or table: %s", body)
					case allowed && strings.Contains(body, "<html"):
						t.Fatal("an htmx panel request got a full page")
					case !allowed && res.StatusCode != http.StatusForbidden:
						t.Fatalf("status %d, want 403; body %s", res.StatusCode, body)
					case !allowed && !strings.Contains(body, "You cannot view this dashboard"):
						t.Fatalf("403 without the denial: %s", body)
					}
				})
			}
		}
	}

	// The Sales page lists Rep performance for leads only; its fragment
	// still checks on its own.
	for _, tc := range []struct {
		email string
		want  bool
	}{{"alice@demo.example", false}, {"lee@demo.example", true}, {"admin@demo.example", true}} {
		res, body := ta.get(t, ta.demoLogin(t, tc.email), "/dashboards/sales", false)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: GET /dashboards/sales: %d", tc.email, res.StatusCode)
		}
		if got := strings.Contains(body, "/dashboards/sales/panels/rep-performance"); got != tc.want {
			t.Errorf("%s: Sales page lists Rep performance = %v, want %v", tc.email, got, tc.want)
		}
	}
	res, body := ta.get(t, ta.demoLogin(t, "olivia@demo.example"), "/dashboards/finance", false)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "You cannot view this dashboard") {
		t.Errorf("outsider GET /dashboards/finance: %d %s", res.StatusCode, body)
	}
}

// TestRenderedPanelIsWrittenAsRendered: a demo panel, rendered once and
// then written as it is to htmx requests, answers with the same bytes,
// type and headers as rendering it, and the full page carries them too.
func TestRenderedPanelIsWrittenAsRendered(t *testing.T) {
	ta := newDemoTestApp(t)
	ta.seedDemo(t)
	c := ta.demoLogin(t, "fran@demo.example")
	panel := ta.registry.Get(dashboards.FinanceSlug).Panel("burn-and-runway")
	comp, err := panel.Data(context.Background(), dashboards.Query{Store: ta.store, Now: ta.Clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := comp.(dashboards.Rendered); !ok {
		t.Fatalf("the demo panel is %T, not rendered once", comp)
	}
	var want strings.Builder
	if err := comp.Render(context.Background(), &want); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		res, body := ta.get(t, c, "/dashboards/finance/panels/burn-and-runway", true)
		if res.StatusCode != http.StatusOK || body != want.String() {
			t.Fatalf("status %d, body %.200q; want 200 with the rendered panel %.200q", res.StatusCode, body, want.String())
		}
		if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		if res.Header.Get("Content-Security-Policy") == "" || res.Header.Get("X-Request-Id") == "" || res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("headers missing: %v", res.Header)
		}
	}
	if res, body := ta.get(t, c, "/dashboards/finance/panels/burn-and-runway", false); res.StatusCode != http.StatusOK || !strings.Contains(body, want.String()) || !strings.Contains(body, "<html") {
		t.Errorf("full page: status %d, panel in it: %v", res.StatusCode, strings.Contains(body, want.String()))
	}
}

// TestDemoBannerFollowsTheData: the banner says what each demo user sees
// now, not what the demo first set up.
func TestDemoBannerFollowsTheData(t *testing.T) {
	ta := newDemoTestApp(t)
	out := ta.seedDemo(t)
	if !regexp.MustCompile(`olivia@demo.example\s+sees nothing: in no group`).MatchString(out) ||
		!regexp.MustCompile(`alice@demo.example\s+sees Sales \(without Rep performance\)`).MatchString(out) ||
		!regexp.MustCompile(`lee@demo.example\s+sees Sales, including Rep performance \(sales-leads\)`).MatchString(out) {
		t.Errorf("first banner:\n%s", out)
	}
	ctx := context.Background()
	olivia, err := ta.store.UserByEmail(ctx, "olivia@demo.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"finance", "sales"} {
		g, err := ta.store.GroupByName(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := ta.store.AddMember(ctx, db.Actor{}, g.ID, olivia.ID, 0); err != nil {
			t.Fatal(err)
		}
	}
	out = ta.seedDemo(t)
	if strings.Contains(out, "olivia@demo.example   sees nothing") || !regexp.MustCompile(`olivia@demo.example\s+sees Finance; Sales \(without Rep performance\)|olivia@demo.example\s+sees Sales \(without Rep performance\); Finance`).MatchString(out) {
		t.Errorf("banner after olivia joined finance and sales:\n%s", out)
	}
}
