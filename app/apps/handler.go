package apps

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"gatehouse/app/conns"
	"gatehouse/app/dashboards"
	"gatehouse/components"
	"gatehouse/db"
)

// Viewer is who holds a session on the main origin.
type Viewer struct {
	User db.User
	// SessionHash names the server-side session (the stored hash of its
	// id): an app cookie is bound to it and connections are tracked by it.
	SessionHash string
	// Ends is when the session ends unless it is used again: open
	// connections are decided again then.
	Ends time.Time
}

// Gate is what the server lends the proxy.
type Gate interface {
	// Viewer returns the viewer of the main origin's session cookie value
	// sessionCookie; ok is false when it names no live, fully signed-in
	// session of an active user (then the viewer must sign in again).
	Viewer(ctx context.Context, sessionCookie string) (v Viewer, ok bool, err error)
}

// Config is what a Handler needs.
type Config struct {
	// Domain is the apps domain: app SLUG is served at SLUG.Domain.
	Domain string
	// BaseURL is Gatehouse's public URL (the main origin); app origins
	// take its scheme and port.
	BaseURL  string
	Store    *db.Store
	Registry *dashboards.Registry
	Gate     Gate
	Log      *slog.Logger
	// Cookies are the names of Gatehouse's own cookies: never forwarded.
	Cookies []string
	// ClientIP is the client's address as the server trusts it.
	ClientIP func(*http.Request) string
	// Timeout is how long an upstream may take to start answering before
	// the viewer gets a 504 (default 30s).
	Timeout time.Duration
	// Transport reaches the upstreams (default: one tuned for them).
	Transport http.RoundTripper
	// Budget, when set, bounds the WebSockets held open, with the event
	// streams, per session and app, session, user and server (app/conns):
	// past a user's or the server's share an upgrade is refused (429,
	// 503); a session's oldest socket to the same app closes for a new one.
	Budget *conns.Budget
}

// Handler serves every app origin. Build it with New; Wrap puts it in
// front of the main handler.
type Handler struct {
	cfg        Config
	base       *url.URL
	cookieName string
	// stateCookie holds the state of a sign-in this browser started on
	// an app origin (Path /, as a __Host- cookie must have; never
	// forwarded): the callback accepts a code only in the browser that
	// asked for it.
	stateCookie string
	// framedCookie and framedState are their twins for a sign-in inside
	// the app's dashboard page's frame, where the browser may keep only
	// partitioned cookies (see frame.go); partitioned says whether this
	// origin can set them at all (a secure context).
	framedCookie, framedState string
	partitioned               bool
	// ownCookies are every cookie name of Gatehouse's: never forwarded.
	ownCookies []string
	aead       cipher.AEAD
	// sameOrigin refuses state-changing requests another origin sent.
	sameOrigin *http.CrossOriginProtection
	proxy      *httputil.ReverseProxy
	keys       *signer
	idents     identityCache
	conns      *tracker
	stopOnce   sync.Once
	stop       chan struct{}
}

// cookieKeySetting is the settings row holding the key that seals app
// cookies (and the tickets sign-in codes redeem to).
const cookieKeySetting = "apps_cookie_key"

