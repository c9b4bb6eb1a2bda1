package app

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

// TestRequestFlowTellsTheRequester: the answer to "Request access" takes
// the focus and says who decides (an admin, or a manager of a group
// granted the dashboard); the decision and the decider's note then reach
// the requester on the home page and in the dashboard's denial, not only
// by mail.
func TestRequestFlowTellsTheRequester(t *testing.T) {
	ctx := context.Background()
	ta := newTestApp(t)
	ann := ta.createUser(t, "ann@example.com", false)
	bob := ta.createUser(t, "bob@example.com", false)
	sales := mustGroup(t, ta, "sales")
	if err := ta.store.AddGrant(ctx, db.Actor{}, "access", sales.ID); err != nil {
		t.Fatal(err)
	}
	c := ta.login(t, ann.Email)

	// No manager yet: only an admin decides.
	res, body := ta.post(t, c, "/dashboards/access/request", url.Values{"message": {"for the weekly report"}})
	wantStatus(t, res, body, 303) // a plain form post goes home
	_, body = ta.get(t, c, "/", false)
	if !strings.Contains(body, "Access requested") || !strings.Contains(body, "waiting for an admin</span>") {
		t.Errorf("home page does not say who decides:\n%s", body)
	}
	if strings.Contains(body, "autofocus") {
		t.Error("the home page takes the focus for an old request")
	}

	// bob manages sales: the pending request names him as a possible decider.
	if err := ta.store.AddManager(ctx, db.Actor{}, sales.ID, bob.ID); err != nil {
		t.Fatal(err)
	}
	_, body = ta.get(t, c, "/dashboards/access", false)
	if !strings.Contains(body, "waiting for an admin or a manager of sales") {
		t.Errorf("the denial does not name the managers' group:\n%s", body)
	}

	// Denied, with a note: the requester reads it in the app.
	reqs, err := ta.store.LatestRequests(ctx, ann.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := ta.store.DecideAccessRequest(ctx, db.Actor{Email: "bob@example.com"}, reqs["access"].ID, false, 0, "Ask your lead <first>"); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/dashboards/access"} {
		_, body = ta.get(t, c, path, false)
		if !strings.Contains(body, "Your last request was denied") || !strings.Contains(body, "Ask your lead &lt;first&gt;") ||
			!strings.Contains(body, "<footer>bob@example.com</footer>") {
			t.Errorf("%s does not show the denial and its note:\n%s", path, body)
		}
	}
	_, body = ta.get(t, c, "/dashboards/access/panels/overview", true)
	if !strings.Contains(body, "Ask your lead &lt;first&gt;") {
		t.Errorf("the denied panel does not show the note:\n%s", body)
	}

	// Asking again over htmx: the answer takes the focus and says who decides.
	req, _ := http.NewRequest(http.MethodPost, ta.Server.URL+"/dashboards/access/request", strings.NewReader("message=again"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	res, body = ta.do(t, c, req)
	wantStatus(t, res, body, 200)
	if !strings.Contains(body, `autofocus`) || !strings.Contains(body, "waiting for an admin or a manager of sales") || strings.Contains(body, "<html") {
		t.Errorf("htmx answer to a request:\n%s", body)
	}

	// Approved with a note: the open card says so.
	reqs, _ = ta.store.LatestRequests(ctx, ann.ID)
	if err := ta.store.DecideAccessRequest(ctx, db.Actor{Email: "root@example.com"}, reqs["access"].ID, true, sales.ID, "Welcome"); err != nil {
		t.Fatal(err)
	}
	_, body = ta.get(t, c, "/", false)
	if !strings.Contains(body, "Access approved") || !strings.Contains(body, "Welcome") {
		t.Errorf("home page after approval:\n%s", body)
	}
}

// TestHomeListsOpenDashboardsFirst: the dashboards a viewer may open come
// first; locked ones follow under "Other dashboards", those with a request
// first, and many of them fold away behind a summary with their count.
func TestHomeListsOpenDashboardsFirst(t *testing.T) {
	ctx := context.Background()
	ta := newTestApp(t, func(_ *Config, r *dashboards.Registry) {
		for i := range 8 {
			r.MustRegister(&dashboards.Dashboard{Slug: fmt.Sprintf("extra-%d", i), Title: fmt.Sprintf("Extra %d", i)})
		}
	})
	ann := ta.createUser(t, "ann@example.com", false)
	g := mustGroup(t, ta, "team")
	mustMember(t, ta, g, ann, 0)
	if err := ta.store.AddGrant(ctx, db.Actor{}, "extra-7", g.ID); err != nil {
		t.Fatal(err)
	}
	c := ta.login(t, ann.Email)
	if _, err := ta.store.CreateAccessRequest(ctx, db.Actor{}, ann.ID, "extra-5", ""); err != nil {
		t.Fatal(err)
	}
	_, body := ta.get(t, c, "/", false)
	open, other := strings.Index(body, `id="dash-extra-7"`), strings.Index(body, "Other dashboards")
	requested, plain := strings.Index(body, `id="dash-extra-5"`), strings.Index(body, `id="dash-extra-0"`)
	if open < 0 || other < open || requested < other || plain < requested {
		t.Errorf("order: open card at %d, Other dashboards at %d, requested card at %d, a plain locked card at %d", open, other, requested, plain)
	}
	if !strings.Contains(body, `<details class="locked-dashboards">`) || !strings.Contains(body, `<span class="badge badge-gray">8</span>`) {
		t.Errorf("eight locked dashboards (access and seven extras) are not folded with their count:\n%s", body)
	}

	// Someone who may open nothing sees every card, unfolded.
	bob := ta.createUser(t, "bob@example.com", false)
	_, body = ta.get(t, ta.login(t, bob.Email), "/", false)
	if strings.Contains(body, "<details") || !strings.Contains(body, "You cannot open any dashboard yet") {
		t.Errorf("a viewer with nothing to open:\n%s", body)
	}
}
