package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"gatehouse/app/apps"
	"gatehouse/app/dashboards"
	"gatehouse/db"
	"gatehouse/db/postgrestest"
)

// appsEnv is a Gatehouse listening on a real port, with base URL
// http://127.0.0.1:PORT and apps at http://SLUG.localhost:PORT, and an
// upstream that records what it is sent.
type appsEnv struct {
	*testApp
	base, port string
	addr       string
	up         *recordingUpstream
	sellers    db.Group
}

// recordingUpstream is the app behind Gatehouse: it answers every request
// with "upstream saw PATH" and keeps the requests it got.
type recordingUpstream struct {
	*httptest.Server
	mu  sync.Mutex
	got []*http.Request
}

func (u *recordingUpstream) last() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.got) == 0 {
		return nil
	}
	return u.got[len(u.got)-1]
}

func (u *recordingUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.got)
}

func newAppsEnv(t testing.TB) *appsEnv {
	t.Helper()
	dsn := ""
	if os.Getenv("GATEHOUSE_TEST_APP_DB") == "postgres" {
		dsn = postgrestest.Schema(t)
	}
	return newAppsEnvOn(t, dsn)
}

// newAppsEnvOn is newAppsEnv on the database dsn ("" for a new SQLite file).
func newAppsEnvOn(t testing.TB, dsn string, configure ...func(*Config, *dashboards.Registry)) *appsEnv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ta := newTestAppOn(t, dsn, append([]func(*Config, *dashboards.Registry){func(cfg *Config, _ *dashboards.Registry) { cfg.BaseURL = base }}, configure...)...)
	ta.registry.FollowApps(ta.store) // as Serve does
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: ta.Routes()}}
	srv.Start()
	t.Cleanup(srv.Close)

	up := &recordingUpstream{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		up.mu.Lock()
		up.got = append(up.got, r.Clone(context.Background()))
		up.mu.Unlock()
		w.Header().Set("Set-Cookie", "upstream=1; Path=/")
		fmt.Fprintf(w, "upstream saw %s", r.URL.RequestURI())
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true}) // any Origin: Gatehouse must check it
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, append([]byte("echo "), msg...)); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	up.Server = httptest.NewServer(mux)
	t.Cleanup(up.Close)

	ctx := context.Background()
	a, err := db.CleanApp(db.App{Slug: "sales", Upstream: up.URL, Title: "Sales app", UserHeader: "X-WEBAUTH-USER"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ta.store.CreateApp(ctx, db.Actor{Email: "test"}, a); err != nil {
		t.Fatal(err)
	}
	g, err := ta.store.CreateGroup(ctx, db.Actor{Email: "test"}, "sellers", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := ta.store.AddGrant(ctx, db.Actor{Email: "test"}, "sales", g.ID); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return &appsEnv{testApp: ta, base: base, port: port, addr: ln.Addr().String(), up: up, sellers: g}
}

// member creates a user in the sellers group.
func (e *appsEnv) member(t testing.TB, email string) db.User {
	t.Helper()
	u := e.createUser(t, email, false)
	if err := e.store.AddMember(context.Background(), db.Actor{Email: "test"}, e.sellers.ID, u.ID, 0); err != nil {
		t.Fatal(err)
	}
	return u
}

// browser is a client with a cookie jar that reaches every host (the main
// origin, SLUG.localhost) at Gatehouse's listener and follows no redirect.
func (e *appsEnv) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, e.addr)
	}}
	return &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// appURL is the URL of path on app slug's origin.
func (e *appsEnv) appURL(slug, path string) string {
	return "http://" + slug + ".localhost:" + e.port + path
}

func send(t testing.TB, c *http.Client, method, u string, header http.Header, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// startAt asks app slug's origin for path as browser b, which has no app
// cookie: it must answer 302 to the main origin's sign-in for the app,
// with the state b now holds. It returns that URL.
func (e *appsEnv) startAt(t testing.TB, b *http.Client, slug, path string) string {
	t.Helper()
	res, _ := send(t, b, "GET", e.appURL(slug, path), nil, nil)
	loc := res.Header.Get("Location")
	want := e.base + "/apps/" + slug + "/signin?next=" + url.QueryEscape(path) + "&state="
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, want) || len(loc) == len(want) {
		t.Fatalf("no app cookie: %d Location %q, want 302 to %s…", res.StatusCode, loc, want)
	}
	return loc
}

