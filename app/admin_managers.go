package app

import (
	"errors"
	"fmt"
	"net/http"

	"gatehouse/app/dashboards"
	"gatehouse/components"
	"gatehouse/db"
)

// requireGroupManager lets through (after requireLogin) admins, and the
// managers of the group named by the {id} path value, as decided by
// dashboards.CheckGroup; everyone else gets 403 with the decision's reason.
// An unknown group is refused the same way for a non-admin, so a manager
// cannot probe which ids exist. It reads the managers on every request (at
// the request's authorization version), so a manager removed by any
// process loses the group on their next request.
func (a *App) requireGroupManager(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := viewerFrom(r.Context())
		if v == nil {
			a.forbidden(w, r, "This page is for admins only.")
			return
		}
		if v.User.IsAdmin {
			next.ServeHTTP(w, r)
			return
		}
		id, _ := pathID(r, "id")
		dec, err := dashboards.CheckGroup(r.Context(), a.store, dashboards.ViewerOf(v.User), id)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		if !dec.Allowed {
			a.forbidden(w, r, "This page is for admins and the group's managers: "+dec.Reason+".")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireDecider lets through (after requireLogin) admins and the managers
// of at least one group: the people who may decide some access request.
// Which requests a manager sees and decides is narrowed by the handlers,
// through dashboards.CheckRequest.
func (a *App) requireDecider(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := viewerFrom(r.Context())
		if v != nil && v.User.IsAdmin {
			next.ServeHTTP(w, r)
			return
		}
		if v != nil {
			managed, err := a.store.ManagedGroups(r.Context(), v.User.ID)
			if err != nil {
				a.serverError(w, r, err)
				return
			}
			if len(managed) > 0 {
				next.ServeHTTP(w, r)
				return
			}
		}
		a.forbidden(w, r, "This page is for admins and group managers.")
	})
}

// isAdmin reports whether the request's viewer is an admin.
func isAdmin(r *http.Request) bool {
	v := viewerFrom(r.Context())
	return v != nil && v.User.IsAdmin
}

// addManager handles POST /admin/groups/{id}/managers (email): the user
// becomes a manager of the group. Admins only. An unknown email or a
// second add answers 422 and changes nothing.
func (a *App) addManager(w http.ResponseWriter, r *http.Request) {
	g, ok := a.groupFromPath(w, r)
	if !ok || !a.parseForm(w, r) {
		return
	}
	fail := func(msg string) {
		a.renderGroupPage(w, r, http.StatusUnprocessableEntity, g, func(d *components.GroupPageData) { d.Managers.Error = msg })
	}
	email, err := db.NormalizeEmail(truncateRunes(r.PostForm.Get("email"), 300))
	if err != nil {
		fail(userMessage(err))
		return
	}
	u, err := a.store.UserByEmail(r.Context(), email)
	if errors.Is(err, db.ErrNotFound) {
		fail(fmt.Sprintf("There is no user with the email %s.", email))
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	err = a.store.AddManager(r.Context(), a.actor(r), g.ID, u.ID)
	switch {
	case errors.Is(err, db.ErrDuplicate):
		fail(fmt.Sprintf("%s already manages %s.", u.Email, g.Name))
		return
	case a.failed(w, r, err):
		return
	}
	a.redirect(w, r, groupURL(g.ID)+"?msg=manager-added#managers")
}

// removeManager handles POST /admin/groups/{id}/managers/{user}/remove:
// the user stops managing the group on their next request. Admins only.
func (a *App) removeManager(w http.ResponseWriter, r *http.Request) {
	g, ok := a.groupFromPath(w, r)
	if !ok {
		return
	}
	u, ok := a.userByID(w, r, r.PathValue("user"))
	if !ok {
		return
	}
	err := a.store.RemoveManager(r.Context(), a.actor(r), g.ID, u.ID)
	if errors.Is(err, db.ErrNotFound) {
		a.errorPage(w, r, http.StatusNotFound, "Not a manager", fmt.Sprintf("%s is not a manager of %s.", u.Email, g.Name))
		return
	} else if a.failed(w, r, err) {
		return
	}
	a.redirect(w, r, groupURL(g.ID)+"?msg=manager-removed#managers")
}
