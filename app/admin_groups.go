package app

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gatehouse/app/dashboards"
	"gatehouse/components"
	"gatehouse/db"

	"github.com/a-h/templ"
)

// groupsData loads a page of the groups list for the query string.
func (a *App) groupsData(r *http.Request, create components.GroupForm) (components.GroupsData, error) {
	q := searchParam(r.URL.Query(), "q")
	page := pageParam(r, "page")
	groups, total, err := a.store.ListGroups(r.Context(), db.GroupFilter{Search: q, Limit: adminPerPage, Offset: (page - 1) * adminPerPage})
	if err != nil {
		return components.GroupsData{}, err
	}
	query := url.Values{}
	if q != "" {
		query.Set("q", q)
	}
	return components.GroupsData{Groups: groups, Query: q, Create: create, Notice: notice(r),
		Pager: components.Pager{Path: "/admin/groups", Query: query, Page: page, PerPage: adminPerPage, Total: total, Shown: len(groups), Noun: "groups"}}, nil
}

// showGroups renders GET /admin/groups: the list with member counts, the
// search and the create form. For htmx (the live search) it answers the
// table alone.
func (a *App) showGroups(w http.ResponseWriter, r *http.Request) {
	d, err := a.groupsData(r, components.GroupForm{})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if isHTMX(r) {
		a.renderFragment(w, r, http.StatusOK, components.AdminGroupsTable(d))
		return
	}
	a.renderAdmin(w, r, http.StatusOK, "Groups", "groups", components.AdminGroupsPage(d))
}

// cleanGroupForm validates a group's name and description, filling the
// form's field errors; ok is false when one is bad.
func cleanGroupForm(f *components.GroupForm) bool {
	name, err := db.CleanGroupName(f.Name)
	if err != nil {
		f.NameError = userMessage(err)
	} else {
		f.Name = name
	}
	desc, err := db.CleanName("description", f.Description, 0, db.MaxDescriptionLen)
	if err != nil {
		f.DescError = userMessage(err)
	} else {
		f.Description = desc
	}
	return f.NameError == "" && f.DescError == ""
}

func duplicateGroupMessage(name string) string {
	return fmt.Sprintf("A group named %q already exists (names are unique regardless of case).", name)
}

