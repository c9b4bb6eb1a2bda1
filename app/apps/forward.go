package apps

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

// Forward authentication: an app that stays behind a team's own proxy
// (nginx auth_request, Caddy forward_auth, Traefik ForwardAuth,
// ingress-nginx auth-url) asks Gatehouse before each request. The answer
// is the same decision as for the built-in proxy, from the same caches:
//
//   - 200 with the identity headers the built-in proxy sets, for the proxy
//     to copy onto the request it forwards;
//   - 401 with Location (and X-Auth-Redirect) the sign-in URL on the main
//     origin, for the proxy's error page to redirect to (302 for a
//     navigation when the proxy asks with ?redirect=1: Caddy and Traefik
//     hand the answer to the browser as it is);
//   - 403 with the denial page.
//
// Where the proxy serves an app is recorded on the app (ExternalURL): a
// host of its own, or a path under a host. The proxy routes /.gatehouse/
// on that host to Gatehouse, which serves there the sign-in handshake's
// other half (start, callback) and the denial page, and sets a host-only
// cookie, named for the app so that apps sharing a host keep theirs apart.

// mount is an app's external URL taken apart: "https", "tools.example",
// "/grafana/".
type mount struct{ scheme, host, prefix string }

// mountOf returns where a team's proxy serves d (ok false: nowhere).
// ExternalURL is stored clean (db.CleanApp): scheme://host/prefix/.
func mountOf(d *dashboards.Dashboard) (mount, bool) {
	if d == nil || d.App == nil || d.App.ExternalURL == "" {
		return mount{}, false
	}
	scheme, rest, ok := strings.Cut(d.App.ExternalURL, "://")
	if !ok {
		return mount{}, false
	}
	host, path, _ := strings.Cut(rest, "/")
	return mount{scheme: scheme, host: host, prefix: "/" + path}, true
}

// origin is the mount's origin, e.g. https://tools.example.
func (m mount) origin() string { return m.scheme + "://" + m.host }

// audience is the aud of the assertion an app behind a team's proxy gets:
// its external URL without the final "/" (an origin for an app with a
// host of its own).
func (m mount) audience() string { return m.origin() + strings.TrimSuffix(m.prefix, "/") }

// holds reports whether path is under the mount's prefix ("/grafana" and
// "/grafana/…" for "/grafana/").
func (m mount) holds(path string) bool {
	return strings.HasPrefix(path, m.prefix) || path == strings.TrimSuffix(m.prefix, "/")
}

// normHost lower-cases a Host header and drops the port its scheme
// implies, so "Grafana.example:443" is "grafana.example" for https.
func normHost(host, scheme string) string {
	host = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(host)), ".")
	if scheme == "https" {
		host = strings.TrimSuffix(host, ":443")
	} else if scheme == "http" {
		host = strings.TrimSuffix(host, ":80")
	}
	return host
}

// original is the request a proxy asks about: its scheme, host and
// request URI, from the headers the proxies send. conflict says two of
// those headers disagree on the host or the URI: each proxy sets some of
// them and passes the browser's others along (Caddy and Traefik set
// X-Forwarded-Uri and leave a browser's X-Original-URL; ingress-nginx the
// other way round), so one of the two is the browser's, and no app is
// picked by them (appFor).
type original struct {
	scheme, host, uri string
	conflict          bool
}

