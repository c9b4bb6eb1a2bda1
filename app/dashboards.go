package app

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gatehouse/app/dashboards"
	"gatehouse/components"
	"gatehouse/db"
)

func (a *App) actor(r *http.Request) db.Actor {
	v := viewerFrom(r.Context())
	if v == nil {
		return db.Actor{IP: a.clientIP(r)}
	}
	return db.Actor{ID: v.User.ID, Email: v.User.Email, IP: a.clientIP(r)}
}

// dashboardCards lists every dashboard with the viewer's decision for it
// and their latest access request.
func (a *App) dashboardCards(r *http.Request, v *Viewer) ([]components.DashboardCard, error) {
	ctx := r.Context()
	requests, err := a.store.LatestRequests(ctx, v.User.ID)
	if err != nil {
		return nil, err
	}
	var cards []components.DashboardCard
	for _, d := range a.registry.All() {
		dec, err := dashboards.Check(ctx, a.store, dashboards.ViewerOf(v.User), d, nil)
		if err != nil {
			return nil, err
		}
		req, err := a.requestState(ctx, d.Slug, requests[d.Slug])
		if err != nil {
			return nil, err
		}
		cards = append(cards, components.DashboardCard{Slug: d.Slug, Title: d.Title, Description: d.Description,
			Allowed: dec.Allowed, Reason: capitalize(dec.Reason) + ".", Request: req})
	}
	return cards, nil
}

// requestState is what the viewer sees of their latest request for a
// dashboard: who decides a pending one, the decider's note on a decided one.
func (a *App) requestState(ctx context.Context, slug string, req db.AccessRequest) (components.RequestState, error) {
	st := components.RequestState{Status: req.Status, Note: req.Note, DecidedBy: req.DecidedBy}
	if req.Status != db.RequestPending {
		return st, nil
	}
	groups, err := a.store.DecidingGroups(ctx, slug)
	if err != nil {
		return st, err
	}
	st.Deciders = decidersPhrase(groups)
	return st, nil
}

// decidersPhrase says who decides a request: "an admin", or "an admin or a
// manager of sales or support".
func decidersPhrase(groups []string) string {
	if len(groups) == 0 {
		return "an admin"
	}
	return "an admin or a manager of " + strings.Join(groups, " or ")
}

// showDashboard renders GET /dashboards/{slug}: the page with its panels
// (which load themselves) when the viewer may open it, else a 403 page with
// one denial in their place. A panel needing a group the viewer is not in
// shows its own denial. Either way the page follows the viewer's access
// through its event stream (dashboards_live.go) and fetches itself again, with htmx,
// when it changes.
func (a *App) showDashboard(w http.ResponseWriter, r *http.Request) {
	d := a.registry.Get(r.PathValue("slug"))
	if d == nil {
		a.notFound(w, r)
		return
	}
	v := viewerFrom(r.Context())
	access, err := a.dashboardAccess(r.Context(), dashboards.ViewerOf(v.User), d)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.metrics.decision(d.Slug, access.dashboard.Allowed)
	page := components.Page{Title: d.Title, Section: "home"}
	view := components.DashboardView{Slug: d.Slug, Title: d.Title, Description: d.Description, State: access.state(d), FromFile: d.Version != ""}
	if d.App != nil && a.apps != nil {
		view.AppURL = a.apps.Origin(d.Slug)
		// The page frames the app's origin and, while the frame signs in
		// there, the app's sign-in on this origin (one hop of the
		// redirects), nothing else. Set whether or not access is allowed
		// now: regaining it brings the frame into this same page.
		w.Header()["Content-Security-Policy"] = []string{contentSecurityPolicy + "; frame-src " + view.AppURL + " " +
			a.cfg.PublicURL() + "/apps/" + d.Slug + "/signin"}
	}
	if !access.dashboard.Allowed {
		dec := access.dashboard
		a.deny(w, r, d, nil, dec, func(req components.RequestState) {
			view.Denial = &components.Denial{What: "dashboard", Reason: dec.Reason, CanRequest: canRequest(dec), Request: req}
			a.render(w, r, http.StatusForbidden, page, components.DashboardPage(view))
		})
		return
	}
	if d.Filters != nil {
		// The filter form, and its values for every panel's URL.
		form, values, err := d.Filters(r.Context(), dashboards.Query{Store: a.store, Viewer: dashboards.ViewerOf(v.User), Now: a.now(), Params: r.URL.Query()})
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		view.Filters, view.Query = form, values.Encode()
	}
	for i, p := range d.Panels {
		pv := components.PanelView{ID: p.ID, Title: p.Title, Wide: p.Wide}
		if dec := access.panels[i]; !dec.Allowed {
			if err := a.store.AuditDenial(r.Context(), a.actor(r), d.Slug+"/"+p.ID, dec.Code, dec.Reason, time.Minute); err != nil {
				a.serverError(w, r, err)
				return
			}
			pv.Denial = &components.Denial{What: "dashboard panel", Reason: dec.Reason}
		} else {
			refresh := p.Refresh
			if a.cfg.PanelRefresh > 0 {
				refresh = max(a.cfg.PanelRefresh, time.Second)
			}
			pv.Refresh = int(refresh / time.Second)
		}
		view.Panels = append(view.Panels, pv)
	}
	a.render(w, r, http.StatusOK, page, components.DashboardPage(view))
}