// callbackFor has c, signed in on the main origin (at any of its
// listeners), pass the sign-in at signin and returns the callback URL.
func (e *appsEnv) callbackFor(t testing.TB, c *http.Client, signin string) *url.URL {
	t.Helper()
	u := mustURL(signin)
	res, _ := e.get(t, c, u.RequestURI(), false)
	cb := mustURL(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || cb.Path != "/.gatehouse/callback" {
		t.Fatalf("sign-in: %d to %s", res.StatusCode, cb)
	}
	return cb
}

// signIn walks the whole handshake for email from a request for path on
// the sales origin, as a browser would, and returns the client holding
// the app cookie and the final response.
func (e *appsEnv) signIn(t testing.TB, email, path string) (*http.Client, *http.Response, string) {
	t.Helper()
	c := e.browser()
	wantSignin := e.startAt(t, c, "sales", path)
	res, _ := send(t, c, "GET", wantSignin, nil, nil)
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || loc.Path != "/login" {
		t.Fatalf("anonymous sign-in: %d to %s, want 303 to /login", res.StatusCode, loc)
	}
	res, body := send(t, c, "POST", e.base+"/login", nil, url.Values{"email": {email}, "password": {testPassword}, "next": {loc.Query().Get("next")}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != strings.TrimPrefix(wantSignin, e.base) {
		t.Fatalf("login: %d to %q, want back to the sign-in; %s", res.StatusCode, res.Header.Get("Location"), body)
	}
	res, body = send(t, c, "GET", wantSignin, nil, nil)
	if res.StatusCode != http.StatusSeeOther {
		return c, res, body // denied, for one
	}
	cb := res.Header.Get("Location")
	if !strings.HasPrefix(cb, e.appURL("sales", "/.gatehouse/callback?code=")) {
		t.Fatalf("sign-in sends to %q, want the app origin's callback", cb)
	}
	res, _ = send(t, c, "GET", cb, nil, nil)
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != path {
		t.Fatalf("callback: %d to %q, want 302 to %s", res.StatusCode, res.Header.Get("Location"), path)
	}
	res, body = send(t, c, "GET", e.appURL("sales", path), nil, nil)
	return c, res, body
}

func TestAppsSignInAndForward(t *testing.T) {
	e := newAppsEnv(t)
	ann := e.member(t, "ann@example.com")
	c, res, body := e.signIn(t, "ann@example.com", "/report?q=1")
	if res.StatusCode != http.StatusOK || body != "upstream saw /report?q=1" {
		t.Fatalf("signed in: %d %q", res.StatusCode, body)
	}
	// The app's dashboard page on the main origin leads to its origin.
	if res, body := send(t, c, "GET", e.base+"/dashboards/sales", nil, nil); res.StatusCode != http.StatusOK ||
		!strings.Contains(body, `href="`+e.appURL("sales", "/")+`"`) {
		t.Errorf("/dashboards/sales: %d, no link to the app's origin", res.StatusCode)
	}
	if n := e.countAudit(t, db.ActionAppOpen, "sales"); n != 1 {
		t.Errorf("%d app.open audit rows, want 1", n)
	}

	// The app cookie is host-only and HttpOnly; the main origin's cookie
	// is not sent to the app origin.
	appCookies := c.Jar.Cookies(mustURL(e.appURL("sales", "/")))
	var names []string
	for _, ck := range appCookies {
		names = append(names, ck.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "gatehouse_app") {
		t.Fatalf("app origin cookies %v lack gatehouse_app", names)
	}
	if others := c.Jar.Cookies(mustURL(e.appURL("other", "/"))); len(others) != 0 {
		t.Errorf("the app cookie reaches another app's origin: %v", others)
	}

	// Header hygiene: forged identity and Gatehouse's cookies never reach
	// the upstream; Gatehouse's own identity does; Host is kept.
	forged := http.Header{
		"X-Forwarded-User": {"ceo@example.com"}, "X-Forwarded-Email": {"ceo@example.com"},
		"X-Forwarded-Groups": {"admins"}, "X-Forwarded-Preferred-Username": {"ceo"},
		"X-Gatehouse-Assertion": {"forged"}, "Remote-User": {"ceo"}, "X-Webauth-User": {"ceo"},
		"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Host": {"evil.example"},
		"Cookie": {"theirs=1; " + e.sessions.CookieName() + "=stolen"},
		// CGI and WSGI servers read underscores as dashes.
		"X_Forwarded_User": {"ceo@example.com"}, "X_WEBAUTH_USER": {"ceo"}, "Remote_User": {"ceo"},
	}
	res, body = send(t, c, "GET", e.appURL("sales", "/page"), forged, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("forged headers: %d %s", res.StatusCode, body)
	}
	got := e.up.last()
	want := map[string]string{
		"X-Forwarded-User": "ann@example.com", "X-Forwarded-Email": "ann@example.com",
		"X-Forwarded-Groups": "sellers", "X-Forwarded-Preferred-Username": "ann",
		"Remote-User": "ann@example.com", "X-Webauth-User": "ann@example.com",
		"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "sales.localhost:" + e.port, "X-Forwarded-Proto": "http",
	}
	for k, v := range want {
		if vs := got.Header.Values(k); len(vs) != 1 || vs[0] != v {
			t.Errorf("upstream got %s = %q, want just %q", k, vs, v)
		}
	}
	for name := range got.Header {
		if strings.Contains(name, "_") {
			t.Errorf("upstream got the client's %s, which a WSGI server reads as an identity header", name)
		}
	}
	if got.Host != "sales.localhost:"+e.port {
		t.Errorf("upstream got Host %q, want the app's own", got.Host)
	}
	if ck := got.Header.Values("Cookie"); len(ck) != 1 || ck[0] != "theirs=1; upstream=1" {
		t.Errorf("upstream got Cookie %q, want only the upstream's own cookies", ck)
	}
	if a := got.Header.Get("X-Gatehouse-Assertion"); a == "" || a == "forged" {
		t.Errorf("upstream got assertion %q", a)
	}

	// Hop-by-hop tricks: a Connection header naming the identity headers
	// (a proxy that dropped them after setting its own would forward
	// none, and the upstream might fall back to anonymous or to another
	// header), and Gatehouse's cookie on a second Cookie line.
	// (A client with no cookie jar: one with a jar folds the lines into
	// one.)
	var appCookie string
	for _, ck := range c.Jar.Cookies(mustURL(e.appURL("sales", "/"))) {
		if ck.Name == "gatehouse_app" {
			appCookie = ck.Value
		}
	}
	res, body = send(t, e.browser(), "GET", e.appURL("sales", "/page"), http.Header{
		"Connection":       {"X-Forwarded-User, X-Gatehouse-Assertion", "X-Forwarded-Groups, Remote-User, X-Webauth-User"},
		"X-Forwarded-User": {"ceo@example.com"},
		"Cookie":           {"theirs=1; gatehouse_app=" + appCookie, e.sessions.CookieName() + "=stolen; gatehouse_app=" + appCookie},
	}, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("Connection naming identity headers: %d %s", res.StatusCode, body)
	}
	got = e.up.last()
	for _, k := range []string{"X-Forwarded-User", "X-Forwarded-Groups", "Remote-User", "X-Webauth-User"} {
		if vs := got.Header.Values(k); len(vs) != 1 || vs[0] != want[k] {
			t.Errorf("Connection naming %s: upstream got %q, want just %q", k, vs, want[k])
		}
	}
	if a := got.Header.Get("X-Gatehouse-Assertion"); a == "" || a == "forged" {
		t.Errorf("Connection naming the assertion: upstream got %q", a)
	}
	for _, line := range got.Header.Values("Cookie") {
		if strings.Contains(line, e.sessions.CookieName()+"=") || strings.Contains(line, "gatehouse_app=") {
			t.Errorf("Gatehouse's cookie on a second Cookie line reached the upstream: %q", got.Header.Values("Cookie"))
		}
	}

	// A new membership shows in the very next request's headers and
	// assertion (nothing stale is kept across a change).
	before := got.Header.Get("X-Gatehouse-Assertion")
	ctx := context.Background()
	leads, err := e.store.CreateGroup(ctx, db.Actor{Email: "test"}, "leads", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.AddMember(ctx, db.Actor{Email: "test"}, leads.ID, ann.ID, 0); err != nil {
		t.Fatal(err)
	}
	send(t, c, "GET", e.appURL("sales", "/page"), nil, nil)
	if g := e.up.last().Header.Get("X-Forwarded-Groups"); g != "leads,sellers" {
		t.Errorf("after joining leads the upstream got X-Forwarded-Groups %q", g)
	}
	if a := e.up.last().Header.Get("X-Gatehouse-Assertion"); a == before {
		t.Error("after joining leads the upstream got the same assertion")
	}

	// /.gatehouse/ is Gatehouse's on every app origin, never forwarded.
	n := e.up.count()
	res, _ = send(t, c, "GET", e.appURL("sales", "/.gatehouse/anything"), nil, nil)
	if res.StatusCode != http.StatusNotFound || e.up.count() != n {
		t.Errorf("/.gatehouse/anything: %d, upstream hit %d times more", res.StatusCode, e.up.count()-n)
	}
	// The app is never served on Gatehouse's own origin.
	res, _ = send(t, c, "GET", e.base+"/report?q=1", nil, nil)
	if res.StatusCode != http.StatusNotFound || e.up.count() != n {
		t.Errorf("the main origin's /report: %d, upstream hit %d times more", res.StatusCode, e.up.count()-n)
	}
	// An unknown app host is Gatehouse's 404.
	res, body = send(t, c, "GET", e.appURL("nope", "/"), nil, nil)
	if res.StatusCode != http.StatusNotFound || !strings.Contains(body, "No such app") {
		t.Errorf("unknown app: %d %q", res.StatusCode, body)
	}

	// Logout ends the app cookie with the session.
	res, _ = send(t, c, "POST", e.base+"/logout", nil, url.Values{})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	res, _ = send(t, c, "GET", e.appURL("sales", "/page"), nil, nil)
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), e.base+"/apps/sales/signin") {
		t.Errorf("after logout: %d to %q, want 302 to sign in", res.StatusCode, res.Header.Get("Location"))
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestAppsScriptsGet401(t *testing.T) {
	e := newAppsEnv(t)
	c := e.browser()
	for name, h := range map[string]http.Header{
		"fetch":            {"Sec-Fetch-Mode": {"cors"}},
		"X-Requested-With": {"X-Requested-With": {"XMLHttpRequest"}},
		"json":             {"Accept": {"application/json"}},
	} {
		res, _ := send(t, c, "GET", e.appURL("sales", "/api/data"), h, nil)
		if res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("Location"), e.base+"/apps/sales/signin?next=") {
			t.Errorf("%s without an app cookie: %d Location %q, want 401 naming the sign-in", name, res.StatusCode, res.Header.Get("Location"))
		}
	}
	if e.up.count() != 0 {
		t.Errorf("anonymous requests reached the upstream %d times", e.up.count())
	}
}

func TestAppsCodeSingleUseAndBound(t *testing.T) {
	e := newAppsEnv(t)
	e.member(t, "ann@example.com")
	ctx := context.Background()
	if _, err := e.store.CreateApp(ctx, db.Actor{Email: "test"}, db.App{Slug: "ops", Upstream: e.up.URL, Title: "Ops"}); err != nil {
		t.Fatal(err)
	}
	c := e.login(t, "ann@example.com") // on ta.Server: another listener, the same app
	other := e.browser()
	cb := e.callbackFor(t, c, e.startAt(t, other, "sales", "/x"))
	code := cb.Query().Get("code")
	// Shown to another app's origin (with that origin's own state), the
	// code is refused, and spent.
	opsState := mustURL(e.startAt(t, other, "ops", "/")).Query().Get("state")
	res, body := send(t, other, "GET", e.appURL("ops", "/.gatehouse/callback?code="+code+"&next=%2F&state="+opsState), nil, nil)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "used already or has expired") {
		t.Errorf("code on another app: %d %q", res.StatusCode, body)
	}
	res, _ = send(t, other, "GET", cb.String(), nil, nil)
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("code spent on another app, then on its own: %d", res.StatusCode)
	}
	// A fresh code works once, in the browser that asked for it only.
	signin := e.startAt(t, other, "sales", "/")
	cb = e.callbackFor(t, c, strings.Replace(signin, url.QueryEscape("/"), url.QueryEscape("//evil.example"), 1))
	if cb.Query().Get("next") != "/" {
		t.Errorf("next //evil.example became %q, want /", cb.Query().Get("next"))
	}
	res, body = send(t, e.browser(), "GET", cb.String(), nil, nil)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not asked for by this browser") {
		t.Errorf("a code in a browser that did not ask for it (login CSRF): %d %q", res.StatusCode, body)
	}
	res, _ = send(t, other, "GET", cb.String(), nil, nil)
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/" {
		t.Fatalf("fresh code: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, _ = send(t, other, "GET", cb.String(), nil, nil)
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("the same code twice: %d", res.StatusCode)
	}
	// An app cookie of one app is nothing on another app's origin.
	var appCookie string
	for _, ck := range other.Jar.Cookies(mustURL(e.appURL("sales", "/"))) {
		if ck.Name == "gatehouse_app" {
			appCookie = ck.Value
		}
	}
	res, _ = send(t, e.browser(), "GET", e.appURL("ops", "/"), http.Header{"Cookie": {"gatehouse_app=" + appCookie}}, nil)
	if res.StatusCode != http.StatusFound {
		t.Errorf("sales's cookie on ops: %d, want 302 to sign in", res.StatusCode)
	}
	res, _ = send(t, e.browser(), "GET", e.appURL("sales", "/"), http.Header{"Cookie": {"gatehouse_app=" + appCookie}}, nil)
	if res.StatusCode != http.StatusOK {
		t.Errorf("sales's cookie on sales: %d, want 200", res.StatusCode)
	}
	// A code is good for a minute.
	late := e.browser()
	cb = e.callbackFor(t, c, e.startAt(t, late, "sales", "/"))
	e.Clock.Advance(db.AppCodeTTL)
	if res, _ := send(t, late, "GET", cb.String(), nil, nil); res.StatusCode != http.StatusBadRequest {
		t.Errorf("a code a minute old: %d", res.StatusCode)
	}
}

func TestAppsDenied(t *testing.T) {
	e := newAppsEnv(t)
	e.createUser(t, "bob@example.com", false)
	// Not granted: the main origin's sign-in answers the dashboard's 403
	// with the request form; no code, no cookie.
	_, res, body := e.signIn(t, "bob@example.com", "/")
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "You cannot view this dashboard") || !strings.Contains(body, "Request access") {
		t.Errorf("denied sign-in: %d, page lacks the denial or request form", res.StatusCode)
	}

	// Allowed, then the membership goes: the app origin answers its own
	// 403 with the link to request access, and audits the denial.
	ann := e.member(t, "ann@example.com")
	c, res, _ := e.signIn(t, "ann@example.com", "/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("member: %d", res.StatusCode)
	}
	if err := e.store.RemoveMember(context.Background(), db.Actor{Email: "test"}, e.sellers.ID, ann.ID); err != nil {
		t.Fatal(err)
	}
	n := e.up.count()
	res, body = send(t, c, "GET", e.appURL("sales", "/"), nil, nil)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "You cannot view this dashboard") ||
		!strings.Contains(body, `href="`+e.base+`/dashboards/sales"`) || !strings.Contains(body, "Sales app") {
		t.Errorf("after removal: %d %s", res.StatusCode, body)
	}
	if e.up.count() != n {
		t.Error("a denied request reached the upstream")
	}
	if e.countAudit(t, db.ActionAccessDenied, "sales") == 0 {
		t.Error("the denial is not audited")
	}
	// Deactivation ends it too (sign-in again, not a 403).
	if err := e.store.AddMember(context.Background(), db.Actor{Email: "test"}, e.sellers.ID, ann.ID, 0); err != nil {
		t.Fatal(err)
	}
	if res, _ := send(t, c, "GET", e.appURL("sales", "/"), nil, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("member again: %d", res.StatusCode)
	}
	if err := e.store.SetActive(context.Background(), db.Actor{Email: "test"}, ann.ID, false); err != nil {
		t.Fatal(err)
	}
	if res, _ := send(t, c, "GET", e.appURL("sales", "/"), nil, nil); res.StatusCode != http.StatusFound {
		t.Errorf("deactivated: %d, want 302 to sign in", res.StatusCode)
	}
}

