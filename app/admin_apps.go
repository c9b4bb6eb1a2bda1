package app

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"gatehouse/app/apps"
	"gatehouse/components"
	"gatehouse/db"
)

// appCheckTimeout bounds how long the Apps page waits for each upstream
// (all are asked at once).
const appCheckTimeout = 2 * time.Second

// appNotices are the Apps page's ?msg= notices.
var appNotices = map[string]string{
	"app-added":   "App added. Grant it to a group on Dashboard access.",
	"app-saved":   "App saved.",
	"app-removed": "App removed; its open connections are closed.",
}

// showApps serves GET /admin/apps: every app with whether its upstream
// answers, and the forms to add, change and remove them.
func (a *App) showApps(w http.ResponseWriter, r *http.Request) {
	a.renderApps(w, r, http.StatusOK, components.AdminAppsData{Notice: appNotices[r.URL.Query().Get("msg")]})
}

// renderApps renders the Apps page with d's forms, filling in the apps.
func (a *App) renderApps(w http.ResponseWriter, r *http.Request, status int, d components.AdminAppsData) {
	list, err := a.store.ListApps(r.Context())
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if a.apps == nil {
		d.Off = "Apps are not served: start Gatehouse with --apps-domain (wildcard DNS and a certificate for it; see docs/apps.md)."
	}
	d.Apps = make([]components.AppRow, len(list))
	var wg sync.WaitGroup
	for i, ap := range list {
		row := &d.Apps[i]
		*row = components.AppRow{Slug: ap.Slug, Title: ap.Title, Description: ap.Description, Upstream: ap.Upstream, UserHeader: ap.UserHeader, ExternalURL: ap.ExternalURL}
		if a.apps != nil {
			row.Origin = a.apps.Origin(ap.Slug)
		}
		wg.Go(func() {
			st := apps.Check(context.WithoutCancel(r.Context()), http.DefaultTransport, ap.Upstream, appCheckTimeout)
			row.Up, row.State = st.Up, st.String()
		})
	}
	wg.Wait()
	a.renderAdmin(w, r, status, "Apps", "apps", components.AdminAppsPage(d))
}

// appForm reads an app's fields from a posted form.
func appForm(r *http.Request, slug string) components.AppForm {
	f := r.PostForm
	return components.AppForm{Slug: slug, URL: truncateRunes(f.Get("url"), 2000), Title: truncateRunes(f.Get("title"), 1000),
		Description: truncateRunes(f.Get("description"), 4000), UserHeader: truncateRunes(f.Get("user_header"), 200),
		ExternalURL: truncateRunes(f.Get("external_url"), 2000)}
}

// createApp handles POST /admin/apps. A bad field, or a slug a dashboard
// or another app has, answers 422 with the form and the reason.
func (a *App) createApp(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	f := appForm(r, truncateRunes(r.PostForm.Get("slug"), 200))
	fail := func(msg string) {
		f.Error = msg
		a.renderApps(w, r, http.StatusUnprocessableEntity, components.AdminAppsData{Form: f})
	}
	ap, err := db.CleanApp(db.App{Slug: f.Slug, Upstream: f.URL, Title: f.Title, Description: f.Description, UserHeader: f.UserHeader, ExternalURL: f.ExternalURL})
	if err != nil {
		fail(capitalize(userMessage(err)) + ".")
		return
	}
	if d := a.registry.Get(ap.Slug); d != nil {
		fail("“" + ap.Slug + "” is already the slug of a dashboard or app; choose another.")
		return
	}
	if _, err := a.store.CreateApp(r.Context(), a.actor(r), ap); errors.Is(err, db.ErrDuplicate) {
		fail("“" + ap.Slug + "” is already the slug of a dashboard or app; choose another.")
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.redirect(w, r, "/admin/apps?msg=app-added")
}

// updateApp handles POST /admin/apps/{slug}: its URL, title, description
// and user header. 404 for no such app; a bad field 422.
func (a *App) updateApp(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	old, err := a.store.AppBySlug(r.Context(), r.PathValue("slug"))
	if errors.Is(err, db.ErrNotFound) {
		a.notFound(w, r)
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	f := appForm(r, old.Slug)
	ap, err := db.CleanApp(db.App{Slug: old.Slug, Upstream: f.URL, Title: f.Title, Description: f.Description, UserHeader: f.UserHeader, ExternalURL: f.ExternalURL})
	if err != nil {
		f.Error = capitalize(userMessage(err)) + "."
		a.renderApps(w, r, http.StatusUnprocessableEntity, components.AdminAppsData{Edit: f})
		return
	}
	if _, err := a.store.UpdateApp(r.Context(), a.actor(r), ap); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.redirect(w, r, "/admin/apps?msg=app-saved")
}

// deleteApp handles POST /admin/apps/{slug}/delete. Its grants stay.
func (a *App) deleteApp(w http.ResponseWriter, r *http.Request) {
	err := a.store.DeleteApp(r.Context(), a.actor(r), r.PathValue("slug"))
	if errors.Is(err, db.ErrNotFound) {
		a.notFound(w, r)
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.redirect(w, r, "/admin/apps?msg=app-removed")
}