// showPanel renders GET /dashboards/{slug}/panels/{panel}. It is the one
// wrapper every panel goes through: the access decision runs before the
// panel's Data function, which never runs for a denied viewer.
func (a *App) showPanel(w http.ResponseWriter, r *http.Request) {
	d := a.registry.Get(r.PathValue("slug"))
	if d == nil {
		a.notFound(w, r)
		return
	}
	p := d.Panel(r.PathValue("panel"))
	if p == nil {
		a.notFound(w, r)
		return
	}
	v := viewerFrom(r.Context())
	viewer := dashboards.ViewerOf(v.User)
	now := a.now() // the app's clock is the store's: one read for the check and the data
	dec, err := dashboards.CheckAt(r.Context(), a.store, viewer, d, p, now)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.metrics.decision(d.Slug, dec.Allowed)
	// The full page's title; an htmx request (every poll) never uses it.
	page := func() components.Page { return components.Page{Title: p.Title + " · " + d.Title, Section: "home"} }
	if !dec.Allowed {
		what := "dashboard"
		if dec.Code == dashboards.CodePanelGroup {
			what = "dashboard panel"
		}
		a.deny(w, r, d, p, dec, func(req components.RequestState) {
			fragment := components.DeniedPanel(d.Slug, what, dec.Reason, canRequest(dec), req)
			if isHTMX(r) {
				if what == "dashboard" {
					// The whole dashboard is gone: the page fetches itself
					// again and shows one denial instead of one per panel
					// (this matters when its event stream is down).
					w.Header()["Hx-Trigger"] = accessChangedTrigger
				}
				key := strings.Join([]string{d.Slug, what, dec.Reason, req.Status, req.Deciders, req.Note, req.DecidedBy, strconv.FormatBool(canRequest(dec))}, "\x00")
				a.writeBytes(w, http.StatusForbidden, a.denials.get(key, func() ([]byte, error) { return renderBytes(r.Context(), fragment) }))
				return
			}
			a.render(w, r, http.StatusForbidden, page(), components.DeniedPanelPage(d.Slug, d.Title, p.Title,
				components.Denial{What: what, Reason: dec.Reason, CanRequest: canRequest(dec), Request: req}))
		})
		return
	}
	body, err := p.Data(r.Context(), dashboards.Query{Store: a.store, Viewer: viewer, Now: now, Params: panelParams(r, d)})
	if err != nil {
		a.log.ErrorContext(r.Context(), "panel data failed", "dashboard", d.Slug, "panel", p.ID, "err", err)
		status, _ := storageStatus(err)
		a.render(w, r, status, page(), components.PanelError("This panel's data could not be loaded. Try again shortly."))
		return
	}
	if isHTMX(r) {
		if html, ok := body.(dashboards.Rendered); ok {
			writeHTML(w, http.StatusOK, html) // rendered once already: nothing to render or buffer
			return
		}
		a.renderFragment(w, r, http.StatusOK, body)
		return
	}
	a.render(w, r, http.StatusOK, page(), components.PanelPage(d.Slug, d.Title, p.Title, body))
}

