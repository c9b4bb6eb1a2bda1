package app

import (
	"net/http"
	"strings"

	"gatehouse/assets"
)

// Routes returns the whole HTTP surface of Gatehouse. Every route is listed
// here, with the middleware chain that guards it:
//
//	standard: recover → log → security headers → body limit → CSRF → input check → load viewer → SSO re-check
//	public:   standard
//	user:     standard → requireLogin
//	enrol:    standard → requireLogin, or a session made to set up a second factor
//	admin:    standard → requireLogin → requireAdmin
//	manager:  standard → requireLogin → requireGroupManager (admins, or managers of {id})
//	decider:  standard → requireLogin → requireDecider (admins, or managers of any group)
//	scim:     log → app/scim (Authorization: Bearer only), for every path under /scim/v2
//
// Requests whose Host is an app's origin (SLUG.<apps-domain>) are served by
// app/apps before any of this: the app's sign-in callback, its denials, and
// the upstream's content after the one decision.
func (a *App) Routes() http.Handler {
	mux := http.NewServeMux()
	user := func(h http.HandlerFunc) http.Handler { return chain(h, a.requireLogin) }
	admin := func(h http.HandlerFunc) http.Handler { return chain(h, a.requireLogin, a.requireAdmin) }
	manager := func(h http.HandlerFunc) http.Handler { return chain(h, a.requireLogin, a.requireGroupManager) }
	decider := func(h http.HandlerFunc) http.Handler { return chain(h, a.requireLogin, a.requireDecider) }
	enrol := func(h http.HandlerFunc) http.Handler { return chain(h, a.enrolling) }

	// Public.
	mux.Handle("GET /assets/", assets.Handler())
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("GET /login", a.showLogin)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /setup", a.showSetup)
	mux.HandleFunc("POST /setup", a.setup)
	mux.HandleFunc("GET /auth/oidc/start", a.oidcStart) // 404 unless --oidc-issuer
	mux.HandleFunc("GET /auth/oidc/callback", a.oidcCallback)
	mux.HandleFunc("GET /signup", a.showSignup) // 404 unless --allow-signup
	mux.HandleFunc("POST /signup", a.signup)
	mux.HandleFunc("GET /signup/confirm", a.showConfirmEmail)
	mux.HandleFunc("POST /signup/confirm", a.confirmEmail)
	mux.HandleFunc("GET /password/forgot", a.showForgot) // 404 without --smtp-url
	mux.HandleFunc("POST /password/forgot", a.forgotPassword)
	mux.HandleFunc("GET /password/reset", a.showResetWithLink)
	mux.HandleFunc("POST /password/reset", a.resetPasswordWithLink)

	// Second factors and passkeys while signing in (app/auth_mfa.go, app/auth_passkeys.go):
	// the half-authenticated session of a right password, or nobody yet.
	mux.HandleFunc("GET /login/mfa", a.showSecondFactor)
	mux.HandleFunc("POST /login/mfa", a.secondFactor)
	mux.HandleFunc("POST /login/mfa/passkey/begin", a.beginPasskeySecond)
	mux.HandleFunc("POST /login/mfa/passkey/finish", a.finishPasskeySecond)
	mux.HandleFunc("POST /login/passkey/begin", a.beginPasskeySignIn)
	mux.HandleFunc("POST /login/passkey/finish", a.finishPasskeySignIn)

	// Logged-in users.
	mux.Handle("GET /{$}", user(a.home))
	mux.Handle("GET /account", user(a.showAccount))
	mux.Handle("GET /account/password", user(a.showChangePassword))
	mux.Handle("POST /account/password", user(a.changePassword))
	// Also open to someone made to set up a second factor (--require-mfa).
	mux.Handle("GET /account/security", enrol(a.showSecurity))
	mux.Handle("POST /account/security/totp", enrol(a.startTOTP))
	mux.Handle("POST /account/security/totp/confirm", enrol(a.confirmTOTP))
	mux.Handle("POST /account/security/passkeys/begin", enrol(a.beginRegister))
	mux.Handle("POST /account/security/passkeys/finish", enrol(a.finishRegister))
	mux.Handle("POST /account/security/totp/remove", user(a.removeTOTP))
	mux.Handle("POST /account/security/recovery", user(a.newRecovery))
	mux.Handle("POST /account/security/passkeys/{id}/remove", user(a.removePasskey))
	mux.Handle("GET /dashboards/{slug}", user(a.showDashboard))
	mux.Handle("GET /dashboards/{slug}/panels/{panel}", user(a.showPanel))
	// The event stream answers an anonymous request 401 itself (EventSource
	// cannot follow a redirect to a login form).
	mux.HandleFunc("GET /dashboards/{slug}/events", a.dashboardEvents)
	mux.Handle("POST /dashboards/{slug}/request", user(a.requestAccess))
	// Apps (app/apps.go): the main origin's half of the sign-in on an app
	// origin, and the keys that verify the assertion apps receive.
	mux.Handle("GET /apps/{slug}/signin", user(a.appSignin))
	mux.HandleFunc("GET /.well-known/jwks.json", a.jwks)
	// Forward authentication (app/apps/forward.go): a team's own proxy asks
	// before each request to an app it serves; the answer (200 with the
	// identity headers, 401 to sign in, 403) comes from the same decision.
	// The app's hosts also answer it at /.gatehouse/auth.
	mux.HandleFunc("GET /auth/forward", a.forwardAuth)

	// Admins.
	mux.Handle("GET /admin", admin(a.adminOverview))
	mux.Handle("GET /admin/{$}", admin(a.adminOverview))
	mux.Handle("GET /admin/groups", admin(a.showGroups))
	mux.Handle("POST /admin/groups", admin(a.createGroup))
	mux.Handle("GET /admin/groups/{id}", manager(a.showGroup))
	mux.Handle("POST /admin/groups/{id}", admin(a.updateGroup))
	mux.Handle("GET /admin/groups/{id}/delete", admin(a.confirmDeleteGroup))
	mux.Handle("POST /admin/groups/{id}/delete", admin(a.deleteGroup))
	mux.Handle("GET /admin/groups/{id}/candidates", manager(a.groupCandidates))
	mux.Handle("POST /admin/groups/{id}/members", manager(a.addMember))
	mux.Handle("POST /admin/groups/{id}/members/{user}/remove", manager(a.removeMember))
	mux.Handle("POST /admin/groups/{id}/idp-groups", admin(a.mapIdPGroup))
	mux.Handle("POST /admin/groups/{id}/idp-groups/remove", admin(a.unmapIdPGroup))
	mux.Handle("POST /admin/groups/{id}/members/{user}/expiry", manager(a.setMemberExpiry))
	mux.Handle("POST /admin/groups/{id}/managers", admin(a.addManager))
	mux.Handle("POST /admin/groups/{id}/managers/{user}/remove", admin(a.removeManager))
	mux.Handle("GET /admin/users", admin(a.showUsers))
	mux.Handle("POST /admin/users", admin(a.createUser))
	mux.Handle("GET /admin/users/{id}", admin(a.showUser))
	mux.Handle("POST /admin/users/{id}", admin(a.renameUser))
	mux.Handle("POST /admin/users/{id}/groups/{group}", admin(a.toggleUserGroup))
	mux.Handle("POST /admin/users/{id}/active", admin(a.setUserActive))
	mux.Handle("POST /admin/users/{id}/admin", admin(a.setUserAdmin))
	mux.Handle("POST /admin/users/{id}/password", admin(a.resetPassword))
	mux.Handle("POST /admin/users/{id}/mfa/reset", admin(a.resetUserMFA))
	mux.Handle("POST /admin/users/{id}/sessions/{session}/revoke", admin(a.revokeUserSession))
	mux.Handle("GET /admin/access", admin(a.showAccess))
	mux.Handle("POST /admin/access/{slug}/{group}", admin(a.toggleGrant))
	mux.Handle("GET /admin/apps", admin(a.showApps))
	mux.Handle("POST /admin/apps", admin(a.createApp))
	mux.Handle("POST /admin/apps/{slug}", admin(a.updateApp))
	mux.Handle("POST /admin/apps/{slug}/delete", admin(a.deleteApp))
	mux.Handle("GET /admin/scim", admin(a.showSCIM))
	mux.Handle("POST /admin/scim/tokens", admin(a.createSCIMToken))
	mux.Handle("POST /admin/scim/tokens/{name}/revoke", admin(a.revokeSCIMToken))
	mux.Handle("GET /admin/requests", decider(a.showRequests))
	mux.Handle("POST /admin/requests/{id}", decider(a.decideRequest))
	mux.Handle("GET /admin/explain", admin(a.showExplain))
	mux.Handle("GET /admin/audit", admin(a.showAudit))
	// Unknown admin pages, and admin routes asked with another method: who
	// you are first, then 404, or 405 with Allow.
	mux.Handle("/admin/", admin(a.unrouted(mux).ServeHTTP))

	// Everything else: 405 where another method has a route, otherwise 404.
	mux.Handle("/", a.unrouted(mux))

	// SCIM (app/scim) at /scim/v2 is not in this chain: a bearer token
	// is its only credential, never a cookie, and it answers in SCIM JSON.
	main := a.withSCIM(a.metrics.instrument(chain(a.metrics.notePattern(mux),
		a.logRequests, a.recoverPanics, a.securityHeaders, a.limitBodies, a.crossOrigin, a.checkInput, a.loadViewer, a.recheckSSO)))
	// Requests for an app's host (SLUG.<apps-domain>) never reach the
	// routes above: they are the app's, served by app/apps, logged as
	// every request is.
	if a.apps == nil {
		return main
	}
	return a.apps.Wrap(main, chain(a.apps, a.metrics.instrumentApps(a.apps, a.registry), a.logRequests, a.recoverPanics))
}

// unrouted answers requests that match no route with Gatehouse's own 404
// page, or with a 405 page and an Allow header when the path has a route
// for another method. It is the catch-all route, so a routed request is
// matched once, by the mux, and never probed.
func (a *App) unrouted(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethods(mux, r); allow != "" {
			w.Header().Set("Allow", allow)
			a.errorPage(w, r, http.StatusMethodNotAllowed, "Method not allowed", "This address does not accept "+r.Method+" requests.")
			return
		}
		a.notFound(w, r)
	})
}

// allowedMethods lists the methods with a route (other than the catch-all)
// for r's path, as an Allow header value; "" when there are none.
// The catch-alls ("/" and "/admin/") do not count.
func allowedMethods(mux *http.ServeMux, r *http.Request) string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := *r
		probe.Method = m
		if _, pattern := mux.Handler(&probe); pattern != "" && pattern != "/" && pattern != "/admin/" {
			allow = append(allow, m)
		}
	}
	return strings.Join(allow, ", ")
}