// originalOf reads the request the proxy asks about: X-Original-URL
// (nginx configurations, ingress-nginx; absolute or a path), else
// X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Uri (Caddy,
// Traefik); the host falls back to the Host header (a proxy that asks at
// /.gatehouse/auth on the app's own host).
func (h *Handler) originalOf(r *http.Request) original {
	var o original
	if raw := r.Header.Get("X-Original-URL"); raw != "" {
		if u, err := url.Parse(raw); err == nil {
			if u.IsAbs() {
				o.scheme, o.host = u.Scheme, u.Host
			}
			o.uri = u.RequestURI()
		}
	}
	if v := firstValue(r.Header.Get("X-Forwarded-Proto")); v == "http" || v == "https" {
		o.scheme = v
	}
	if v := firstValue(r.Header.Get("X-Forwarded-Host")); v != "" {
		if o.host != "" && normHost(o.host, o.scheme) != normHost(v, o.scheme) {
			o.conflict = true
		}
		o.host = v
	}
	if v := r.Header.Get("X-Forwarded-Uri"); v != "" {
		if o.uri != "" && !sameURI(o.uri, v) {
			o.conflict = true
		}
		if o.uri == "" {
			o.uri = v
		}
	}
	if o.host == "" {
		o.host = r.Host
	}
	if o.scheme == "" {
		o.scheme = h.base.Scheme
	}
	if !strings.HasPrefix(o.uri, "/") {
		o.uri = "/"
	}
	o.host = normHost(o.host, o.scheme)
	return o
}

// sameURI reports whether request URIs a and b name the same path and
// query, one escaped as X-Original-URL's parse gives it, the other as a
// proxy sent it.
func sameURI(a, b string) bool {
	if a == b {
		return true
	}
	ua, err1 := url.ParseRequestURI(a)
	ub, err2 := url.ParseRequestURI(b)
	return err1 == nil && err2 == nil && ua.Path == ub.Path && ua.RawQuery == ub.RawQuery
}

// firstValue is the first of a comma-separated header's values.
func firstValue(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.ToLower(strings.TrimSpace(v))
}

// path is the original request's path (its URI without the query).
func (o original) path() string {
	p, _, _ := strings.Cut(o.uri, "?")
	return p
}

// appFor picks the app a request on a team's proxy is for: the one named
// by ?app=SLUG, else the one whose origin the host is (SLUG.<apps-domain>,
// or an external URL's host), else the one under whose external URL's path
// the request is (the longest). nil for none.
func (h *Handler) appFor(r *http.Request, o original) *dashboards.Dashboard {
	if slug := r.URL.Query().Get("app"); slug != "" {
		if d := h.cfg.Registry.Get(slug); d != nil && d.App != nil {
			return d
		}
		return nil
	}
	if o.conflict {
		return nil
	}
	if slug, ok := h.AppSlug(o.host); ok {
		if d := h.cfg.Registry.Get(slug); d != nil && d.App != nil {
			return d
		}
	}
	var best *dashboards.Dashboard
	bestLen := -1
	path := o.path()
	for _, d := range h.cfg.Registry.All() {
		m, ok := mountOf(d)
		if !ok || normHost(m.host, m.scheme) != normHost(o.host, m.scheme) || !m.holds(path) {
			continue
		}
		if len(m.prefix) > bestLen {
			best, bestLen = d, len(m.prefix)
		}
	}
	return best
}

// servesHost reports whether some app's external URL is at host: its
// /.gatehouse/ paths are then Gatehouse's (see Wrap).
func (h *Handler) servesHost(host string) bool {
	for _, d := range h.cfg.Registry.All() {
		if m, ok := mountOf(d); ok && normHost(m.host, m.scheme) == normHost(host, m.scheme) {
			return true
		}
	}
	return false
}