func TestAppsUpstreamDown(t *testing.T) {
	e := newAppsEnv(t)
	e.member(t, "ann@example.com")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + ln.Addr().String()
	ln.Close()
	if _, err := e.store.UpdateApp(context.Background(), db.Actor{Email: "test"}, db.App{Slug: "sales", Upstream: closed, Title: "Sales app"}); err != nil {
		t.Fatal(err)
	}
	_, res, body := e.signIn(t, "ann@example.com", "/")
	if res.StatusCode != http.StatusBadGateway || !strings.Contains(body, "Sales app is down") {
		t.Errorf("upstream down: %d %s", res.StatusCode, body)
	}
}

func TestAppsAssertionVerifiesWithJWKS(t *testing.T) {
	e := newAppsEnv(t)
	e.member(t, "ann@example.com")
	c, res, _ := e.signIn(t, "ann@example.com", "/")
	if res.StatusCode != http.StatusOK {
		t.Fatal(res.StatusCode)
	}
	token := e.up.last().Header.Get("X-Gatehouse-Assertion")
	res, body := send(t, c, "GET", e.base+"/.well-known/jwks.json", nil, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("jwks: %d", res.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks %s: %v", body, err)
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Headers[0].KeyID != set.Keys[0].KeyID {
		t.Errorf("kid %q, JWKS has %q", tok.Headers[0].KeyID, set.Keys[0].KeyID)
	}
	var std jwt.Claims
	var extra struct {
		Email  string   `json:"email"`
		Name   string   `json:"name"`
		Groups []string `json:"groups"`
	}
	if err := tok.Claims(set, &std, &extra); err != nil {
		t.Fatalf("the assertion does not verify with the JWKS: %v", err)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: e.base, AnyAudience: jwt.Audience{e.appURL("sales", "")}, Time: e.Clock.Now()}, 0); err != nil {
		t.Errorf("claims: %v", err)
	}
	if life := std.Expiry.Time().Sub(std.IssuedAt.Time()); life > 5*time.Minute {
		t.Errorf("assertion lives %s", life)
	}
	if extra.Email != "ann@example.com" || extra.Name != "ann" || strings.Join(extra.Groups, ",") != "sellers" || std.Subject == "" {
		t.Errorf("claims %+v %+v", std, extra)
	}
	// Another key's signature does not verify: the check can fail.
	if _, err := apps.RotateKeys(context.Background(), e.store, db.Actor{Email: "test"}); err != nil {
		t.Fatal(err)
	}
	_, body = send(t, c, "GET", e.base+"/.well-known/jwks.json", nil, nil)
	var rotated jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &rotated); err != nil || len(rotated.Keys) != 2 {
		t.Fatalf("after rotation the JWKS has %d keys, want the new and the old", len(rotated.Keys))
	}
	newKey := rotated.Keys[1]
	if newKey.KeyID == set.Keys[0].KeyID {
		t.Fatal("rotation kept the key")
	}
	if err := tok.Claims(newKey, &std); err == nil {
		t.Error("an assertion verified with another key")
	}
}