// New builds the handler: it reads (or makes) the key sealing app cookies
// and the assertion signing keys.
func New(ctx context.Context, cfg Config) (*Handler, error) {
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("apps need a base URL with a host, not %q", cfg.BaseURL)
	}
	if cfg.Domain == "" || strings.Trim(cfg.Domain, ".") != cfg.Domain {
		return nil, fmt.Errorf("apps domain %q is not a domain name", cfg.Domain)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = func(r *http.Request) string {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			return host
		}
	}
	key, err := cfg.Store.Secret(ctx, cookieKeySetting, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, base: base, aead: aead, cookieName: "gatehouse_app", stateCookie: "gatehouse_app_state", stop: make(chan struct{})}
	h.framedCookie, h.framedState = "gatehouse_app_framed", "gatehouse_app_framed_state"
	h.sameOrigin = http.NewCrossOriginProtection()
	if base.Scheme == "https" {
		h.cookieName = "__Host-gatehouse_app" // host-only, Secure, Path=/ enforced by the browser
		// The state cookies are __Host- too: app origins share a site, and
		// a sibling app's page may set a __Secure- cookie for the whole
		// apps domain, and so know (and pick) this browser's state.
		h.stateCookie = "__Host-gatehouse_app_state"
		h.framedCookie, h.framedState = "__Host-gatehouse_app_framed", "__Host-gatehouse_app_framed_state"
	}
	h.partitioned = secureContext(base.Scheme, cfg.Domain)
	h.ownCookies = append([]string{h.cookieName, h.stateCookie, h.framedCookie, h.framedState}, cfg.Cookies...)
	if h.keys, err = newSigner(ctx, cfg.Store, base.String()); err != nil {
		return nil, err
	}
	h.conns = newTracker(h)
	rt := cfg.Transport
	if rt == nil {
		rt = &http.Transport{
			Proxy:                 nil, // upstreams are reached directly, never through HTTP_PROXY
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     false,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: cfg.Timeout,
			ExpectContinueTimeout: time.Second,
		}
	}
	h.proxy = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		ModifyResponse: h.frameable,
		Transport:      rt,
		ErrorHandler:   h.upstreamError,
		BufferPool:     &proxyBuffers,
		ErrorLog:       slog.NewLogLogger(cfg.Log.Handler(), slog.LevelDebug),
	}
	return h, nil
}

// Close stops watching access for open connections and cuts them.
func (h *Handler) Close() {
	if h == nil {
		return
	}
	h.stopOnce.Do(func() { close(h.stop) })
	h.conns.cutAll()
}

// Wrap returns a handler that sends requests for an app's host (by the
// Host header) to app, which is h itself or h inside the server's request
// logging, and every other request to main. A nil Handler (apps off)
// returns main.
func (h *Handler) Wrap(main, app http.Handler) http.Handler {
	if h == nil {
		return main
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.owns(r.Host) || (strings.HasPrefix(r.URL.Path, "/.gatehouse/") && h.servesHost(r.Host)) {
			app.ServeHTTP(w, r)
			return
		}
		main.ServeHTTP(w, r)
	})
}

// owns reports whether host is under the apps domain (and not Gatehouse's
// own host): an app's, or no one's (then 404), never the main routes'.
func (h *Handler) owns(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if hp, _, err := net.SplitHostPort(host); err == nil {
		host = strings.TrimSuffix(hp, ".")
	}
	return host != strings.ToLower(h.base.Hostname()) && strings.HasSuffix(host, "."+h.cfg.Domain)
}

// ServeHTTP serves a request for a host under the apps domain (see Wrap):
// an app's, or Gatehouse's 404 page; or /.gatehouse/ on a host a team's
// proxy serves an app at (forward.go).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	slug, ok := h.AppSlug(r.Host)
	if !ok && !h.owns(r.Host) {
		h.serveExternal(w, r)
		return
	}
	h.serveApp(w, r, slug) // "" is no app
}

// AppSlug returns the app slug a Host header names (SLUG.<domain>, any
// port), and false for any other host, Gatehouse's own included.
func (h *Handler) AppSlug(host string) (string, bool) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if hp, _, err := net.SplitHostPort(host); err == nil {
		host = strings.TrimSuffix(hp, ".")
	}
	if host == strings.ToLower(h.base.Hostname()) {
		return "", false
	}
	slug, ok := strings.CutSuffix(host, "."+h.cfg.Domain)
	if !ok || slug == "" || strings.Contains(slug, ".") {
		return "", false
	}
	return slug, true
}

// Origin returns the origin app slug is served at.
func (h *Handler) Origin(slug string) string { return Origin(h.base.String(), h.cfg.Domain, slug) }