// createGroup handles POST /admin/groups. Bad names (empty, too long,
// taken regardless of case) answer 422 with the form and its errors.
func (a *App) createGroup(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	f := components.GroupForm{Name: truncateRunes(r.PostForm.Get("name"), 1000), Description: truncateRunes(r.PostForm.Get("description"), 4000)}
	fail := func() {
		if isHTMX(r) {
			a.renderFragment(w, r, http.StatusUnprocessableEntity, components.AdminGroupCreateForm(f))
			return
		}
		d, err := a.groupsData(r, f)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		a.renderAdmin(w, r, http.StatusUnprocessableEntity, "Groups", "groups", components.AdminGroupsPage(d))
	}
	if !cleanGroupForm(&f) {
		fail()
		return
	}
	g, err := a.store.CreateGroup(r.Context(), a.actor(r), f.Name, f.Description)
	switch {
	case errors.Is(err, db.ErrDuplicate):
		f.NameError = duplicateGroupMessage(f.Name)
		fail()
		return
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	a.redirect(w, r, groupURL(g.ID)+"?msg=group-created")
}

func groupURL(id int64) string { return "/admin/groups/" + strconv.FormatInt(id, 10) }

// groupFromPath loads the group named by the {id} path value, answering 404
// when there is none.
func (a *App) groupFromPath(w http.ResponseWriter, r *http.Request) (db.Group, bool) {
	return a.groupFromPathValue(w, r, "id")
}

// membersData loads one page of a group's members; g carries the member
// count (from GroupByID, read just before).
func (a *App) membersData(r *http.Request, g db.Group, page int) (components.MembersData, error) {
	members, err := a.store.GroupMembersPage(r.Context(), g, adminPerPage, (page-1)*adminPerPage)
	if err != nil {
		return components.MembersData{}, err
	}
	return components.MembersData{GroupID: g.ID, Members: members, NowMS: a.now().UnixMilli(),
		Pager: components.Pager{Path: groupURL(g.ID), Query: url.Values{}, Page: page, PerPage: adminPerPage,
			Total: g.MemberCount, Shown: len(members), Noun: "members"}}, nil
}

// groupPage loads everything a group's page shows.
func (a *App) groupPage(r *http.Request, g db.Group) (components.GroupPageData, error) {
	ctx := r.Context()
	d := components.GroupPageData{Group: g, Notice: notice(r),
		Edit: components.GroupForm{Name: g.Name, Description: g.Description, WasName: g.Name, WasDescription: g.Description}}
	var err error
	if d.Members, err = a.membersData(r, g, pageParam(r, "page")); err != nil {
		return d, err
	}
	d.Managers.GroupID = g.ID
	if d.Managers.Managers, err = a.store.ListManagers(ctx, g.ID); err != nil {
		return d, err
	}
	if d.IdP, err = a.idpGroupsData(r, g); err != nil {
		return d, err
	}
	slugs, err := a.store.GrantsOfGroup(ctx, g.ID)
	if err != nil {
		return d, err
	}
	for _, dash := range a.registry.All() {
		for _, p := range dash.Panels {
			if p.RequireGroup != "" && strings.EqualFold(p.RequireGroup, g.Name) {
				d.Panels = append(d.Panels, components.UnlockedPanel{DashboardSlug: dash.Slug, DashboardTitle: dash.Title, PanelTitle: p.Title})
			}
		}
	}
	for _, s := range slugs {
		gv := components.GrantView{Slug: s, Title: s}
		if dash := a.registry.Get(s); dash != nil {
			gv.Title, gv.Registered = dash.Title, true
		}
		d.Grants = append(d.Grants, gv)
	}
	if d.Query = searchParam(r.URL.Query(), "q"); d.Query != "" {
		if d.Candidates, err = a.memberCandidates(r, g.ID, d.Query); err != nil {
			return d, err
		}
	}
	return d, nil
}

// showGroup renders GET /admin/groups/{id}: details form, grants, the
// add-member search and a page of members.
func (a *App) showGroup(w http.ResponseWriter, r *http.Request) {
	g, ok := a.groupFromPath(w, r)
	if !ok {
		return
	}
	d, err := a.groupPage(r, g)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.renderAdmin(w, r, http.StatusOK, g.Name, "groups", components.AdminGroupPage(d))
}

// renderGroupPage renders the group's page with a status (for refused
// plain-form changes) and lets edit adjust what it shows.
func (a *App) renderGroupPage(w http.ResponseWriter, r *http.Request, status int, g db.Group, edit func(*components.GroupPageData)) {
	d, err := a.groupPage(r, g)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	edit(&d)
	a.renderAdmin(w, r, status, g.Name, "groups", components.AdminGroupPage(d))
}

// updateGroup handles POST /admin/groups/{id}: rename and edit the
// description. The form carries the values it started from; if another
// admin changed the group meanwhile, nothing is written and the form says
// so (409), keeping what this admin typed.
func (a *App) updateGroup(w http.ResponseWriter, r *http.Request) {
	g, ok := a.groupFromPath(w, r)
	if !ok || !a.parseForm(w, r) {
		return
	}
	f := components.GroupForm{Name: truncateRunes(r.PostForm.Get("name"), 1000), Description: truncateRunes(r.PostForm.Get("description"), 4000),
		WasName: r.PostForm.Get("was_name"), WasDescription: r.PostForm.Get("was_description")}
	if _, sent := r.PostForm["was_name"]; !sent {
		// A client without the hidden fields edits the current version.
		f.WasName, f.WasDescription = g.Name, g.Description
	}
	fail := func(status int) {
		if isHTMX(r) {
			a.renderFragment(w, r, status, components.AdminGroupEditForm(g.ID, f))
			return
		}
		a.renderGroupPage(w, r, status, g, func(d *components.GroupPageData) { d.Edit = f })
	}
	if !cleanGroupForm(&f) {
		fail(http.StatusUnprocessableEntity)
		return
	}
	current, err := a.store.UpdateGroupChecked(r.Context(), a.actor(r), g.ID, f.WasName, f.WasDescription, f.Name, f.Description)
	switch {
	case errors.Is(err, db.ErrNotFound):
		a.notFound(w, r)
		return
	case errors.Is(err, db.ErrDuplicate):
		f.NameError = duplicateGroupMessage(f.Name)
		fail(http.StatusUnprocessableEntity)
		return
	case errors.Is(err, db.ErrConflict):
		f.Error = fmt.Sprintf("Someone else changed this group while you were editing: it is now named %q with the description %q. "+
			"Nothing was saved; save again to replace their version with yours.", current.Name, current.Description)
		f.WasName, f.WasDescription = current.Name, current.Description
		g.Name, g.Description = current.Name, current.Description
		fail(http.StatusConflict)
		return
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	if !isHTMX(r) {
		a.redirect(w, r, groupURL(g.ID)+"?msg=group-saved")
		return
	}
	// In place: the form (the focus stays on Save) and the page's heading.
	g.Name, g.Description = f.Name, f.Description
	saved := components.GroupForm{Name: g.Name, Description: g.Description, WasName: g.Name, WasDescription: g.Description, Notice: "Saved."}
	a.renderFragment(w, r, http.StatusOK, joinComponents(components.AdminGroupEditForm(g.ID, saved), components.AdminGroupHead(g, true)))
}

// confirmDeleteGroup renders GET /admin/groups/{id}/delete: what deleting
// the group takes with it, and the button.
func (a *App) confirmDeleteGroup(w http.ResponseWriter, r *http.Request) {
	g, ok := a.groupFromPath(w, r)
	if !ok {
		return
	}
	grants, err := a.store.GrantsOfGroup(r.Context(), g.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.renderAdmin(w, r, http.StatusOK, "Delete "+g.Name, "groups", components.AdminGroupDeletePage(g, grants))
}

// deleteGroup handles POST /admin/groups/{id}/delete.
func (a *App) deleteGroup(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r, "id")
	if !ok {
		a.notFound(w, r)
		return
	}
	err := a.store.DeleteGroup(r.Context(), a.actor(r), id)
	if a.failed(w, r, err) {
		return
	}
	a.redirect(w, r, "/admin/groups?msg=group-deleted")
}

// groupCandidates renders GET /admin/groups/{id}/candidates?q=: users
// matching the query (email or name) who are not members, for the live
// add-member search. Without htmx it shows the group page with the results.
func (a *App) groupCandidates(w http.ResponseWriter, r *http.Request) {
	g, ok := a.groupFromPath(w, r)
	if !ok {
		return
	}
	q := searchParam(r.URL.Query(), "q")
	if !isHTMX(r) {
		http.Redirect(w, r, groupURL(g.ID)+"?q="+url.QueryEscape(q)+"#add-member", http.StatusSeeOther)
		return
	}
	var users []db.User
	if q != "" {
		var err error
		if users, err = a.memberCandidates(r, g.ID, q); err != nil {
			a.serverError(w, r, err)
			return
		}
	}
	a.renderFragment(w, r, http.StatusOK, components.AdminCandidates(g.ID, q, users, a.now().UnixMilli(), false))
}

// memberCandidates finds users to add to a group. Admins search by any
// part of an email or name; a group manager, who may not browse users,
// finds only the user whose email is exactly q (and not yet a member).
func (a *App) memberCandidates(r *http.Request, groupID int64, q string) ([]db.User, error) {
	ctx := r.Context()
	if isAdmin(r) {
		return a.store.MemberCandidates(ctx, groupID, q, 10)
	}
	email, err := db.NormalizeEmail(q)
	if err != nil {
		return nil, nil
	}
	u, err := a.store.UserByEmail(ctx, email)
	if errors.Is(err, db.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if _, err := a.store.MemberOf(ctx, groupID, u.ID); err == nil {
		return nil, nil
	} else if !errors.Is(err, db.ErrNotFound) {
		return nil, err
	}
	return []db.User{u}, nil
}

// userByID loads the user with the id raw (a path or form value), answering 404 for an
// unknown or malformed id.
func (a *App) userByID(w http.ResponseWriter, r *http.Request, raw string) (db.User, bool) {
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		a.notFound(w, r)
		return db.User{}, false
	}
	u, err := a.store.UserByID(r.Context(), id)
	if a.failed(w, r, err) {
		return u, false
	}
	return u, true
}

// addMember handles POST /admin/groups/{id}/members (user_id, optional
// expires YYYY-MM-DD). A second add or a past expiry answers 422 and
// changes nothing; unknown ids answer 404. With htmx the answer is the
// search result line ("Added") plus the refreshed members table.
func (a *App) addMember(w http.ResponseWriter, r *http.Request) {
	g, ok := a.groupFromPath(w, r)
	if !ok || !a.parseForm(w, r) {
		return
	}
	u, ok := a.userByID(w, r, r.PostForm.Get("user_id"))
	if !ok {
		return
	}
	if v := viewerFrom(r.Context()); !v.User.IsAdmin {
		// A manager, who finds users by exact email only: the id alone
		// (counted up) must not add anyone, nor show their email.
		if email, err := db.NormalizeEmail(r.PostForm.Get("email")); err != nil || !strings.EqualFold(email, u.Email) {
			a.notFound(w, r)
			return
		}
	}
	nowMS := a.now().UnixMilli()
	// undo: the Undo after a removal, which puts the membership back with
	// the expiry it had and answers the members section it sits in.
	undo := r.PostForm.Get("undo") == "1"
	failWith := func(status int, msg string) {
		switch {
		case undo && isHTMX(r):
			a.renderMembers(w, r, status, g, func(d *components.MembersData) { d.Error = msg })
		case isHTMX(r):
			a.renderFragment(w, r, status, components.AdminCandidateItem(g.ID, u, nowMS, msg, ""))
		default:
			a.renderGroupPage(w, r, status, g, func(d *components.GroupPageData) { d.AddError = msg })
		}
	}
	fail := func(msg string) { failWith(http.StatusUnprocessableEntity, msg) }
	if a.refusedMemberChange(w, r, g, u, failWith) {
		return
	}
	var exp int64
	var err error
	if undo {
		exp, err = strconv.ParseInt(r.PostForm.Get("undo_expires_ms"), 10, 64)
		if err != nil || exp < 0 {
			a.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
			return
		}
	} else if exp, err = db.ParseExpiry(r.PostForm.Get("expires"), a.now()); err != nil {
		fail(userMessage(err))
		return
	}
	err = a.store.AddMember(r.Context(), a.actor(r), g.ID, u.ID, exp)
	switch {
	case errors.Is(err, db.ErrDuplicate):
		fail(fmt.Sprintf("%s is already a member of %s.", u.Email, g.Name))
		return
	case errors.Is(err, db.ErrNotFound):
		a.notFound(w, r)
		return
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	if !isHTMX(r) {
		a.redirect(w, r, groupURL(g.ID)+"?msg=member-added")
		return
	}
	if undo {
		a.renderMembers(w, r, http.StatusOK, g, func(d *components.MembersData) {
			d.Done = fmt.Sprintf("%s is a member of %s again.", u.Email, g.Name)
		})
		return
	}
	if g, err = a.store.GroupByID(r.Context(), g.ID); err != nil {
		a.serverError(w, r, err)
		return
	}
	members, err := a.membersData(r, g, pageParam(pageRequest(r, groupURL(g.ID)), "page"))
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	added := "Added"
	if exp != 0 {
		added += " until " + components.Day(exp)
	}
	a.renderFragment(w, r, http.StatusOK, joinComponents(
		components.AdminCandidateItem(g.ID, u, nowMS, "", added),
		components.AdminMembersSection(members, true)))
}

// refusedMemberChange decides (dashboards.DecideMember) whether the viewer
// may add u to g or change u's expiry in it; a manager may not for
// themselves. A refusal is audited as a denial and answered 403 by show
// with the sentence saying why. It reports whether it answered.
func (a *App) refusedMemberChange(w http.ResponseWriter, r *http.Request, g db.Group, u db.User, show func(status int, msg string)) bool {
	dec := dashboards.DecideMember(dashboards.ViewerOf(viewerFrom(r.Context()).User), u.ID)
	if dec.Allowed {
		return false
	}
	if err := a.store.AuditDenial(r.Context(), a.actor(r), g.Name+" / "+u.Email, dec.Code, dec.Reason, time.Minute); err != nil {
		a.serverError(w, r, err)
		return true
	}
	show(http.StatusForbidden, "You cannot change your own membership of "+g.Name+": "+dec.Reason+".")
	return true
}

// memberFromPath loads the group and the member user of a membership route.
func (a *App) memberFromPath(w http.ResponseWriter, r *http.Request) (db.Group, db.User, bool) {
	g, ok := a.groupFromPath(w, r)
	if !ok {
		return g, db.User{}, false
	}
	u, ok := a.userByID(w, r, r.PathValue("user"))
	return g, u, ok
}

// removeMember handles POST /admin/groups/{id}/members/{user}/remove: the
// user's access through the group ends on their next request. A non-member
// answers 404. With htmx the (empty) answer removes the row.
func (a *App) removeMember(w http.ResponseWriter, r *http.Request) {
	g, u, ok := a.memberFromPath(w, r)
	if !ok {
		return
	}
	// The membership as it was, for Undo.
	m, err := a.store.MemberOf(r.Context(), g.ID, u.ID)
	if err == nil {
		err = a.store.RemoveMember(r.Context(), a.actor(r), g.ID, u.ID)
	}
	switch {
	case errors.Is(err, db.ErrNotFound):
		msg := fmt.Sprintf("%s is not a member of %s.", u.Email, g.Name)
		if isHTMX(r) {
			retarget(w, "#member-"+strconv.FormatInt(u.ID, 10))
			a.renderFragment(w, r, http.StatusNotFound, components.TableMessageRow("member-"+strconv.FormatInt(u.ID, 10), 4, "error", msg))
			return
		}
		a.errorPage(w, r, http.StatusNotFound, "Not a member", msg)
		return
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	if !isHTMX(r) {
		a.redirect(w, r, groupURL(g.ID)+"?msg=member-removed")
		return
	}
	// The search results above are answered too (for the query the page
	// holds), so none still says "Added" about someone no longer a member.
	q := strings.TrimSpace(truncateRunes(r.PostForm.Get("q"), 100))
	var candidates []db.User
	if q != "" {
		if candidates, err = a.memberCandidates(r, g.ID, q); err != nil {
			a.serverError(w, r, err)
			return
		}
	}
	a.renderMembers(w, r, http.StatusOK, g, func(d *components.MembersData) {
		d.Done = fmt.Sprintf("Removed %s from %s.", u.Email, g.Name)
		d.Undo = &components.MemberUndo{UserID: u.ID, Email: u.Email, ExpiresAt: m.ExpiresAt}
	}, components.AdminCandidates(g.ID, q, candidates, a.now().UnixMilli(), true))
}

// renderMembers answers an htmx change to a group's members with the whole
// members section, so its count, rows and "1–N of N" footer all agree with
// the change; edit fills in what the change says, and more is sent after
// it (out-of-band swaps).
func (a *App) renderMembers(w http.ResponseWriter, r *http.Request, status int, g db.Group, edit func(*components.MembersData), more ...templ.Component) {
	g, err := a.store.GroupByID(r.Context(), g.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	members, err := a.membersData(r, g, pageParam(pageRequest(r, groupURL(g.ID)), "page"))
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	edit(&members)
	a.renderFragment(w, r, status, joinComponents(append([]templ.Component{components.AdminMembersSection(members, false)}, more...)...))
}

// setMemberExpiry handles POST /admin/groups/{id}/members/{user}/expiry:
// expires=YYYY-MM-DD sets or renews the expiry, clear=1 (or an empty date)
// removes it. A past date answers 422, a non-member 404.
func (a *App) setMemberExpiry(w http.ResponseWriter, r *http.Request) {
	g, u, ok := a.memberFromPath(w, r)
	if !ok || !a.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	nowMS := a.now().UnixMilli()
	m, err := a.store.MemberOf(ctx, g.ID, u.ID)
	if errors.Is(err, db.ErrNotFound) {
		msg := fmt.Sprintf("%s is not a member of %s.", u.Email, g.Name)
		if isHTMX(r) {
			a.renderFragment(w, r, http.StatusNotFound, components.TableMessageRow("member-"+strconv.FormatInt(u.ID, 10), 4, "error", msg))
			return
		}
		a.errorPage(w, r, http.StatusNotFound, "Not a member", msg)
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	if a.refusedMemberChange(w, r, g, u, func(status int, msg string) {
		if isHTMX(r) {
			a.renderFragment(w, r, status, components.AdminMemberRow(g.ID, m, nowMS, msg))
			return
		}
		a.renderGroupPage(w, r, status, g, func(d *components.GroupPageData) { d.Members.Error = msg })
	}) {
		return
	}
	var exp int64
	if r.PostForm.Get("clear") == "" {
		if exp, err = db.ParseExpiry(r.PostForm.Get("expires"), a.now()); err != nil {
			msg := userMessage(err)
			if isHTMX(r) {
				a.renderFragment(w, r, http.StatusUnprocessableEntity, components.AdminMemberRow(g.ID, m, nowMS, msg))
				return
			}
			a.renderGroupPage(w, r, http.StatusUnprocessableEntity, g, func(d *components.GroupPageData) {
				d.Members.Error = fmt.Sprintf("The expiry of %s was not changed: %s", u.Email, msg)
			})
			return
		}
	}
	err = a.store.SetMemberExpiry(ctx, a.actor(r), g.ID, u.ID, exp)
	if a.failed(w, r, err) {
		return
	}
	if !isHTMX(r) {
		a.redirect(w, r, groupURL(g.ID)+"?msg=expiry-saved")
		return
	}
	m.ExpiresAt = exp
	a.renderFragment(w, r, http.StatusOK, components.AdminMemberRow(g.ID, m, nowMS, ""))
}