// wsDial opens a WebSocket to path on the sales origin with the client's
// cookies and the given Origin.
func (e *appsEnv) wsDial(t *testing.T, c *http.Client, path, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, strings.Replace(e.appURL("sales", path), "http://", "ws://", 1),
		&websocket.DialOptions{HTTPClient: c, HTTPHeader: http.Header{"Origin": {origin}}})
}

func TestAppsWebSocketOriginAndRevocation(t *testing.T) {
	e := newAppsEnv(t)
	ann := e.member(t, "ann@example.com")
	e.member(t, "bea@example.com")
	c, _, _ := e.signIn(t, "ann@example.com", "/")
	bea, _, _ := e.signIn(t, "bea@example.com", "/")
	own := e.appURL("sales", "")

	// A foreign Origin is refused before the upstream sees it.
	n := e.up.count()
	if _, res, err := e.wsDial(t, c, "/ws", "http://evil.example"); err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("foreign Origin: %v %v, want 403", res, err)
	}
	if _, res, err := e.wsDial(t, e.browser(), "/ws", own); err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("no app cookie: %v, want 401", err)
	}
	if e.up.count() != n {
		t.Error("a refused upgrade reached the upstream")
	}

	ws, _, err := e.wsDial(t, c, "/ws", own)
	if err != nil {
		t.Fatalf("own Origin: %v", err)
	}
	defer ws.CloseNow()
	other, _, err := e.wsDial(t, bea, "/ws", own)
	if err != nil {
		t.Fatal(err)
	}
	defer other.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, conn := range []*websocket.Conn{ws, other} {
		if err := conn.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := conn.Read(ctx); err != nil || string(msg) != "echo hi" {
			t.Fatalf("echo: %q %v", msg, err)
		}
	}
	// A streaming response of the same session.
	req, _ := http.NewRequestWithContext(ctx, "GET", e.appURL("sales", "/stream"), nil)
	stream, err := c.Do(req)
	if err != nil || stream.StatusCode != http.StatusOK {
		t.Fatalf("stream: %v %v", stream, err)
	}
	defer stream.Body.Close()
	buf := make([]byte, 64)
	if _, err := stream.Body.Read(buf); err != nil {
		t.Fatal(err)
	}
	// Access ends (the CLI, another process: straight in the store): the
	// socket closes with the revocation's own close code, the stream ends,
	// and bea's socket flows on. How fast is BENCHMARKS.md's business (the
	// tracker is woken by the access feed, so it is not a poll interval);
	// the deadlines here only keep a broken cut from hanging the test.
	if err := e.store.RemoveMember(context.Background(), db.Actor{Email: "test"}, e.sellers.ID, ann.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	readCtx, cancelRead := context.WithTimeout(ctx, 10*time.Second)
	defer cancelRead()
	var closeErr error
	for closeErr == nil {
		_, _, closeErr = ws.Read(readCtx)
	}
	t.Logf("the revoked viewer's socket closed %s after the change", time.Since(start))
	if code := websocket.CloseStatus(closeErr); code != apps.CloseAccessRevoked {
		t.Errorf("the socket closed with %v (code %d), want close code %d", closeErr, code, apps.CloseAccessRevoked)
	}
	streamDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, stream.Body)
		streamDone <- err
	}()
	select {
	case <-streamDone:
	case <-time.After(10 * time.Second):
		t.Error("the revoked viewer's stream is still open 10 s later")
	}
	if err := other.Write(ctx, websocket.MessageText, []byte("still")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := other.Read(ctx); err != nil || string(msg) != "echo still" {
		t.Errorf("another viewer's socket stopped too: %q %v", msg, err)
	}
}