// IssueCode is the main origin's half of the sign-in handshake, called
// once the viewer holding the session cookie sessionCookie (whose id
// hashes to sessionHash) has been allowed app slug: it stores a one-time
// code bound to both and returns the app origin's callback URL carrying it
// and next. next is a local path on the app's origin, or an absolute URL
// on it or on the host a team's proxy serves the app at (forward.go);
// the callback is on that origin.
//
// state is the app origin's sign-in state, passed through as it came.
// Without one (a proxy's 401 sent the browser straight here) no code is
// issued: the URL returned is the app host's start, which makes a state
// and comes back.
func (h *Handler) IssueCode(ctx context.Context, slug, sessionCookie, sessionHash, next, state string) (string, error) {
	d := h.cfg.Registry.Get(slug)
	if d == nil || d.App == nil {
		return "", fmt.Errorf("no app %q", slug)
	}
	origin, path := h.returnTo(d, next)
	if state == "" {
		return origin + "/.gatehouse/start?" + url.Values{"app": {slug}, "next": {origin + path}}.Encode(), nil
	}
	code, err := h.cfg.Store.IssueAppCode(ctx, slug, sessionHash, h.seal(slug, sessionCookie))
	if err != nil {
		return "", err
	}
	q := url.Values{"code": {code}, "next": {path}, "state": {state}}
	if origin != h.Origin(slug) {
		q.Set("app", slug) // a host a team's proxy serves may hold several apps
	}
	return origin + "/.gatehouse/callback?" + q.Encode(), nil
}

// LocalPath returns next when it is a path on the same origin ("/…", not
// "//…"), else "/". A backslash anywhere, or a control character, gives
// "/" too: browsers read "\" as "/", and http.Redirect cleans the path it
// is given, so "/./\evil.example" would leave as "/\evil.example", which
// is //evil.example. (Paths Gatehouse builds itself, from a request's
// escaped URI, never hold a raw backslash.)
func LocalPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsRune(next, '\\') ||
		strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "/"
	}
	return next
}

