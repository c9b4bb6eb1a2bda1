package app

import (
	"context"
	"errors"
	"net/http"

	"gatehouse/app/apps"
	"gatehouse/app/dashboards"
	"gatehouse/db"
)

// appsDomain is the domain apps are served under: --apps-domain, else
// localhost when the base URL is loopback, else "" (apps off).
func (c Config) appsDomain() string {
	if c.AppsDomain != "" {
		return c.AppsDomain
	}
	return apps.DefaultDomain(c.PublicURL())
}

// newApps builds the app origins' handler when apps are on.
func (a *App) newApps(ctx context.Context) error {
	domain := a.cfg.appsDomain()
	if domain == "" {
		return nil
	}
	h, err := apps.New(ctx, apps.Config{
		Domain:   domain,
		BaseURL:  a.cfg.PublicURL(),
		Store:    a.store,
		Registry: a.registry,
		Gate:     appGate{a},
		Log:      a.log,
		Cookies:  []string{a.sessions.CookieName(), a.deviceCookieName(), a.ssoCookieName()},
		ClientIP: a.clientIP,
		Budget:   a.streams,
	})
	if err != nil {
		return err
	}
	a.apps = h
	a.metrics.watchAppConnections(h, a.registry)
	return nil
}

// appGate lends app/apps the one session lookup the main origin uses.
type appGate struct{ a *App }

// Viewer returns the viewer of a session cookie value: a live session of
// an active user who has finished signing in (second factor given, no
// temporary password left to change).
func (g appGate) Viewer(ctx context.Context, cookie string) (apps.Viewer, bool, error) {
	a := g.a
	ctx, err := a.store.Snapshot(ctx)
	if err != nil {
		return apps.Viewer{}, false, err
	}
	sess, u, err := a.sessions.LoadCookie(ctx, cookie)
	if err != nil {
		return apps.Viewer{}, false, err
	}
	if sess.IsNew || !u.IsActive || u.MustChangePassword {
		return apps.Viewer{}, false, nil
	}
	pending, err := a.pendingMethod(ctx, &Viewer{User: u, Session: sess, Method: sessionMethod(sess)})
	if err != nil || pending != "" {
		return apps.Viewer{}, false, err
	}
	ends, err := a.sessions.Deadline(ctx, cookie)
	if errors.Is(err, db.ErrNotFound) {
		return apps.Viewer{}, false, nil
	} else if err != nil {
		return apps.Viewer{}, false, err
	}
	return apps.Viewer{User: u, SessionHash: db.HashToken(sess.ID), Ends: ends}, true, nil
}

// appSignin serves GET /apps/{slug}/signin on the main origin: the viewer
// (signed in by requireLogin first) is decided for the app and, when
// allowed, sent to the app origin with a one-time code for its cookie;
// when denied, they get the dashboard's 403 page with the request form.
func (a *App) appSignin(w http.ResponseWriter, r *http.Request) {
	d := a.registry.Get(r.PathValue("slug"))
	if a.apps == nil || d == nil || d.App == nil {
		a.notFound(w, r)
		return
	}
	v := viewerFrom(r.Context())
	dec, err := dashboards.Check(r.Context(), a.store, dashboards.ViewerOf(v.User), d, nil)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.metrics.decision(d.Slug, dec.Allowed)
	if !dec.Allowed {
		a.showDashboard(w, r) // decides again: the 403 page, audited, with the request form
		return
	}
	cookie, ok := cookieValue(r, a.sessions.CookieName())
	if !ok {
		a.serverError(w, r, errNoSessionCookie)
		return
	}
	q := r.URL.Query()
	next := q.Get("next")
	if next == "" {
		next = q.Get("rd") // ingress-nginx's auth-signin appends the original URL as rd
	}
	target, err := a.apps.IssueCode(r.Context(), d.Slug, cookie, db.HashToken(v.Session.ID), next, q.Get("state"))
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// forwardAuth serves GET /auth/forward: a proxy's question before each
// request to an app it serves (app/apps/forward.go). 404 when apps are off.
func (a *App) forwardAuth(w http.ResponseWriter, r *http.Request) {
	if a.apps == nil {
		a.notFound(w, r)
		return
	}
	a.apps.Forward(w, r)
}

// jwks serves GET /.well-known/jwks.json: the keys that verify the
// X-Gatehouse-Assertion apps receive (404 when apps are off).
func (a *App) jwks(w http.ResponseWriter, r *http.Request) {
	if a.apps == nil {
		a.notFound(w, r)
		return
	}
	a.apps.JWKS(w, r)
}

type appsError string

func (e appsError) Error() string { return string(e) }

const errNoSessionCookie = appsError("a signed-in request carries no session cookie")