// TestAppsSecondInstanceCutsSocket: on PostgreSQL, a change made through
// another instance (its own store, its own connections) cuts a socket this
// instance proxies, with the revocation's close code.
func TestAppsSecondInstanceCutsSocket(t *testing.T) {
	dsn := postgrestest.Schema(t)
	e := newAppsEnvOn(t, dsn)
	ann := e.member(t, "ann@example.com")
	c, _, _ := e.signIn(t, "ann@example.com", "/")
	ws, _, err := e.wsDial(t, c, "/ws", e.appURL("sales", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	other, err := OpenStore(context.Background(), Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.Read(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.RemoveMember(ctx, db.Actor{Email: "other-instance"}, e.sellers.ID, ann.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var closeErr error
	for closeErr == nil {
		_, _, closeErr = ws.Read(ctx)
	}
	if code := websocket.CloseStatus(closeErr); code != apps.CloseAccessRevoked {
		t.Errorf("the socket closed with %v (code %d), want close code %d", closeErr, code, apps.CloseAccessRevoked)
	}
	t.Logf("the socket closed %s after another instance revoked access", time.Since(start))
}

// BenchmarkAppsProxy measures a small upstream response through Gatehouse
// (decided, identity headers and assertion set) against the same upstream
// reached directly.
func BenchmarkAppsProxy(b *testing.B) {
	e := newAppsEnv(b)
	e.member(b, "ann@example.com")
	c, _, _ := e.signIn(b, "ann@example.com", "/")
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	direct := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for via, target := range map[string]string{"direct": e.up.URL + "/small", "gatehouse": e.appURL("sales", "/small")} {
		c := c
		if via == "direct" {
			c = direct
		}
		b.Run(via, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := c.Get(target)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						b.Errorf("status %d", res.StatusCode)
						return
					}
				}
			})
		})
	}
}