// seal makes an app cookie for app slug carrying the main session's cookie
// value: sealed (AES-GCM) so it is of use on that app's origin only and
// reveals nothing of the session cookie.
func (h *Handler) seal(slug, sessionCookie string) string {
	nonce := make([]byte, h.aead.NonceSize(), h.aead.NonceSize()+len(sessionCookie)+h.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	out := h.aead.Seal(nonce, nonce, []byte(sessionCookie), []byte("gatehouse-app:"+slug))
	return base64.RawURLEncoding.EncodeToString(out)
}

// open returns the session cookie value an app cookie of app slug carries.
func (h *Handler) open(slug, value string) (string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < h.aead.NonceSize()+h.aead.Overhead() {
		return "", false
	}
	n := h.aead.NonceSize()
	plain, err := h.aead.Open(nil, raw[:n], raw[n:], []byte("gatehouse-app:"+slug))
	if err != nil {
		return "", false
	}
	return string(plain), true
}

// forward is what a request allowed through carries to rewrite.
type forward struct {
	app      *dashboards.Dashboard
	upstream *url.URL
	viewer   Viewer
	id       identity
	clientIP string
}

type forwardKey struct{}

// serveApp serves one request on app slug's origin.
func (h *Handler) serveApp(w http.ResponseWriter, r *http.Request, slug string) {
	d := h.cfg.Registry.Get(slug)
	if d == nil || d.App == nil {
		h.problem(w, http.StatusNotFound, slug, "No such app", "There is no app at this address.", h.base.String()+"/", "Go to Gatehouse")
		return
	}
	// Gatehouse's own paths on every app origin: never forwarded.
	if r.URL.Path == "/.gatehouse" || strings.HasPrefix(r.URL.Path, "/.gatehouse/") {
		h.serveOwn(w, r, d) // the callback, forward authentication (forward.go)
		return
	}
	// Taken before deciding: a change after it makes the tracker decide
	// this connection again.
	decided := h.cfg.Store.AccessFeed().Changed()
	ctx, err := h.cfg.Store.Snapshot(r.Context())
	if err != nil {
		h.serverError(w, r, d, err)
		return
	}
	// The app cookie set at the top level, or the one set in the frame
	// (frame.go): the first that names a live session.
	var v Viewer
	var sessionCookie string
	ok := false
	for _, c := range h.appCookies(r, d.Slug) {
		if v, ok, err = h.cfg.Gate.Viewer(ctx, c); err != nil {
			h.serverError(w, r, d, err)
			return
		} else if ok {
			sessionCookie = c
			break
		}
	}
	if !ok {
		h.signIn(w, r, d)
		return
	}
	dec, err := dashboards.Check(ctx, h.cfg.Store, dashboards.ViewerOf(v.User), d, nil)
	if err != nil {
		h.serverError(w, r, d, err)
		return
	}
	if !dec.Allowed {
		actor := db.Actor{ID: v.User.ID, Email: v.User.Email, IP: h.cfg.ClientIP(r)}
		if err := h.cfg.Store.AuditDenial(ctx, actor, d.Slug, dec.Code, dec.Reason, time.Minute); err != nil {
			h.serverError(w, r, d, err)
			return
		}
		h.denied(w, d, dec.Reason)
		return
	}
	if err := h.sameOrigin.Check(r); err != nil {
		// App origins share a site: a sibling app's page can post a form
		// here and the browser sends this app's Lax cookie with it. The
		// upstream would take it for the viewer's own action.
		h.problem(w, http.StatusForbidden, d.Title, "Request refused",
			"This request was sent by another site than "+d.Title+", so Gatehouse did not pass it on.", "", "")
		return
	}
	if isUpgrade(r) && !sameOrigin(r.Header.Get("Origin"), h.Origin(d.Slug)) {
		// Many upstreams accept a WebSocket from any Origin: another site
		// could otherwise open one with the viewer's cookie.
		h.problem(w, http.StatusForbidden, d.Title, "Connection refused",
			"This connection was opened by another site than "+d.Title+".", "", "")
		return
	}
	upstream, err := url.Parse(d.App.Upstream)
	if err != nil {
		h.serverError(w, r, d, err)
		return
	}
	id, err := h.identity(ctx, v.User, d.Slug, h.Origin(d.Slug))
	if err != nil {
		h.serverError(w, r, d, err)
		return
	}
	// Proxied responses may stream and upgraded connections may live for
	// hours: the server's read and write timeouts are for its own pages.
	// Ending them is the tracker's job (access ends) and the client's.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	var held *conns.Conn
	if isUpgrade(r) && h.cfg.Budget != nil {
		held, err = h.cfg.Budget.Acquire(conns.Claim{Session: v.SessionHash, User: v.User.ID, Key: "app:" + d.Slug})
		switch {
		case errors.Is(err, conns.ErrUserFull):
			w.Header().Set("Retry-After", "30")
			h.problem(w, http.StatusTooManyRequests, d.Title, "Too many connections",
				"You have too many live connections open to Gatehouse. Close some tabs, then try again.", "", "")
			return
		case err != nil:
			w.Header().Set("Retry-After", "30")
			h.problem(w, http.StatusServiceUnavailable, d.Title, "Too busy",
				"Gatehouse holds as many live connections as it may. Try again in a moment.", "", "")
			return
		}
		defer held.Release()
	}
	cctx, tc, release := h.conns.add(r.Context(), connKey{session: v.SessionHash, app: d.Slug}, sessionCookie, v.Ends, decided)
	defer release()
	if held != nil {
		// A newer socket of the session took this one's place.
		go func() {
			select {
			case <-held.Closed():
				tc.cancel(errReplaced)
			case <-cctx.Done():
			}
		}()
	}
	if isUpgrade(r) {
		w = &hijackWriter{ResponseWriter: w, onHijack: func(fc *frameConn) {
			tc.ws.Store(fc)
			if errors.Is(context.Cause(cctx), errAccessEnded) {
				fc.revoke() // cut while upgrading
			}
		}}
	}
	f := &forward{app: d, upstream: upstream, viewer: v, id: id, clientIP: h.cfg.ClientIP(r)}
	h.proxy.ServeHTTP(w, r.WithContext(context.WithValue(cctx, forwardKey{}, f)))
}

// appCookies returns the session cookie values r's app cookies carry for
// app slug: the one set at the top level and the one set inside the
// dashboard page's frame (frame.go), usually just one of them.
func (h *Handler) appCookies(r *http.Request, slug string) []string {
	var out []string
	for _, name := range [2]string{h.cookieName, h.framedCookie} {
		for _, c := range r.CookiesNamed(name) {
			if v, ok := h.open(slug, c.Value); ok && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

// signIn answers a request without a live app cookie: navigation goes to
// the main origin's sign-in for the app (302); a script's request, an
// upgrade or a form post gets 401 (it cannot follow a redirect to a login
// page), with the sign-in URL in Location for the page to use.
//
// It sets the state cookie the callback will check (a browser cannot be
// signed in to someone else's session with a code it did not ask for).
// A sign-in already under way keeps its state, so parallel tabs agree.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, d *dashboards.Dashboard) {
	framed := h.inFrame(r)
	state := ""
	if c, err := r.Cookie(h.stateCookieName(framed)); err == nil && len(c.Value) == 22 {
		state = c.Value
	} else {
		state = db.RandomToken(16)
	}
	http.SetCookie(w, h.stateCookieFor(framed, state))
	target := h.base.String() + "/apps/" + d.Slug + "/signin?" + url.Values{"next": {LocalPath(r.URL.RequestURI())}, "state": {state}}.Encode()
	w.Header().Set("Cache-Control", "no-store")
	if isScript(r) || isUpgrade(r) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		w.Header().Set("Location", target)
		w.Header().Set("WWW-Authenticate", `Gatehouse realm="`+d.Slug+`"`)
		h.problem(w, http.StatusUnauthorized, d.Title, "Sign in required", "Sign in to Gatehouse to open "+d.Title+".", target, "Sign in")
		return
	}
	http.Redirect(w, r, target, http.StatusFound)
}

// callback serves /.gatehouse/callback: the app origin's half of the
// handshake. A good code becomes the app cookie; the viewer goes on to next.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request, d *dashboards.Dashboard) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer") // the code stays out of the upstream's logs
	q := r.URL.Query()
	next := LocalPath(q.Get("next"))
	// On the app's own origin the sign-in may run inside Gatehouse's
	// frame (partitioned twins of the cookies); on a host a team's proxy
	// serves (forward auth) the cookies are named per app.
	appCookie, stateCookie, secure := h.cookiesAt(d, r.Host)
	ownOrigin := appCookie == h.cookieName
	if ownOrigin && !h.stateMatches(r, q.Get("state")) || !ownOrigin && !cookieMatches(r, stateCookie, q.Get("state")) {
		h.problem(w, http.StatusBadRequest, d.Title, "Sign-in not started here",
			"This sign-in link was not asked for by this browser. Open the app again to sign in.", next, "Open "+d.Title)
		return
	}
	row, err := h.cfg.Store.RedeemAppCode(r.Context(), d.Slug, q.Get("code"))
	if errors.Is(err, db.ErrNotFound) {
		h.problem(w, http.StatusBadRequest, d.Title, "Sign-in link used up",
			"This sign-in link has been used already or has expired. Open the app again to get a new one.", next, "Open "+d.Title)
		return
	} else if err != nil {
		h.serverError(w, r, d, err)
		return
	}
	sessionCookie, ok := h.open(d.Slug, row.Ticket)
	var v Viewer
	if ok {
		if v, ok, err = h.cfg.Gate.Viewer(r.Context(), sessionCookie); err != nil {
			h.serverError(w, r, d, err)
			return
		}
	}
	if !ok || v.SessionHash != row.SessionHash {
		h.problem(w, http.StatusBadRequest, d.Title, "Sign-in link used up",
			"Your session ended before this sign-in link was used. Open the app again.", next, "Open "+d.Title)
		return
	}
	if ownOrigin {
		h.setAppCookies(w, r, row.Ticket)
	} else {
		http.SetCookie(w, &http.Cookie{Name: appCookie, Value: row.Ticket, Path: "/", HttpOnly: true,
			Secure: secure, SameSite: http.SameSiteLaxMode})
		http.SetCookie(w, &http.Cookie{Name: stateCookie, Path: "/", MaxAge: -1, HttpOnly: true,
			Secure: secure, SameSite: http.SameSiteLaxMode})
	}
	actor := db.Actor{ID: v.User.ID, Email: v.User.Email, IP: h.cfg.ClientIP(r)}
	if err := h.cfg.Store.Audit(r.Context(), actor, db.Event{Action: db.ActionAppOpen, Target: d.Slug}); err != nil {
		h.cfg.Log.WarnContext(r.Context(), "auditing an app sign-in failed", "app", d.Slug, "err", err)
	}
	http.Redirect(w, r, next, http.StatusFound)
}

// groups returns the names of the groups the user is an unexpired member of.
func (h *Handler) groups(ctx context.Context, userID int64) ([]string, error) {
	gs, err := h.cfg.Store.GroupsOfUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	now := h.cfg.Store.Now().UnixMilli()
	names := make([]string, 0, len(gs))
	for _, g := range gs {
		if g.ExpiresAt == 0 || g.ExpiresAt > now {
			names = append(names, g.Name)
		}
	}
	return names, nil
}

// identityHeaders are set by Gatehouse alone: whatever a client sends under
// these names is dropped before the request is forwarded.
var identityHeaders = []string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups",
	"X-Forwarded-Preferred-Username", "X-Gatehouse-Assertion", "Remote-User"}

