package app

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gorilla/sessions"

	"gatehouse/app/ops"
	"gatehouse/db"
)

// requestState is what the middleware learns about a request: its id and,
// once loadViewer has run, who is asking. logRequests makes it the
// request's context once, and later middleware fill it in, rather than
// wrapping the context (and copying the request) once per fact. It is
// written only by middleware, before the route's handler runs.
//
// It is a context.Context over parent: its own key answers with itself,
// everything else (cancellation, the server's values, the database
// snapshot) comes from parent. loadViewer puts its snapshot under it, by
// replacing parent with a child of parent, so handlers see the snapshot
// in r.Context() without another request copy.
type requestState struct {
	statusWriter
	parent   context.Context
	start    time.Time // when logRequests began the request (the real clock)
	id       string
	idHeader [1]string // X-Request-Id's value
	viewer   *Viewer   // a logged-in user who may act
	pending  *Viewer   // a half-authenticated session (second factor due)
	// loaded is where loadViewer keeps the request's Viewer (viewer or
	// pending points to it), saving an allocation per request.
	loaded Viewer
}

type requestStateKey struct{}

func (st *requestState) Deadline() (time.Time, bool) { return st.parent.Deadline() }
func (st *requestState) Done() <-chan struct{}       { return st.parent.Done() }
func (st *requestState) Err() error                  { return st.parent.Err() }

func (st *requestState) Value(key any) any {
	if _, ok := key.(requestStateKey); ok {
		return st
	}
	return st.parent.Value(key)
}

func (st *requestState) String() string { return "gatehouse request context" }

func stateFrom(ctx context.Context) *requestState {
	if st, ok := ctx.(*requestState); ok {
		return st
	}
	st, _ := ctx.Value(requestStateKey{}).(*requestState)
	return st
}

// Viewer is the logged-in user of a request and their session.
type Viewer struct {
	User    db.User
	Session *sessions.Session
	// Method is how the session was authenticated (db.MethodPassword, …).
	Method string
}

func viewerFrom(ctx context.Context) *Viewer {
	if st := stateFrom(ctx); st != nil {
		return st.viewer
	}
	return nil
}

func requestID(ctx context.Context) string {
	if st := stateFrom(ctx); st != nil {
		return st.id
	}
	return ""
}

// middleware wraps a handler.
type middleware func(http.Handler) http.Handler

// chain applies middleware so that the first listed runs first.
func chain(h http.Handler, mws ...middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// statusWriter records the status and size of a response for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests gives each request an id (echoed in X-Request-Id) and logs
// one line per request with its status and duration.
func (a *App) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newRequestID()
		st := &requestState{statusWriter: statusWriter{ResponseWriter: w}, parent: r.Context(), start: start, id: id}
		st.idHeader[0] = id
		w.Header()["X-Request-Id"] = st.idHeader[:]
		r = r.WithContext(st)
		sw := &st.statusWriter
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		level := levelFor(sw.status)
		if r.URL.Path == "/healthz" && sw.status == http.StatusOK {
			level = slog.LevelDebug // load balancers poll it; only failures are news
		}
		ctx := r.Context()
		if !a.log.Enabled(ctx, level) {
			return
		}
		now := time.Now()
		line := ops.RequestLine{ID: id, Method: r.Method, Path: r.URL.Path, IP: a.clientIP(r),
			Status: sw.status, Bytes: sw.bytes, Duration: now.Sub(start)}
		if tl, ok := a.log.Handler().(*ops.TextLog); ok && tl.LogRequest(ctx, level, now, line) {
			return
		}
		a.log.LogAttrs(ctx, level, "request",
			slog.String("id", line.ID), slog.String("method", line.Method), slog.String("path", line.Path),
			slog.Int("status", line.Status), slog.Int("bytes", line.Bytes),
			slog.Duration("duration", line.Duration), slog.String("ip", line.IP))
	})
}

// newRequestID returns 16 random hex digits naming one request in the log
// and on error pages. It only has to be unique enough to find a line, not
// secret, so it comes from the runtime's fast generator, not crypto/rand.
func newRequestID() string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	var out [16]byte
	hex.Encode(out[:], b[:])
	return string(out[:])
}

// recoverPanics turns a panic into a logged error and a plain 500 page;
// the stack goes to the log, never to the browser.
func (a *App) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.log.ErrorContext(r.Context(), "panic", "value", fmt.Sprint(v), "stack", string(debug.Stack()), "request_id", requestID(r.Context()))
				w.Header().Set("Connection", "close")
				a.serverError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy allows only same-origin scripts, styles and images:
// no inline script or style anywhere in Gatehouse.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// securityHeaders sets the headers every response carries: a strict CSP,
// nosniff, no framing, a same-origin referrer policy, HSTS when served over
// https, and no-store caching (the assets handler overrides it for its
// immutable files).
func (a *App) securityHeaders(next http.Handler) http.Handler {
	secure := a.cfg.Secure()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The values are shared, read-only slices under their canonical
		// keys: every response carries them, and Header.Set would
		// canonicalise each key and allocate each value again.
		h := w.Header()
		h["Content-Security-Policy"] = cspHeader
		h["X-Content-Type-Options"] = nosniffHeader
		h["X-Frame-Options"] = denyHeader
		h["Referrer-Policy"] = sameOriginHeader
		h["Cross-Origin-Opener-Policy"] = sameOriginHeader
		if secure {
			h["Strict-Transport-Security"] = hstsHeader
		}
		if !strings.HasPrefix(r.URL.Path, "/assets/") {
			h["Cache-Control"] = noStoreHeader
		}
		next.ServeHTTP(w, r)
	})
}

// Header values every response shares (see securityHeaders). Header.Set
// and Header.Add replace or copy a slice, never write into it, so sharing
// is safe; nothing may assign to an element of one.
var (
	cspHeader        = []string{contentSecurityPolicy}
	nosniffHeader    = []string{"nosniff"}
	denyHeader       = []string{"DENY"}
	sameOriginHeader = []string{"same-origin"}
	hstsHeader       = []string{"max-age=63072000; includeSubDomains"}
	noStoreHeader    = []string{"no-store"}
	htmlHeader       = []string{"text/html; charset=utf-8"}
)

// limitBodies caps request bodies at MaxBodyBytes; handlers that parse a
// form answer 413 when it is exceeded.
func (a *App) limitBodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > a.cfg.MaxBodyBytes && r.URL.Path != "/auth/forward" { // forward auth reads no body: it answers and closes
			if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				// The passkeys script reads JSON errors.
				writeJSONError(w, http.StatusRequestEntityTooLarge, tooLargeMessage)
				return
			}
			a.errorPage(w, r, http.StatusRequestEntityTooLarge, "Request too large", "The form sent more data than Gatehouse accepts.")
			return
		}
		if r.Body != http.NoBody { // a GET has nothing to limit
			r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// crossOrigin refuses cross-origin state-changing requests (CSRF) with
// http.CrossOriginProtection: POST/PUT/PATCH/DELETE whose Sec-Fetch-Site or
// Origin shows another site get a 403 page and never reach a handler.
func (a *App) crossOrigin(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	if o := a.cfg.origin(); o != "" {
		_ = cop.AddTrustedOrigin(o)
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.log.WarnContext(r.Context(), "cross-origin request refused", "path", r.URL.Path, "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		a.forbidden(w, r, "This request came from another site and was refused. Reload the page and try again.")
	}))
	return cop.Handler(next)
}

// loadViewer puts the logged-in user (if any) into the request context. A
// missing, bad or revoked cookie, or a deactivated user, leaves the request
// anonymous.
//
// A request with a cookie first takes a Snapshot of the authorization
// version (one tiny query); the session, its user and the access facts the
// handler reads are then answered from memory while that version is
// unchanged, and reloaded after any change by any process (see
// db/authz_cache.go). The session and user come from one joined query.
func (a *App) loadViewer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cookie, ok := cookieValue(r, a.sessions.CookieName())
		if !ok || anonymousPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		st := stateFrom(r.Context())
		if st == nil { // a handler tested without logRequests
			st = &requestState{parent: r.Context()}
			r = r.WithContext(st)
		}
		// When nothing has wrapped the request's context since
		// logRequests, the snapshot goes under the state (which stays
		// r's context) instead of on top of it, and r is not copied.
		under := r.Context() == st
		parent := r.Context()
		if under {
			parent = st.parent
		}
		ctx, err := a.store.Snapshot(parent)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		if under {
			st.parent = ctx
			ctx = st
		} else {
			r = r.WithContext(ctx)
		}
		// The cookie's age is checked against the request's start (one
		// clock read fewer); this request is over in moments.
		now := st.start
		if now.IsZero() {
			now = time.Now()
		}
		sess, u, err := a.sessions.loadCookieAt(ctx, cookie, now)
		switch {
		case err != nil:
			a.serverError(w, r, err)
			return
		case sess.IsNew: // no live session: anonymous
		case !u.IsActive:
			_ = a.sessions.Revoke(ctx, sess.ID)
		default:
			st.loaded = Viewer{User: u, Session: sess, Method: sessionMethod(sess)}
			v := &st.loaded
			pending, err := a.pendingMethod(ctx, v)
			if err != nil {
				a.serverError(w, r, err)
				return
			}
			if pending != "" {
				// Half-authenticated: not a viewer anywhere; only the
				// sign-in and enrolment handlers look at it.
				v.Method = pending
				st.pending = v
				break
			}
			st.viewer = v
		}
		next.ServeHTTP(w, r)
	})
}

