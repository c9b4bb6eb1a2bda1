package app

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/app/dashboards"
	"gatehouse/components"
	"gatehouse/db"
)

// requestRow prepares a request for the queue: the dashboard's title and,
// for a pending one, the groups an approval may add the requester to: the
// groups granted the dashboard, and for a group manager only those they
// manage. It also returns whether the viewer may decide the request at all
// (dashboards.CheckRequest).
func (a *App) requestRow(r *http.Request, req db.AccessRequest) (components.AccessRequestRow, dashboards.Decision, error) {
	row := components.AccessRequestRow{Req: req, DashboardTitle: req.Dashboard, NowMS: a.now().UnixMilli()}
	if d := a.registry.Get(req.Dashboard); d != nil {
		row.DashboardTitle = d.Title
	}
	v := viewerFrom(r.Context())
	if v == nil {
		return row, dashboards.Decision{}, nil
	}
	dec, granting, err := dashboards.CheckRequest(r.Context(), a.store, dashboards.ViewerOf(v.User), req.UserID, req.Dashboard)
	if err != nil {
		return row, dec, err
	}
	if req.Status == db.RequestPending && dec.Allowed {
		for _, g := range granting {
			if slices.Contains(dec.Candidates, g.GroupName) {
				row.Groups = append(row.Groups, g)
			}
		}
	}
	return row, dec, nil
}

// showRequests renders GET /admin/requests: pending requests, oldest
// first and paginated, each with approve (choosing a group granted the
// dashboard) and deny; then the latest decisions.
func (a *App) showRequests(w http.ResponseWriter, r *http.Request) {
	d, err := a.requestsData(r)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	d.Notice = notice(r)
	a.renderAdmin(w, r, http.StatusOK, "Access requests", "requests", components.AdminRequestsPage(d))
}

// requestsData loads the queue: one page (?page=) of pending requests and
// the latest decisions.
func (a *App) requestsData(r *http.Request) (components.RequestsData, error) {
	ctx := r.Context()
	page := pageParam(r, "page")
	var managerID int64 // a group manager sees only the requests they can decide
	if v := viewerFrom(ctx); !v.User.IsAdmin {
		managerID = v.User.ID
	}
	pending, total, err := a.store.ListRequests(ctx, db.RequestFilter{Status: db.RequestPending, DecidableBy: managerID,
		Limit: adminPerPage, Offset: (page - 1) * adminPerPage})
	if err != nil {
		return components.RequestsData{}, err
	}
	decided, err := a.store.ListDecidedRequestsFor(ctx, managerID, 20)
	if err != nil {
		return components.RequestsData{}, err
	}
	d := components.RequestsData{
		Pager: components.Pager{Path: "/admin/requests", Query: url.Values{}, Page: page, PerPage: adminPerPage, Total: total, Shown: len(pending), Noun: "requests"}}
	for _, req := range pending {
		row, _, err := a.requestRow(r, req)
		if err != nil {
			return d, err
		}
		d.Pending = append(d.Pending, row)
	}
	for _, req := range decided {
		row, _, err := a.requestRow(r, req)
		if err != nil {
			return d, err
		}
		d.Decided = append(d.Decided, row)
	}
	return d, nil
}

// decideRequest handles POST /admin/requests/{id}: decision=approve with a
// group_id granted the dashboard (the requester joins it, or an expired
// membership is renewed), or decision=deny; an optional note. A request
// already decided (e.g. by another admin) answers 422 and changes nothing.
func (a *App) decideRequest(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r, "id")
	if !ok {
		a.notFound(w, r)
		return
	}
	if !a.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	req, err := a.store.AccessRequestByID(ctx, id)
	if a.failed(w, r, err) {
		return
	}
	row, dec, err := a.requestRow(r, req)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if !dec.Allowed {
		target := "request " + strconv.FormatInt(req.ID, 10) + ": " + req.UserEmail + " / " + req.Dashboard
		if err := a.store.AuditDenial(ctx, a.actor(r), target, dec.Code, dec.Reason, time.Minute); err != nil {
			a.serverError(w, r, err)
			return
		}
		a.forbidden(w, r, "You cannot decide this request: "+dec.Reason+".")
		return
	}
	row.Note = truncateRunes(r.PostForm.Get("note"), 1000)
	fail := func(msg string) {
		row.Error = msg
		if isHTMX(r) {
			retarget(w, "#request-"+strconv.FormatInt(id, 10))
			a.renderFragment(w, r, http.StatusUnprocessableEntity, components.AdminRequestRow(row))
			return
		}
		a.errorPage(w, r, http.StatusUnprocessableEntity, "Nothing changed", msg)
	}
	note, err := db.CleanName("note", strings.ReplaceAll(row.Note, "\n", " "), 0, 500)
	if err != nil {
		fail(userMessage(err))
		return
	}
	var approve bool
	var groupID int64
	switch r.PostForm.Get("decision") {
	case "approve":
		approve = true
		groupID, _ = strconv.ParseInt(r.PostForm.Get("group_id"), 10, 64)
		granted := false
		for _, g := range row.Groups {
			granted = granted || g.GroupID == groupID
		}
		if !granted {
			if len(row.Groups) == 0 {
				fail("No group is granted this dashboard, so approving cannot give access. Grant it to a group in Dashboard access first.")
			} else {
				fail("Choose one of the groups that are granted this dashboard.")
			}
			return
		}
	case "deny":
	default:
		fail("Choose Approve or Deny.")
		return
	}
	err = a.store.DecideAccessRequest(ctx, a.actor(r), id, approve, groupID, note)
	switch {
	case errors.Is(err, db.ErrAlreadyDecided):
		fail("This request has already been decided (perhaps by another admin); nothing changed.")
		return
	case errors.Is(err, db.ErrNotFound):
		a.notFound(w, r)
		return
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	a.mail.Kick() // the requester's notice, when mail is on
	if !isHTMX(r) {
		msg := "request-denied"
		if approve {
			msg = "request-approved"
		}
		a.redirect(w, r, "/admin/requests?msg="+msg)
		return
	}
	// Both lists are answered: the request leaves "Waiting" (and its
	// count) and heads "Recently decided".
	d, err := a.requestsData(pageRequest(r, "/admin/requests"))
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if approve {
		d.Done = fmt.Sprintf("Approved: %s joined %s and can open %s.", req.UserEmail, groupName(row.Groups, groupID), row.DashboardTitle)
	} else {
		d.Done = fmt.Sprintf("Denied %s's request for %s.", req.UserEmail, row.DashboardTitle)
	}
	a.renderFragment(w, r, http.StatusOK, components.AdminRequestLists(d))
}

// groupName is the name of the granting group with id, from the groups an
// approval could choose.
func groupName(groups []db.GrantingGroup, id int64) string {
	for _, g := range groups {
		if g.GroupID == id {
			return g.GroupName
		}
	}
	return "the group"
}
