package app

import (
	"net/http"

	"gatehouse/assets"
)

// Routes returns the whole HTTP surface of Gatehouse. Every route is listed
// here, with the middleware chain that guards it:
//
//	standard: recover → log → security headers → body limit → CSRF → load viewer
//	public:   standard
//	user:     standard → requireLogin
//	admin:    standard → requireLogin → requireAdmin
func (a *App) Routes() http.Handler {
	mux := http.NewServeMux()
	user := func(h http.HandlerFunc) http.Handler { return chain(h, a.requireLogin) }
	admin := func(h http.HandlerFunc) http.Handler { return chain(h, a.requireLogin, a.requireAdmin) }
	_ = admin

	// Public.
	mux.Handle("GET /assets/", assets.Handler())
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /login", a.showLogin)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /setup", a.showSetup)
	mux.HandleFunc("POST /setup", a.setup)

	// Logged-in users.
	mux.Handle("GET /{$}", user(a.home))
	mux.Handle("GET /account", user(a.showAccount))
	mux.Handle("GET /account/password", user(a.showChangePassword))
	mux.Handle("POST /account/password", user(a.changePassword))
	mux.Handle("GET /dashboards/{slug}", user(a.showDashboard))
	mux.Handle("GET /dashboards/{slug}/panels/{panel}", user(a.showPanel))
	mux.Handle("POST /dashboards/{slug}/request", user(a.requestAccess))

	// Admins.

	return chain(a.friendlyErrors(mux), a.recoverPanics, a.logRequests, a.securityHeaders, a.limitBodies, a.crossOrigin, a.loadViewer)
}

// friendlyErrors answers requests that match no route with Gatehouse's own
// 404 page, and those with a wrong method with a 405 page that keeps the
// mux's Allow header.
func (a *App) friendlyErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &headerProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.header.Get("Allow"))
			a.errorPage(w, r, http.StatusMethodNotAllowed, "Method not allowed", "This address does not accept "+r.Method+" requests.")
			return
		}
		a.notFound(w, r)
	})
}

// headerProbe captures what the mux's own error handler would answer.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(code int)        { p.status = code }