// cookieValue is r.Cookie(name)'s value, found without r.Cookie's
// allocations (a slice, and a Cookie for each match): every polled panel
// looks up its session cookie. It parses the Cookie lines as net/http's
// readCookies does, and leaves requests with more cookies than net/http's
// default limit, or any limit set through GODEBUG, to r.Cookie itself.
func cookieValue(r *http.Request, name string) (string, bool) {
	lines := r.Header["Cookie"]
	n := 0
	for _, line := range lines {
		n += strings.Count(line, ";") + 1
	}
	if n > maxCookies || cookieLimitSet {
		c, err := r.Cookie(name)
		if err != nil {
			return "", false
		}
		return c.Value, true
	}
	for _, line := range lines {
		line = textproto.TrimString(line)
		var part string
		for len(line) > 0 {
			part, line, _ = strings.Cut(line, ";")
			part = textproto.TrimString(part)
			if part == "" {
				continue
			}
			k, v, _ := strings.Cut(part, "=")
			if name == "" || textproto.TrimString(k) != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if validCookieValue(v) {
				return v, true
			}
		}
	}
	return "", false
}

// maxCookies is net/http's default limit of cookies in one request, beyond
// which r.Cookie finds none; cookieLimitSet is true when GODEBUG may set
// another (httpcookiemaxnum).
const maxCookies = 3000

var cookieLimitSet = strings.Contains(os.Getenv("GODEBUG"), "httpcookiemaxnum")

// validCookieValue is net/http's test of a cookie value's bytes, one table
// look-up a byte (a session cookie is some 200 bytes, read on every poll).
func validCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if !cookieValueBytes[v[i]] {
			return false
		}
	}
	return true
}

// cookieValueBytes marks the bytes net/http allows in a cookie value.
var cookieValueBytes = func() (ok [256]bool) {
	for b := 0x20; b < 0x7f; b++ {
		ok[b] = b != '"' && b != ';' && b != '\\'
	}
	return ok
}()

// requireLogin lets only logged-in users through. Anonymous htmx requests
// get 401 with HX-Redirect to the login page, JSON ones (the passkeys script)
// 401 with a JSON error, plain ones a 303 there. A user
// with a temporary password is sent to the change-password page first.
func (a *App) requireLogin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := viewerFrom(r.Context())
		if v == nil {
			if r.Header.Get("Content-Type") == "application/json" {
				// The passkeys script: a redirect would be followed to HTML.
				writeJSONError(w, http.StatusUnauthorized, "Your session has ended. Log in again.")
				return
			}
			to := loginURL(r)
			if p := pendingFrom(r.Context()); p != nil {
				to = pendingURL(p)
			}
			if isHTMX(r) {
				w.Header().Set("HX-Redirect", to)
				a.errorPage(w, r, http.StatusUnauthorized, "Log in required", "Your session has ended. Log in again.")
				return
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		if v.User.MustChangePassword && r.URL.Path != "/account/password" {
			a.redirect(w, r, "/account/password")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireAdmin lets only admins through (after requireLogin); others get 403.
func (a *App) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := viewerFrom(r.Context())
		if v == nil || !v.User.IsAdmin {
			a.forbidden(w, r, "This page is for admins only.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// anonymousPath reports whether a path never needs the viewer: health
// checks and static assets skip the session lookup, so they answer (and
// answer fast) even when a browser sends its cookie along.
func anonymousPath(p string) bool {
	return p == "/healthz" || p == "/auth/forward" || strings.HasPrefix(p, "/assets/")
}

func levelFor(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}