// Forward serves GET /auth/forward on the main origin and /.gatehouse/auth
// on an app's hosts: the decision for the request a proxy asks about. It
// reads no body and pays no heed to Upgrade or Connection (a proxy asking
// about a WebSocket copies them): the question is always a plain one.
func (h *Handler) Forward(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.ContentLength != 0 {
		// A body was sent along (a proxy forwarding it): net/http would
		// read it before answering to keep the connection; answer now and
		// close it instead.
		w.Header().Set("Connection", "close")
	}
	o := h.originalOf(r)
	d := h.appFor(r, o)
	if d == nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("Gatehouse has no app for this request: name it with ?app=SLUG, or set the app's external URL (gatehouse apps set SLUG --external-url URL).\n"))
		return
	}
	ctx, err := h.cfg.Store.Snapshot(r.Context())
	if err != nil {
		h.serverError(w, r, d, err)
		return
	}
	v, ok, err := h.forwardViewer(r.WithContext(ctx), d)
	if err != nil {
		h.serverError(w, r, d, err)
		return
	}
	if !ok {
		target := h.signInURL(d, o)
		w.Header().Set("Location", target)
		w.Header().Set("X-Auth-Redirect", target)
		if r.URL.Query().Get("redirect") == "1" && isNavigation(r) {
			w.WriteHeader(http.StatusFound)
			return
		}
		w.Header().Set("WWW-Authenticate", `Gatehouse realm="`+d.Slug+`"`)
		h.problem(w, http.StatusUnauthorized, d.Title, "Sign in required", "Sign in to Gatehouse to open "+d.Title+".", target, "Sign in")
		return
	}
	dec, err := dashboards.Check(ctx, h.cfg.Store, dashboards.ViewerOf(v.User), d, nil)
	if err != nil {
		h.serverError(w, r, d, err)
		return
	}
	if !dec.Allowed {
		actor := db.Actor{ID: v.User.ID, Email: v.User.Email, IP: h.forwardedIP(r)}
		if err := h.cfg.Store.AuditDenial(ctx, actor, d.Slug, dec.Code, dec.Reason, time.Minute); err != nil {
			h.serverError(w, r, d, err)
			return
		}
		h.denied(w, d, dec.Reason)
		return
	}
	if crossOrigin(r, o) {
		// As on the built-in proxy: hosts of one site get each other's
		// Lax cookies, and many upstreams accept a socket or a form from
		// any page.
		h.problem(w, http.StatusForbidden, d.Title, "Request refused",
			"This request was sent by another site than "+d.Title+", so Gatehouse did not let it through.", "", "")
		return
	}
	id, err := h.identity(ctx, v.User, d.Slug, h.audience(d))
	if err != nil {
		h.serverError(w, r, d, err)
		return
	}
	setIdentity(w.Header(), d, v.User, id)
	w.WriteHeader(http.StatusOK)
}

// crossOrigin reports whether the request a proxy asks about (o) was sent
// by a page of another origin: a WebSocket whose Origin is not o's, or a
// state-changing request (its method in X-Forwarded-Method, or
// ingress-nginx's X-Original-Method) whose Sec-Fetch-Site, or else Origin,
// says so. The proxies pass the browser's own Origin and Sec-Fetch-*
// headers along with the question. A request without them (no browser's)
// is not cross-origin.
func crossOrigin(r *http.Request, o original) bool {
	origin := r.Header.Get("Origin")
	other := func() bool {
		u, err := url.Parse(origin)
		if err != nil {
			return true
		}
		scheme := strings.ToLower(u.Scheme)
		return scheme != o.scheme || normHost(u.Host, scheme) != o.host
	}
	if r.Header.Get("Sec-Websocket-Key") != "" || r.Header.Get("Upgrade") != "" {
		return origin != "" && other()
	}
	method := r.Header.Get("X-Forwarded-Method")
	if method == "" {
		method = r.Header.Get("X-Original-Method")
	}
	switch strings.ToUpper(method) {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return false
	case "":
		return origin != "" && other()
	default:
		return true
	}
}