// TestAppsSocketClosesWhenSessionExpires: a session that ends by its idle
// limit (no change anyone made) closes its open sockets too.
func TestAppsSocketClosesWhenSessionExpires(t *testing.T) {
	e := newAppsEnvOn(t, "", func(cfg *Config, _ *dashboards.Registry) { cfg.SessionIdle = 2 * time.Second })
	e.Clock.Run()
	e.member(t, "ann@example.com")
	c, _, _ := e.signIn(t, "ann@example.com", "/")
	ws, _, err := e.wsDial(t, c, "/ws", e.appURL("sales", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.Read(ctx); err != nil || string(msg) != "echo hi" {
		t.Fatalf("echo: %q %v", msg, err)
	}
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("the socket outlived its session by seconds")
			}
			break
		}
	}
	if res, _ := send(t, c, "GET", e.appURL("sales", "/"), nil, nil); res.StatusCode != http.StatusFound {
		t.Errorf("after the session expired: %d, want 302 to sign in", res.StatusCode)
	}
}

// TestAdminAppsPage: an admin adds, changes and removes apps in the panel
// and sees whether each upstream answers.
func TestAdminAppsPage(t *testing.T) {
	e := newAppsEnv(t)
	e.createUser(t, "root@example.com", true)
	c := e.login(t, "root@example.com")
	res, body := e.get(t, c, "/admin/apps", false)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Sales app") || !strings.Contains(body, "up (200") ||
		!strings.Contains(body, `href="`+e.appURL("sales", "/")+`"`) {
		t.Fatalf("apps page: %d\n%s", res.StatusCode, body)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + ln.Addr().String()
	ln.Close()
	res, body = e.post(t, c, "/admin/apps", url.Values{"slug": {"ops"}, "url": {closed}, "title": {"Ops board"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("add: %d %s", res.StatusCode, body)
	}
	if _, err := e.store.AppBySlug(context.Background(), "ops"); err != nil {
		t.Fatalf("the added app is not stored: %v", err)
	}
	_, body = e.get(t, c, "/admin/apps?msg=app-added", false)
	if !strings.Contains(body, "App added") || !strings.Contains(body, "Ops board") || !strings.Contains(body, "down:") {
		t.Errorf("after adding, the page lacks the notice, the app or its state:\n%s", body)
	}
	for _, tc := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"slug": {"access"}, "url": {closed}, "title": {"Clash"}}, "already the slug of a dashboard or app"},
		{url.Values{"slug": {"ops"}, "url": {closed}, "title": {"Again"}}, "already the slug of a dashboard or app"},
		{url.Values{"slug": {"bad"}, "url": {"ftp://x"}, "title": {"Bad"}}, "must be an http:// or https:// URL"},
	} {
		if res, body := e.post(t, c, "/admin/apps", tc.form); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, tc.want) {
			t.Errorf("add %v: %d, want 422 with %q", tc.form, res.StatusCode, tc.want)
		}
	}
	if res, _ := e.post(t, c, "/admin/apps/ops", url.Values{"url": {e.up.URL}, "title": {"Ops"}, "user_header": {"X-WEBAUTH-USER"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit: %d", res.StatusCode)
	}
	if a, _ := e.store.AppBySlug(context.Background(), "ops"); a.Upstream != e.up.URL || a.Title != "Ops" || a.UserHeader != "X-Webauth-User" {
		t.Errorf("after edit: %+v", a)
	}
	if res, body := e.post(t, c, "/admin/apps/ops", url.Values{"url": {"nope"}, "title": {"Ops"}}); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "must be an http") {
		t.Errorf("bad edit: %d", res.StatusCode)
	}
	if res, _ := e.post(t, c, "/admin/apps/ops/delete", url.Values{}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d", res.StatusCode)
	}
	if _, err := e.store.AppBySlug(context.Background(), "ops"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("removed app still stored: %v", err)
	}
	for _, action := range []string{db.ActionAppCreate, db.ActionAppUpdate, db.ActionAppDelete} {
		if e.countAudit(t, action, "ops") != 1 {
			t.Errorf("no %s audit row for ops", action)
		}
	}
}

// TestAppsSocketsShareTheConnectionBudget: proxied WebSockets are held
// within the same budget as event streams (app/conns): a session's newer
// socket to an app closes its older one, and past the user's share a new
// socket is refused with 429 before it reaches the upstream.
func TestAppsSocketsShareTheConnectionBudget(t *testing.T) {
	e := newAppsEnvOn(t, "", func(c *Config, _ *dashboards.Registry) { c.StreamsPerPage, c.StreamsPerUser = 1, 2 })
	e.member(t, "ann@example.com")
	own := e.appURL("sales", "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	echo := func(ws *websocket.Conn, what string) error {
		if err := ws.Write(ctx, websocket.MessageText, []byte(what)); err != nil {
			return err
		}
		_, msg, err := ws.Read(ctx)
		if err == nil && string(msg) != "echo "+what {
			t.Errorf("echo of %q: %q", what, msg)
		}
		return err
	}

	c, _, _ := e.signIn(t, "ann@example.com", "/")
	first, _, err := e.wsDial(t, c, "/ws", own)
	if err != nil {
		t.Fatal(err)
	}
	defer first.CloseNow()
	second, _, err := e.wsDial(t, c, "/ws", own)
	if err != nil {
		t.Fatal(err)
	}
	defer second.CloseNow()
	readCtx, cancelRead := context.WithTimeout(ctx, 3*time.Second)
	defer cancelRead()
	if _, _, err := first.Read(readCtx); err == nil || readCtx.Err() != nil {
		t.Errorf("the session's older socket stayed open beside the newer one: %v", err)
	}
	if err := echo(second, "hi"); err != nil {
		t.Fatalf("the newer socket: %v", err)
	}

	// Another session of Ann's: her second socket in all; a third session's
	// socket is past her share.
	c2, _, _ := e.signIn(t, "ann@example.com", "/")
	third, _, err := e.wsDial(t, c2, "/ws", own)
	if err != nil {
		t.Fatalf("a second session's socket: %v", err)
	}
	defer third.CloseNow()
	c3, _, _ := e.signIn(t, "ann@example.com", "/")
	n := e.up.count()
	if _, res, err := e.wsDial(t, c3, "/ws", own); err == nil || res == nil || res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a socket past the user's share: %v %v, want 429", res, err)
	}
	if e.up.count() != n {
		t.Error("the refused socket reached the upstream")
	}
	if err := echo(second, "still"); err != nil {
		t.Errorf("the first session's socket after the refusal: %v", err)
	}
}

