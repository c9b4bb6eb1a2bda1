package app

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"gatehouse/app/dashboards"
	"gatehouse/components"
	"gatehouse/db"
)

// matrixPerPage is how many groups (columns) one page of the grants matrix shows.
const matrixPerPage = 20

// grantSets returns, per dashboard slug, the ids of the groups granted it.
func (a *App) grantSets(r *http.Request) (map[string]map[int64]bool, error) {
	grants, err := a.store.ListGrants(r.Context())
	if err != nil {
		return nil, err
	}
	on := map[string]map[int64]bool{}
	for _, g := range grants {
		if on[g.Dashboard] == nil {
			on[g.Dashboard] = map[int64]bool{}
		}
		on[g.Dashboard][g.GroupID] = true
	}
	return on, nil
}

func matrixDashboard(d *dashboards.Dashboard, on map[string]map[int64]bool) components.MatrixDashboard {
	return components.MatrixDashboard{Slug: d.Slug, Title: d.Title, Granted: len(on[d.Slug])}
}

// showAccess renders GET /admin/access: every registered dashboard × a
// page of groups (filtered by ?q=), a toggle per cell; a dashboard no group
// is granted is labelled "admins only". For htmx it answers the matrix alone.
func (a *App) showAccess(w http.ResponseWriter, r *http.Request) {
	q := searchParam(r.URL.Query(), "q")
	page := pageParam(r, "page")
	groups, total, err := a.store.ListGroups(r.Context(), db.GroupFilter{Search: q, Limit: matrixPerPage, Offset: (page - 1) * matrixPerPage})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	on, err := a.grantSets(r)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	query := url.Values{}
	if q != "" {
		query.Set("q", q)
	}
	pager := components.Pager{Path: "/admin/access", Query: query, Page: page, PerPage: matrixPerPage, Total: total, Shown: len(groups), Noun: "group columns"}
	d := components.AccessMatrixData{On: on, Query: q, Pager: pager, Notice: notice(r), Back: pager.URL(page)}
	for _, g := range groups {
		d.Groups = append(d.Groups, db.GroupOption{ID: g.ID, Name: g.Name})
	}
	for _, dash := range a.registry.All() {
		d.Dashboards = append(d.Dashboards, matrixDashboard(dash, on))
	}
	if isHTMX(r) {
		a.renderFragment(w, r, http.StatusOK, components.AdminMatrix(d))
		return
	}
	a.renderAdmin(w, r, http.StatusOK, "Dashboard access", "access", components.AdminAccessPage(d))
}

// toggleGrant handles POST /admin/access/{slug}/{group}: grant=on grants
// the dashboard to the group, grant=off takes it away; asking for the
// current state changes nothing. Unknown dashboards and groups answer 404.
// With htmx the answer is the cell and, out of band, the row's label.
func (a *App) toggleGrant(w http.ResponseWriter, r *http.Request) {
	dash := a.registry.Get(r.PathValue("slug"))
	if dash == nil {
		a.notFound(w, r)
		return
	}
	g, ok := a.groupFromPathValue(w, r, "group")
	if !ok || !a.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	on, valid := boolField(r.PostForm, "grant")
	if !valid {
		a.errorPage(w, r, http.StatusUnprocessableEntity, "Nothing changed", "Say grant=on or grant=off.")
		return
	}
	var err error
	if on {
		if err = a.store.AddGrant(ctx, a.actor(r), dash.Slug, g.ID); errors.Is(err, db.ErrDuplicate) {
			err = nil
		}
	} else {
		if err = a.store.RemoveGrant(ctx, a.actor(r), dash.Slug, g.ID); errors.Is(err, db.ErrNotFound) {
			err = nil // already not granted (the group exists: checked above)
		}
	}
	if a.failed(w, r, err) {
		return
	}
	if !isHTMX(r) {
		back := safeNext(r.PostForm.Get("back"))
		if !strings.HasPrefix(back, "/admin/access") {
			back = "/admin/access"
		}
		sep := "?"
		if strings.Contains(back, "?") {
			sep = "&"
		}
		a.redirect(w, r, back+sep+"msg=grant-saved")
		return
	}
	sets, err := a.grantSets(r)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	md := matrixDashboard(dash, sets)
	opt := db.GroupOption{ID: g.ID, Name: g.Name}
	back := r.PostForm.Get("back")
	a.renderFragment(w, r, http.StatusOK, joinComponents(
		components.AdminMatrixCell(md, opt, sets[dash.Slug][g.ID], back),
		components.AdminMatrixRowHead(md, true),
		components.AdminMatrixStatus(components.MatrixChange{Dashboard: md, Group: opt, On: on, Back: back}, true)))
}

// groupFromPathValue loads the group named by the path value name (404 if none).
func (a *App) groupFromPathValue(w http.ResponseWriter, r *http.Request, name string) (db.Group, bool) {
	id, ok := pathID(r, name)
	if !ok {
		a.notFound(w, r)
		return db.Group{}, false
	}
	g, err := a.store.GroupByID(r.Context(), id)
	if a.failed(w, r, err) {
		return g, false
	}
	return g, true
}

// showExplain renders GET /admin/explain?user=EMAIL&dashboard=SLUG: the
// access decision for that user and dashboard (and each panel), with the
// reason, the granting group and the groups that would grant it. It is the
// same dashboards.Check every dashboard request runs.
func (a *App) showExplain(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := r.URL.Query()
	d := components.ExplainData{Email: truncateRunes(strings.TrimSpace(v.Get("user")), 254), Slug: v.Get("dashboard")}
	for _, dash := range a.registry.All() {
		d.Dashboards = append(d.Dashboards, components.MatrixDashboard{Slug: dash.Slug, Title: dash.Title})
	}
	status := http.StatusOK
	render := func() { a.renderAdmin(w, r, status, "Explain access", "explain", components.AdminExplainPage(d)) }
	if d.Email == "" && d.Slug == "" {
		render()
		return
	}
	dash := a.registry.Get(d.Slug)
	if dash == nil {
		status, d.Error = http.StatusNotFound, "There is no dashboard “"+d.Slug+"”. Choose one from the list."
		render()
		return
	}
	u, err := a.store.UserByEmail(ctx, d.Email)
	if errors.Is(err, db.ErrNotFound) {
		status, d.Error = http.StatusNotFound, "There is no user with the email “"+d.Email+"”."
		render()
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	viewer := dashboards.ViewerOf(u)
	dec, err := dashboards.Check(ctx, a.store, viewer, dash, nil)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	res := &components.ExplainResult{User: u, DashboardTitle: dash.Title, Allowed: dec.Allowed, Code: dec.Code,
		Reason: capitalize(dashboards.TheirReason(dec.Reason)), Via: dec.Via, ViaIdP: dec.ViaIdP, Candidates: dec.Candidates}
	for _, p := range dash.Panels {
		pd, err := dashboards.Check(ctx, a.store, viewer, dash, p)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		res.Panels = append(res.Panels, components.PanelDecision{ID: p.ID, Title: p.Title, RequireGroup: p.RequireGroup,
			Allowed: pd.Allowed, Reason: capitalize(dashboards.TheirReason(pd.Reason))})
	}
	d.Result = res
	render()
}