// forwardViewer returns the viewer whose app cookie for d the request
// carries: the one the handshake set on the app's own host (the proxy
// passes the browser's Cookie header on), under either name.
func (h *Handler) forwardViewer(r *http.Request, d *dashboards.Dashboard) (Viewer, bool, error) {
	names := []string{h.cookieName}
	if m, ok := mountOf(d); ok {
		names = append(names, externalCookie(d.Slug, m.scheme == "https"))
	}
	for _, c := range r.Cookies() {
		if !contains(names, c.Name) {
			continue
		}
		if session, ok := h.open(d.Slug, c.Value); ok {
			v, ok, err := h.cfg.Gate.Viewer(r.Context(), session)
			if err != nil || ok {
				return v, ok, err
			}
		}
	}
	return Viewer{}, false, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// forwardedIP is the browser's address as the asking proxy reports it
// (X-Forwarded-For's first entry, or X-Real-IP), for the audit log; the
// proxy's own address when it reports none.
func (h *Handler) forwardedIP(r *http.Request) string {
	if v := firstValue(r.Header.Get("X-Forwarded-For")); v != "" {
		return v
	}
	if v := strings.TrimSpace(r.Header.Get("X-Real-IP")); v != "" {
		return v
	}
	return h.cfg.ClientIP(r)
}

// isNavigation reports whether the request a proxy asks about is a
// browser navigating (it can follow a redirect to a sign-in page): GET or
// HEAD, not a script's. The proxies send the original method in
// X-Forwarded-Method.
func isNavigation(r *http.Request) bool {
	m := r.Header.Get("X-Forwarded-Method")
	if m == "" {
		m = r.Method
	}
	return (m == http.MethodGet || m == http.MethodHead) && !isScript(r)
}

// audience is the aud of d's assertion: its external URL when a team's
// proxy serves it, else its origin at SLUG.<apps-domain>.
func (h *Handler) audience(d *dashboards.Dashboard) string {
	if m, ok := mountOf(d); ok {
		return m.audience()
	}
	return h.Origin(d.Slug)
}

// signInURL is the main origin's sign-in for d, to come back to the
// request o afterwards (or to the app's own start when o is elsewhere).
func (h *Handler) signInURL(d *dashboards.Dashboard, o original) string {
	next := o.scheme + "://" + o.host + o.uri
	origin, path := h.returnTo(d, next)
	return h.base.String() + "/apps/" + d.Slug + "/signin?" + url.Values{"next": {origin + path}}.Encode()
}

// returnTo splits where a sign-in for d should come back to into an origin
// of d's and a local path there. next is a local path (the app's origin
// at SLUG.<apps-domain>) or an absolute URL: on d's external origin or its
// built-in one it is kept; anywhere else gives d's own start page.
func (h *Handler) returnTo(d *dashboards.Dashboard, next string) (origin, path string) {
	builtin := h.Origin(d.Slug)
	m, external := mountOf(d)
	if strings.HasPrefix(next, "/") {
		return builtin, LocalPath(next)
	}
	u, err := url.Parse(next)
	if err == nil && u.IsAbs() && u.User == nil {
		got := strings.ToLower(u.Scheme) + "://" + normHost(u.Host, strings.ToLower(u.Scheme))
		if external && got == m.scheme+"://"+normHost(m.host, m.scheme) {
			return m.origin(), LocalPath(u.RequestURI())
		}
		if got == builtin {
			return builtin, LocalPath(u.RequestURI())
		}
	}
	if external {
		return m.origin(), m.prefix
	}
	return builtin, "/"
}

// externalCookie is the name of d's cookie on a host a team's proxy
// serves it at: one per app, since apps mounted at paths share a host.
func externalCookie(slug string, secure bool) string {
	if secure {
		return "__Host-gatehouse_app_" + slug // host-only, Secure, Path=/ enforced by the browser
	}
	return "gatehouse_app_" + slug
}

// cookiesAt returns the names of the app cookie and the sign-in state
// cookie for d on host, and whether they are Secure: the built-in ones at
// SLUG.<apps-domain>, the per-app ones on a host of a team's proxy.
func (h *Handler) cookiesAt(d *dashboards.Dashboard, host string) (app, state string, secure bool) {
	if slug, ok := h.AppSlug(host); ok && slug == d.Slug {
		return h.cookieName, h.stateCookie, h.base.Scheme == "https"
	}
	secure = h.base.Scheme == "https"
	if m, ok := mountOf(d); ok {
		secure = m.scheme == "https"
	}
	state = "gatehouse_app_state"
	if secure {
		state = "__Host-gatehouse_app_state" // no other host can set it (see New)
	}
	return externalCookie(d.Slug, secure), state, secure
}

// serveExternal serves /.gatehouse/ on a host a team's proxy serves apps
// at (see Wrap): the same paths as on an app's own origin. Nothing else
// of such a host is Gatehouse's.
func (h *Handler) serveExternal(w http.ResponseWriter, r *http.Request) {
	d := h.appFor(r, h.originalOf(r))
	if d == nil || !h.mountedAt(d, r.Host) {
		h.problem(w, http.StatusNotFound, "Gatehouse", "No such app", "There is no app at this address.", h.base.String()+"/", "Go to Gatehouse")
		return
	}
	h.serveOwn(w, r, d)
}

// mountedAt reports whether d's external URL is at host, or host is d's
// origin at SLUG.<apps-domain>.
func (h *Handler) mountedAt(d *dashboards.Dashboard, host string) bool {
	if slug, ok := h.AppSlug(host); ok {
		return slug == d.Slug
	}
	m, ok := mountOf(d)
	return ok && normHost(m.host, m.scheme) == normHost(host, m.scheme)
}

// serveOwn serves Gatehouse's own paths on one of d's hosts: they are
// never forwarded.
func (h *Handler) serveOwn(w http.ResponseWriter, r *http.Request, d *dashboards.Dashboard) {
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case r.URL.Path == "/.gatehouse/auth":
		h.Forward(w, r)
	case r.URL.Path == "/.gatehouse/callback" && get:
		h.callback(w, r, d)
	case r.URL.Path == "/.gatehouse/start" && get:
		h.start(w, r, d)
	case r.URL.Path == "/.gatehouse/denied" && get:
		h.gatePage(w, r, d)
	default:
		h.problem(w, http.StatusNotFound, d.Title, "Not found", "This address belongs to Gatehouse and leads nowhere.", "/", "Open "+d.Title)
	}
}