// dropIdentity removes every client-sent header that an upstream could
// take for one of Gatehouse's identity headers or the app's userHeader:
// spelled in any case, and with underscores for dashes too (CGI and WSGI
// servers, Flask's among them, read X_Forwarded_User as X-Forwarded-User).
func dropIdentity(h http.Header, userHeader string) {
	for name := range h {
		norm := http.CanonicalHeaderKey(strings.ReplaceAll(name, "_", "-"))
		if slices.Contains(identityHeaders, norm) || (userHeader != "" && norm == http.CanonicalHeaderKey(userHeader)) {
			delete(h, name)
		}
	}
}

// rewrite makes the request the upstream gets. ReverseProxy has already
// removed hop-by-hop headers and any client-sent X-Forwarded-For/Host/Proto.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	f := pr.In.Context().Value(forwardKey{}).(*forward)
	pr.SetURL(f.upstream)
	pr.Out.Host = pr.In.Host // the upstream sees the app's own host
	out := pr.Out.Header
	// Assigned under canonical keys, values shared where they are the
	// same (nothing downstream changes a header's values in place): Set
	// canonicalized each key and allocated each value's slice anew.
	out["X-Forwarded-For"] = []string{f.clientIP}
	out["X-Forwarded-Host"] = []string{pr.In.Host}
	out["X-Forwarded-Proto"] = []string{h.base.Scheme}
	dropIdentity(out, f.app.App.UserHeader)
	stripCookies(out, h.ownCookies)
	setIdentity(out, f.app, f.viewer.User, f.id)
}