// panelParams are a panel request's filter values: its query parameters,
// for a dashboard with filters (the others take none, and parse nothing).
func panelParams(r *http.Request, d *dashboards.Dashboard) url.Values {
	if d.Filters == nil {
		return nil
	}
	return r.URL.Query()
}

// accessChangedTrigger is the HX-Trigger value that makes an open dashboard
// page fetch itself again (shared: a denied poll should not allocate it).
var accessChangedTrigger = []string{"access-changed"}

func canRequest(dec dashboards.Decision) bool {
	return dec.Code == dashboards.CodeNotMember || dec.Code == dashboards.CodeExpired || dec.Code == dashboards.CodeNoGrant
}

// deny audits a denial (at most once a minute per viewer and target, so
// polling panels do not flood the log) and renders it with the viewer's
// request status.
func (a *App) deny(w http.ResponseWriter, r *http.Request, d *dashboards.Dashboard, p *dashboards.Panel, dec dashboards.Decision, render func(components.RequestState)) {
	target := d.Slug
	if p != nil {
		target += "/" + p.ID
	}
	if err := a.store.AuditDenial(r.Context(), a.actor(r), target, dec.Code, dec.Reason, time.Minute); err != nil {
		a.serverError(w, r, err)
		return
	}
	var req components.RequestState
	if canRequest(dec) {
		reqs, err := a.store.LatestRequests(r.Context(), viewerFrom(r.Context()).User.ID)
		if err == nil {
			req, err = a.requestState(r.Context(), d.Slug, reqs[d.Slug])
		}
		if err != nil {
			a.serverError(w, r, err)
			return
		}
	}
	render(req)
}

// requestAccess handles POST /dashboards/{slug}/request: a denied viewer
// asks admins for access, with an optional short message.
func (a *App) requestAccess(w http.ResponseWriter, r *http.Request) {
	d := a.registry.Get(r.PathValue("slug"))
	if d == nil {
		a.notFound(w, r)
		return
	}
	if !a.parseForm(w, r) {
		return
	}
	v := viewerFrom(r.Context())
	msg, err := db.CleanName("message", lineBreaks.Replace(r.PostForm.Get("message")), 0, db.MaxRequestMessageLen)
	if err != nil {
		a.render(w, r, http.StatusUnprocessableEntity, components.Page{Title: d.Title},
			components.Alert("error", userMessage(err)))
		return
	}
	dec, err := dashboards.Check(r.Context(), a.store, dashboards.ViewerOf(v.User), d, nil)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if dec.Allowed {
		a.redirect(w, r, "/dashboards/"+d.Slug)
		return
	}
	_, err = a.store.CreateAccessRequest(r.Context(), a.actor(r), v.User.ID, d.Slug, msg)
	if err != nil && !errors.Is(err, db.ErrDuplicate) {
		a.serverError(w, r, err)
		return
	}
	a.mail.Kick() // the deciders' notices, when mail is on
	if isHTMX(r) {
		req, err := a.requestState(r.Context(), d.Slug, db.AccessRequest{Status: db.RequestPending})
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		req.Just = true
		a.renderFragment(w, r, http.StatusOK, components.RequestAccessControl(d.Slug, req))
		return
	}
	http.Redirect(w, r, "/?requested="+d.Slug, http.StatusSeeOther)
}

// lineBreaks turns the line breaks and tabs a textarea sends (browsers send
// CRLF) into spaces, for fields stored on one line.
var lineBreaks = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ")