// start serves /.gatehouse/start?next=URL: a sign-in that began at the
// main origin without this host's state (a proxy's 401 sends the browser
// there directly) comes here first for it, then goes back with it.
func (h *Handler) start(w http.ResponseWriter, r *http.Request, d *dashboards.Dashboard) {
	_, stateName, secure := h.cookiesAt(d, r.Host)
	state := ""
	if c, err := r.Cookie(stateName); err == nil && len(c.Value) == 22 {
		state = c.Value // a sign-in already under way: parallel tabs agree
	} else {
		state = db.RandomToken(16)
	}
	http.SetCookie(w, &http.Cookie{Name: stateName, Value: state, Path: "/", MaxAge: 600,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
	origin, path := h.returnTo(d, r.URL.Query().Get("next"))
	target := h.base.String() + "/apps/" + d.Slug + "/signin?" + url.Values{"next": {origin + path}, "state": {state}}.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// gatePage serves /.gatehouse/denied, where nginx's error_page sends a
// request forward authentication refused with 403 (nginx shows no body of
// the answer): the denial page with the way to request access. A viewer
// allowed by now goes back to the request; one signed out, to sign in.
func (h *Handler) gatePage(w http.ResponseWriter, r *http.Request, d *dashboards.Dashboard) {
	w.Header().Set("Cache-Control", "no-store")
	o := h.originalOf(r)
	if !h.mountedAt(d, o.host) || strings.HasPrefix(o.path(), "/.gatehouse/") {
		o = original{scheme: o.scheme, host: normHost(r.Host, o.scheme), uri: "/"}
	}
	ctx, err := h.cfg.Store.Snapshot(r.Context())
	if err != nil {
		h.serverError(w, r, d, err)
		return
	}
	v, ok, err := h.forwardViewer(r.WithContext(ctx), d)
	if err != nil {
		h.serverError(w, r, d, err)
		return
	}
	if !ok {
		http.Redirect(w, r, h.signInURL(d, o), http.StatusFound)
		return
	}
	dec, err := dashboards.Check(ctx, h.cfg.Store, dashboards.ViewerOf(v.User), d, nil)
	if err != nil {
		h.serverError(w, r, d, err)
		return
	}
	if dec.Allowed {
		_, path := h.returnTo(d, o.scheme+"://"+o.host+o.uri)
		http.Redirect(w, r, path, http.StatusFound)
		return
	}
	h.denied(w, d, dec.Reason) // audited when the proxy asked
}