// setIdentity sets u's identity headers for app d: on the request the
// built-in proxy forwards, and on forward authentication's answer for a
// team's proxy to copy. Assigned under canonical keys, values shared where
// they are the same (nothing downstream changes a header's values in
// place): Set canonicalized each key and allocated each value's slice.
func setIdentity(out http.Header, d *dashboards.Dashboard, u db.User, id identity) {
	email := []string{u.Email}
	preferred := email
	if u.Name != "" {
		preferred = []string{u.Name}
	}
	out["X-Forwarded-User"] = email
	out["X-Forwarded-Email"] = email
	out["X-Forwarded-Preferred-Username"] = preferred
	out["X-Forwarded-Groups"] = id.groupsHeader
	out["Remote-User"] = email
	if d.App.UserHeader != "" {
		out[http.CanonicalHeaderKey(d.App.UserHeader)] = email
	}
	out["X-Gatehouse-Assertion"] = id.assertionHeader
}

// stripCookies removes Gatehouse's cookies (names in own) from the Cookie
// header(s), keeping the upstream's own.
func stripCookies(hd http.Header, own []string) {
	lines := hd.Values("Cookie")
	if len(lines) == 0 {
		return
	}
	drop := func(name string) bool { return slices.Contains(own, name) }
	var kept []string
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ";") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			name, _, _ := strings.Cut(part, "=")
			if !drop(strings.TrimSpace(name)) {
				kept = append(kept, part)
			}
		}
	}
	hd.Del("Cookie")
	if len(kept) > 0 {
		hd.Set("Cookie", strings.Join(kept, "; "))
	}
}

