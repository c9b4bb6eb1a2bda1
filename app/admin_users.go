package app

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"gatehouse/components"
	"gatehouse/db"
)

func userURL(id int64) string { return "/admin/users/" + strconv.FormatInt(id, 10) }

// usersData loads a page of the users list for the query string's search
// and filters (q, group, admin, inactive).
func (a *App) usersData(r *http.Request, create components.UserCreateForm) (components.UsersData, error) {
	v := r.URL.Query()
	f := components.UserFilter{Query: searchParam(v, "q"), Admin: v.Get("admin") == "on", Inactive: v.Get("inactive") == "on"}
	if id, err := strconv.ParseInt(v.Get("group"), 10, 64); err == nil && id > 0 {
		f.GroupID = id
	}
	page := pageParam(r, "page")
	users, total, err := a.store.SearchUsers(r.Context(), db.UserFilter{Search: f.Query, GroupID: f.GroupID, Admin: f.Admin,
		Inactive: f.Inactive, Limit: adminPerPage, Offset: (page - 1) * adminPerPage})
	if err != nil {
		return components.UsersData{}, err
	}
	groups, err := a.store.GroupOptions(r.Context())
	if err != nil {
		return components.UsersData{}, err
	}
	query := url.Values{}
	if f.Query != "" {
		query.Set("q", f.Query)
	}
	if f.GroupID != 0 {
		query.Set("group", strconv.FormatInt(f.GroupID, 10))
	}
	if f.Admin {
		query.Set("admin", "on")
	}
	if f.Inactive {
		query.Set("inactive", "on")
	}
	return components.UsersData{Users: users, Filter: f, Groups: groups, Create: create, Notice: notice(r),
		Pager: components.Pager{Path: "/admin/users", Query: query, Page: page, PerPage: adminPerPage, Total: total, Shown: len(users), Noun: "users"}}, nil
}

// showUsers renders GET /admin/users: a page of users with search and
// filters, and the create form. For htmx (search, filters) it answers the
// table alone.
func (a *App) showUsers(w http.ResponseWriter, r *http.Request) {
	d, err := a.usersData(r, components.UserCreateForm{})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if isHTMX(r) {
		a.renderFragment(w, r, http.StatusOK, components.AdminUsersTable(d))
		return
	}
	a.renderAdmin(w, r, http.StatusOK, "Users", "users", components.AdminUsersPage(d))
}

// renderUserCreate answers the create form: alone for htmx, inside the
// users page otherwise.
func (a *App) renderUserCreate(w http.ResponseWriter, r *http.Request, status int, f components.UserCreateForm) {
	if isHTMX(r) {
		a.renderFragment(w, r, status, components.AdminUserCreate(f))
		return
	}
	d, err := a.usersData(r, f)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.renderAdmin(w, r, status, "Users", "users", components.AdminUsersPage(d))
}