// TestAppsCallbackNextStaysOnTheAppOrigin: the callback's redirect to next
// never leaves the app's origin. http.Redirect cleans a path ("/./\x" is
// "/\x"), and a browser reads "/\evil.example" as "//evil.example".
func TestAppsCallbackNextStaysOnTheAppOrigin(t *testing.T) {
	e := newAppsEnv(t)
	e.member(t, "ann@example.com")
	c := e.login(t, "ann@example.com")
	for _, next := range []string{`/./\evil.example`, `/.\evil.example`, `/a/..\evil.example`, `/x/../\evil.example`, `/%2e/\evil.example`} {
		b := e.browser()
		signin := e.startAt(t, b, "sales", "/")
		cb := e.callbackFor(t, c, strings.Replace(signin, "next="+url.QueryEscape("/"), "next="+url.QueryEscape(next), 1))
		res, _ := send(t, b, "GET", cb.String(), nil, nil)
		loc := res.Header.Get("Location")
		if res.StatusCode != http.StatusFound || strings.ContainsAny(loc, `\`) || strings.HasPrefix(loc, "//") || !strings.HasPrefix(loc, "/") {
			t.Errorf("next %q: callback %d to %q, want 302 to a path on the app's origin", next, res.StatusCode, loc)
		}
		if target := mustURL(e.appURL("sales", "/")).ResolveReference(mustURL(strings.ReplaceAll(loc, `\`, "/"))); target.Host != mustURL(e.appURL("sales", "/")).Host {
			t.Errorf("next %q: callback sends the browser to %s", next, target)
		}
	}
}