// upstreamError answers when the upstream could not be reached (502) or
// did not answer in time (504), or when the viewer's access ended while
// the request waited (403).
func (h *Handler) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	f := r.Context().Value(forwardKey{}).(*forward)
	d := f.app
	if cause := context.Cause(r.Context()); errors.Is(cause, errAccessEnded) {
		h.denied(w, d, "your access to this app has ended")
		return
	}
	if r.Context().Err() != nil {
		return // the client went away: nobody to answer
	}
	var ne net.Error
	var op *net.OpError
	if errors.As(err, &ne) && ne.Timeout() && !(errors.As(err, &op) && op.Op == "dial") {
		h.cfg.Log.WarnContext(r.Context(), "app upstream too slow", "app", d.Slug, "err", err)
		h.problem(w, http.StatusGatewayTimeout, d.Title, d.Title+" is not answering",
			d.Title+" did not answer in time. Try again in a moment; if it keeps happening, tell the people who run it.", r.URL.RequestURI(), "Try again")
		return
	}
	h.cfg.Log.WarnContext(r.Context(), "app upstream unreachable", "app", d.Slug, "err", err)
	h.problem(w, http.StatusBadGateway, d.Title, d.Title+" is down",
		"Gatehouse could not reach "+d.Title+". Try again in a moment; if it keeps happening, tell the people who run it.", r.URL.RequestURI(), "Try again")
}

// denied answers 403 with the denial and the way to request access.
func (h *Handler) denied(w http.ResponseWriter, d *dashboards.Dashboard, reason string) {
	h.problem(w, http.StatusForbidden, d.Title, "You cannot view this dashboard",
		"You cannot view this dashboard: "+reason+".", h.base.String()+"/dashboards/"+d.Slug, "Request access to "+d.Title)
}

func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, d *dashboards.Dashboard, err error) {
	h.cfg.Log.ErrorContext(r.Context(), "app request failed", "app", d.Slug, "err", err)
	h.problem(w, http.StatusInternalServerError, d.Title, "Something went wrong",
		"Gatehouse could not check your access just now. Try again shortly.", "", "")
}

// problem writes one of Gatehouse's own pages on an app origin.
func (h *Handler) problem(w http.ResponseWriter, status int, appTitle, heading, message, link, linkText string) {
	var buf bytes.Buffer
	page := components.AppProblem{Base: h.base.String(), AppTitle: appTitle, Heading: heading, Message: message, LinkURL: link, LinkText: linkText}
	if err := components.AppProblemPage(page).Render(context.Background(), &buf); err != nil {
		http.Error(w, heading, status)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	// Framed by the app's dashboard page (the main origin) only.
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src "+h.base.Scheme+"://"+h.base.Host+"; img-src "+h.base.Scheme+"://"+h.base.Host+"; frame-ancestors "+h.base.Scheme+"://"+h.base.Host)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// sameOrigin reports whether the Origin header value origin names the
// origin want (scheme://host[:port]): compared as origins, so a default
// port written out or not, and the case of the scheme and host, do not
// matter. "null", "" and anything else unparsable are no origin's.
func sameOrigin(origin, want string) bool {
	u, err := url.Parse(origin)
	w, err2 := url.Parse(want)
	if err != nil || err2 != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return false
	}
	scheme := strings.ToLower(u.Scheme)
	return scheme == strings.ToLower(w.Scheme) && normHost(u.Host, scheme) == normHost(w.Host, scheme)
}

// isUpgrade reports whether r asks to switch protocols (a WebSocket).
func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" && headerHasToken(r.Header, "Connection", "upgrade")
}

// isScript reports whether r was sent by a page's script (fetch, XHR)
// rather than by navigating: it cannot follow a redirect to a login form.
func isScript(r *http.Request) bool {
	return r.Header.Get("Sec-Fetch-Mode") == "cors" || r.Header.Get("X-Requested-With") != "" ||
		(strings.Contains(r.Header.Get("Accept"), "application/json") && !strings.Contains(r.Header.Get("Accept"), "text/html"))
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// allowed decides again whether the session behind an app cookie may still
// use app key.app: the session lives, belongs to key's session, and the
// one decision allows its user.
// It also returns when the session ends unless used.
func (h *Handler) allowed(ctx context.Context, key connKey, sessionCookie string) (bool, time.Time, error) {
	d := h.cfg.Registry.Get(key.app)
	if d == nil || d.App == nil {
		return false, time.Time{}, nil
	}
	v, ok, err := h.cfg.Gate.Viewer(ctx, sessionCookie)
	if err != nil || !ok || v.SessionHash != key.session {
		return false, time.Time{}, err
	}
	dec, err := dashboards.Check(ctx, h.cfg.Store, dashboards.ViewerOf(v.User), d, nil)
	return dec.Allowed, v.Ends, err
}