// createUser handles POST /admin/users: a new user with a temporary
// password, shown once in the answer (never redirected to, never stored in
// clear), that must be changed at first login.
func (a *App) createUser(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	f := components.UserCreateForm{Email: truncateRunes(r.PostForm.Get("email"), 254), Name: truncateRunes(r.PostForm.Get("name"), 1000),
		Admin: r.PostForm.Get("admin") == "on"}
	email, err := db.NormalizeEmail(f.Email)
	if err != nil {
		f.EmailError = userMessage(err)
	}
	name, err := db.CleanName("name", f.Name, 0, 100)
	if err != nil {
		f.NameError = userMessage(err)
	}
	if f.EmailError != "" || f.NameError != "" {
		a.renderUserCreate(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	temp, hash, ok := a.temporaryPassword(w, r)
	if !ok {
		return
	}
	u, err := a.store.CreateUser(ctx, a.actor(r), db.NewUser{Email: email, Name: name, PasswordHash: hash, IsAdmin: f.Admin, MustChangePassword: true})
	switch {
	case errors.Is(err, db.ErrDuplicate):
		f.EmailError = "A user with this email already exists."
		a.renderUserCreate(w, r, http.StatusUnprocessableEntity, f)
		return
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	created := components.UserCreateForm{Created: &u, TempPassword: temp}
	if !isHTMX(r) {
		a.renderUserCreate(w, r, http.StatusOK, created)
		return
	}
	// The form with the password, and the list (with the page's filters)
	// so its rows and "1–N of N users" include the new user.
	d, err := a.usersData(pageRequest(r, "/admin/users"), created)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	d.OOB = true
	a.renderFragment(w, r, http.StatusOK, joinComponents(components.AdminUserCreate(created), components.AdminUsersTable(d)))
}

// userFromPath loads the user named by the {id} path value (404 if none).
func (a *App) userFromPath(w http.ResponseWriter, r *http.Request) (db.User, bool) {
	return a.userByID(w, r, r.PathValue("id"))
}

// userGroupsData loads the user's group checklist: groups matching ?gq=,
// theirs first, one page (?gpage=).
func (a *App) userGroupsData(r *http.Request, userID int64) (components.UserGroupsData, error) {
	q := searchParam(r.URL.Query(), "gq")
	page := pageParam(r, "gpage")
	groups, total, err := a.store.GroupChoicesForUser(r.Context(), userID, q, adminPerPage, (page-1)*adminPerPage)
	if err != nil {
		return components.UserGroupsData{}, err
	}
	query := url.Values{}
	if q != "" {
		query.Set("gq", q)
	}
	return components.UserGroupsData{UserID: userID, Groups: groups, Query: q, NowMS: a.now().UnixMilli(),
		Pager: components.Pager{Path: userURL(userID), Query: query, Page: page, PerPage: adminPerPage,
			Total: total, Shown: len(groups), Noun: "groups", PageKey: "gpage"}}, nil
}

// userPage loads everything a user's page shows.
func (a *App) userPage(r *http.Request, u db.User) (components.UserPageData, error) {
	d := components.UserPageData{User: u, Self: viewerFrom(r.Context()).User.ID == u.ID, NowMS: a.now().UnixMilli(), Notice: notice(r)}
	var err error
	if d.Groups, err = a.userGroupsData(r, u.ID); err != nil {
		return d, err
	}
	if d.Sessions, err = a.store.ListSessions(r.Context(), u.ID); err != nil {
		return d, err
	}
	if d.Factors, err = a.store.Factors(r.Context(), u.ID); err != nil {
		return d, err
	}
	scimUsers, _, err := a.store.ListSCIMUsers(r.Context(), db.SCIMUserQuery{ID: u.ID})
	if err != nil {
		return d, err
	}
	if len(scimUsers) == 1 {
		d.SCIM = &scimUsers[0]
	}
	return d, nil
}

// showUser renders GET /admin/users/{id}: role and status, password reset,
// the groups checklist and the sessions. An htmx request targeting the
// checklist (its search) gets the checklist alone.
func (a *App) showUser(w http.ResponseWriter, r *http.Request) {
	u, ok := a.userFromPath(w, r)
	if !ok {
		return
	}
	if isHTMX(r) && r.Header.Get("HX-Target") == "user-groups" {
		d, err := a.userGroupsData(r, u.ID)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		a.renderFragment(w, r, http.StatusOK, components.AdminUserGroups(d))
		return
	}
	a.renderUserPage(w, r, http.StatusOK, u, func(*components.UserPageData) {})
}

func (a *App) renderUserPage(w http.ResponseWriter, r *http.Request, status int, u db.User, edit func(*components.UserPageData)) {
	d, err := a.userPage(r, u)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	edit(&d)
	a.renderAdmin(w, r, status, u.DisplayName(), "users", components.AdminUserPage(d))
}

// toggleUserGroup handles POST /admin/users/{id}/groups/{group}: member=on
// puts the user in the group, member=off takes them out. Asking for the
// state the membership is already in changes nothing and is not an error
// (two admins ticking the same box both see it ticked).
func (a *App) toggleUserGroup(w http.ResponseWriter, r *http.Request) {
	u, ok := a.userFromPath(w, r)
	if !ok {
		return
	}
	gid, ok := pathID(r, "group")
	if !ok {
		a.notFound(w, r)
		return
	}
	if !a.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	g, err := a.store.GroupChoice(ctx, u.ID, gid)
	if a.failed(w, r, err) {
		return
	}
	nowMS := a.now().UnixMilli()
	member, valid := boolField(r.PostForm, "member")
	if !valid {
		msg := "Say member=on or member=off."
		if isHTMX(r) {
			a.renderFragment(w, r, http.StatusUnprocessableEntity, components.AdminUserGroupItem(u.ID, g, nowMS, msg))
			return
		}
		a.errorPage(w, r, http.StatusUnprocessableEntity, "Nothing changed", msg)
		return
	}
	if member {
		err = a.store.AddMember(ctx, a.actor(r), gid, u.ID, 0)
		if errors.Is(err, db.ErrDuplicate) {
			err = nil
		}
	} else {
		err = a.store.RemoveMember(ctx, a.actor(r), gid, u.ID)
		if errors.Is(err, db.ErrNotFound) {
			// Already out; the group and user exist (checked above) unless
			// deleted in between, which the re-read below notices.
			err = nil
		}
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if !isHTMX(r) {
		a.redirect(w, r, userURL(u.ID)+"?msg=groups-saved#user-groups")
		return
	}
	g, err = a.store.GroupChoice(ctx, u.ID, gid)
	if a.failed(w, r, err) {
		return
	}
	a.renderFragment(w, r, http.StatusOK, components.AdminUserGroupItem(u.ID, g, nowMS, ""))
}

// renameUser handles POST /admin/users/{id}: the user's display name
// (0–100 characters; a bad one answers 422 and changes nothing).
func (a *App) renameUser(w http.ResponseWriter, r *http.Request) {
	u, ok := a.userFromPath(w, r)
	if !ok || !a.parseForm(w, r) {
		return
	}
	self := viewerFrom(r.Context()).User.ID == u.ID
	name, err := db.CleanName("name", truncateRunes(r.PostForm.Get("name"), 1000), 0, 100)
	if err != nil {
		msg := userMessage(err)
		if isHTMX(r) {
			a.renderFragment(w, r, http.StatusUnprocessableEntity, components.AdminUserStatus(u, self, components.StatusBox{Error: msg}))
			return
		}
		a.renderUserPage(w, r, http.StatusUnprocessableEntity, u, func(d *components.UserPageData) { d.Status.Error = msg })
		return
	}
	err = a.store.UpdateUserName(r.Context(), a.actor(r), u.ID, name)
	if a.failed(w, r, err) {
		return
	}
	if !isHTMX(r) {
		a.redirect(w, r, userURL(u.ID)+"?msg=user-renamed")
		return
	}
	u.Name = name
	a.renderFragment(w, r, http.StatusOK, joinComponents(
		components.AdminUserStatus(u, self, components.StatusBox{Notice: adminNotices["user-renamed"]}),
		components.AdminUserHead(u, true)))
}

// lastAdminMessage explains the last-admin guard.
func lastAdminMessage(u db.User, what string) string {
	return fmt.Sprintf("%s is the last active admin, so they cannot be %s: Gatehouse would have nobody left to manage it. "+
		"Make another user an admin first.", u.Email, what)
}

// setUserActive handles POST /admin/users/{id}/active (active=true/false).
// Deactivating revokes every session of the user at once; the last active
// admin cannot be deactivated (422, with the reason).
func (a *App) setUserActive(w http.ResponseWriter, r *http.Request) {
	a.setUserFlag(w, r, "active", func(u db.User, on bool) error {
		return a.store.SetActive(r.Context(), a.actor(r), u.ID, on)
	}, map[bool]string{true: "user-activated", false: "user-deactivated"}, "deactivated")
}

// setUserAdmin handles POST /admin/users/{id}/admin (admin=true/false).
// The last active admin cannot be demoted (422, with the reason).
func (a *App) setUserAdmin(w http.ResponseWriter, r *http.Request) {
	a.setUserFlag(w, r, "admin", func(u db.User, on bool) error {
		return a.store.SetAdmin(r.Context(), a.actor(r), u.ID, on)
	}, map[bool]string{true: "user-promoted", false: "user-demoted"}, "demoted")
}

func (a *App) setUserFlag(w http.ResponseWriter, r *http.Request, field string, set func(db.User, bool) error, notices map[bool]string, refused string) {
	u, ok := a.userFromPath(w, r)
	if !ok || !a.parseForm(w, r) {
		return
	}
	self := viewerFrom(r.Context()).User.ID == u.ID
	fail := func(status int, msg string) {
		if isHTMX(r) {
			a.renderFragment(w, r, status, components.AdminUserStatus(u, self, components.StatusBox{Error: msg}))
			return
		}
		a.renderUserPage(w, r, status, u, func(d *components.UserPageData) { d.Status.Error = msg })
	}
	on, valid := boolField(r.PostForm, field)
	if !valid {
		fail(http.StatusUnprocessableEntity, fmt.Sprintf("Say %s=true or %s=false.", field, field))
		return
	}
	err := set(u, on)
	switch {
	case errors.Is(err, db.ErrLastAdmin):
		fail(http.StatusUnprocessableEntity, lastAdminMessage(u, refused))
		return
	case errors.Is(err, db.ErrNotFound):
		a.notFound(w, r)
		return
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	// An admin who deactivated or demoted themselves has lost this page.
	if self && !on {
		if field == "active" {
			a.redirect(w, r, "/login")
		} else {
			a.redirect(w, r, "/")
		}
		return
	}
	if !isHTMX(r) {
		a.redirect(w, r, userURL(u.ID)+"?msg="+notices[on])
		return
	}
	u, err = a.store.UserByID(r.Context(), u.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	// Deactivation ends every session: the sessions list follows.
	sessions, err := a.store.ListSessions(r.Context(), u.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.renderFragment(w, r, http.StatusOK, joinComponents(
		components.AdminUserStatus(u, self, components.StatusBox{Notice: adminNotices[notices[on]]}),
		components.AdminUserSessions(u.ID, sessions, true, "")))
}

// resetPassword handles POST /admin/users/{id}/password: a temporary
// password replaces theirs, all their sessions end, and the answer shows
// the password once. Admins change their own password on /account.
func (a *App) resetPassword(w http.ResponseWriter, r *http.Request) {
	u, ok := a.userFromPath(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	self := viewerFrom(ctx).User.ID == u.ID
	if self {
		msg := "Change your own password on your account page; resetting it here would log you out."
		if isHTMX(r) {
			a.renderFragment(w, r, http.StatusUnprocessableEntity, components.AdminUserPassword(u, self, "", msg))
			return
		}
		a.renderUserPage(w, r, http.StatusUnprocessableEntity, u, func(d *components.UserPageData) { d.PasswordErr = msg })
		return
	}
	temp, hash, ok := a.temporaryPassword(w, r)
	if !ok {
		return
	}
	err := a.store.SetPassword(ctx, a.actor(r), u.ID, hash, true)
	if a.failed(w, r, err) {
		return
	}
	if isHTMX(r) {
		// The status badge now says "temporary password" and every session
		// has ended: both follow, out of band.
		if u, err = a.store.UserByID(ctx, u.ID); err != nil {
			a.serverError(w, r, err)
			return
		}
		sessions, err := a.store.ListSessions(ctx, u.ID)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		a.renderFragment(w, r, http.StatusOK, joinComponents(
			components.AdminUserPassword(u, self, temp, ""),
			components.AdminUserStatusOOB(u, self),
			components.AdminUserSessions(u.ID, sessions, true, "")))
		return
	}
	u.MustChangePassword = true
	a.renderUserPage(w, r, http.StatusOK, u, func(d *components.UserPageData) { d.TempPassword = temp })
}

// revokeUserSession handles POST /admin/users/{id}/sessions/{session}/revoke
// ({session} is the stored id hash): that browser is logged out on its
// next request. With htmx the (empty) answer removes the row.
func (a *App) revokeUserSession(w http.ResponseWriter, r *http.Request) {
	u, ok := a.userFromPath(w, r)
	if !ok {
		return
	}
	hash := r.PathValue("session")
	err := a.store.RevokeSession(r.Context(), a.actor(r), u.ID, hash)
	if a.failed(w, r, err) {
		return
	}
	if viewerFrom(r.Context()).Session.ID != "" && db.HashToken(viewerFrom(r.Context()).Session.ID) == hash {
		a.redirect(w, r, "/login")
		return
	}
	if !isHTMX(r) {
		a.redirect(w, r, userURL(u.ID)+"?msg=session-revoked#sessions")
		return
	}
	sessions, err := a.store.ListSessions(r.Context(), u.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.renderFragment(w, r, http.StatusOK, components.AdminUserSessions(u.ID, sessions, false, "Session revoked: that browser is logged out on its next request."))
}

// resetUserMFA handles POST /admin/users/{id}/mfa/reset: the user's
// passkeys, authenticator app and recovery codes are removed and all their
// sessions end, in one audited change. An admin may reset their own (they
// are logged out, and sign in with their password again): with
// --require-mfa nobody is locked out by it, they are sent to set up a new
// factor.
func (a *App) resetUserMFA(w http.ResponseWriter, r *http.Request) {
	u, ok := a.userFromPath(w, r)
	if !ok {
		return
	}
	_, err := a.store.ResetMFA(r.Context(), a.actor(r), u.ID)
	if a.failed(w, r, err) {
		return
	}
	if viewerFrom(r.Context()).User.ID == u.ID {
		a.redirect(w, r, "/login")
		return
	}
	a.redirect(w, r, userURL(u.ID)+"?msg=mfa-reset#user-mfa")
}
