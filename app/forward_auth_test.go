package app

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"gatehouse/db"
)

// fwdEnv is an appsEnv whose apps are also served by a team's proxy:
// sales with a host of its own, metabase and other under paths of one
// shared host. sales and metabase are granted sellers; other nobody.
type fwdEnv struct {
	*appsEnv
	salesHost, toolsHost string
}

// newFwdEnv makes the apps; external is the proxy's port in their
// external URLs ("" for Gatehouse's own, when the test reaches the app
// hosts at Gatehouse directly).
func newFwdEnv(t testing.TB, external string) *fwdEnv {
	t.Helper()
	e := newAppsEnv(t)
	if external == "" {
		external = e.port
	}
	f := &fwdEnv{appsEnv: e, salesHost: "sales.example.com:" + external, toolsHost: "tools.example.com:" + external}
	ctx := context.Background()
	actor := db.Actor{Email: "test"}
	sales, err := e.store.AppBySlug(ctx, "sales")
	if err != nil {
		t.Fatal(err)
	}
	sales.ExternalURL = "http://" + f.salesHost + "/"
	if sales, err = db.CleanApp(sales); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.UpdateApp(ctx, actor, sales); err != nil {
		t.Fatal(err)
	}
	for _, a := range []db.App{
		{Slug: "metabase", Upstream: e.up.URL, Title: "Metabase", ExternalURL: "http://" + f.toolsHost + "/metabase"},
		{Slug: "other", Upstream: e.up.URL, Title: "Other", ExternalURL: "http://" + f.toolsHost + "/other/"},
	} {
		a, err := db.CleanApp(a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.CreateApp(ctx, actor, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.AddGrant(ctx, actor, "metabase", e.sellers.ID); err != nil {
		t.Fatal(err)
	}
	return f
}

// ask sends a forward-auth question to Gatehouse at path (on the main
// origin unless host is set), with the proxy's headers h and the cookies
// browser c holds for the app's host appHost.
func (f *fwdEnv) ask(t testing.TB, c *http.Client, path, host, appHost string, h http.Header) (*http.Response, string) {
	t.Helper()
	if h == nil {
		h = http.Header{}
	}
	if c != nil {
		var parts []string
		for _, ck := range c.Jar.Cookies(mustURL("http://" + appHost + "/")) {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
		if len(parts) > 0 {
			h.Set("Cookie", strings.Join(parts, "; "))
		}
	}
	u := f.base + path
	if host != "" {
		u = "http://" + host + path
	}
	return send(t, f.browser(), "GET", u, h, nil)
}

// walk follows redirects from u as a browser would, signing in as email
// when it meets the login form, and returns every URL it visited and the
// last response.
func walk(t testing.TB, c *http.Client, u, email string) ([]string, *http.Response, string) {
	t.Helper()
	var seen []string
	for range 15 {
		seen = append(seen, u)
		res, body := send(t, c, "GET", u, nil, nil)
		loc := res.Header.Get("Location")
		if res.StatusCode < 300 || res.StatusCode > 399 || loc == "" {
			return seen, res, body
		}
		next := mustURL(u).ResolveReference(mustURL(loc))
		if next.Path == "/login" {
			seen = append(seen, next.String())
			res, body = send(t, c, "POST", next.Scheme+"://"+next.Host+"/login", nil,
				url.Values{"email": {email}, "password": {testPassword}, "next": {next.Query().Get("next")}})
			if res.StatusCode != http.StatusSeeOther {
				t.Fatalf("login as %s: %d %s", email, res.StatusCode, body)
			}
			next = next.ResolveReference(mustURL(res.Header.Get("Location")))
		}
		u = next.String()
	}
	t.Fatalf("more than 15 redirects: %v", seen)
	return nil, nil, ""
}

func TestForwardAuthPicksTheApp(t *testing.T) {
	f := newFwdEnv(t, "")
	signin := func(slug, next string) string {
		return f.base + "/apps/" + slug + "/signin?next=" + url.QueryEscape(next)
	}
	tests := []struct {
		name, path string
		h          http.Header
		status     int
		location   string
	}{
		{"host of its own", "/auth/forward", http.Header{"X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {f.salesHost}, "X-Forwarded-Uri": {"/d/1?x=1"}},
			401, signin("sales", "http://"+f.salesHost+"/d/1?x=1")},
		{"X-Original-URL", "/auth/forward", http.Header{"X-Original-URL": {"http://" + f.salesHost + "/d/2"}},
			401, signin("sales", "http://"+f.salesHost+"/d/2")},
		{"path under a shared host", "/auth/forward", http.Header{"X-Original-URL": {"http://" + f.toolsHost + "/metabase/q/7"}},
			401, signin("metabase", "http://"+f.toolsHost+"/metabase/q/7")},
		{"the prefix without its slash", "/auth/forward", http.Header{"X-Forwarded-Host": {f.toolsHost}, "X-Forwarded-Uri": {"/other"}},
			401, signin("other", "http://"+f.toolsHost+"/other")},
		{"?app wins", "/auth/forward?app=metabase", http.Header{"X-Original-URL": {"http://" + f.salesHost + "/d/2"}},
			401, signin("metabase", "http://"+f.toolsHost+"/metabase/")},
		{"the built-in origin's host", "/auth/forward", http.Header{"X-Forwarded-Host": {"sales.localhost:" + f.port}, "X-Forwarded-Uri": {"/r"}},
			401, signin("sales", "http://sales.localhost:"+f.port+"/r")},
		{"the app's host asks itself", "/.gatehouse/auth", http.Header{"X-Forwarded-Uri": {"/metabase/x"}},
			401, signin("metabase", "http://"+f.toolsHost+"/metabase/x")},
		{"a path of no app on the host", "/auth/forward", http.Header{"X-Forwarded-Host": {f.toolsHost}, "X-Forwarded-Uri": {"/wiki/"}}, 404, ""},
		{"no such app", "/auth/forward?app=nope", nil, 404, ""},
		{"a URL that does not parse", "/auth/forward", http.Header{"X-Original-URL": {"http://[::1"}, "X-Forwarded-Uri": {"%zz"}}, 404, ""},
		{"garbage beside ?app", "/auth/forward?app=sales", http.Header{"X-Original-URL": {"::::"}, "X-Forwarded-Host": {"evil example, x"}, "X-Forwarded-Proto": {"gopher"}},
			401, signin("sales", "http://"+f.salesHost+"/")},
		{"nothing named", "/auth/forward", nil, 404, ""},
		// Each proxy sets some of these headers and passes the browser's
		// others along (Caddy and Traefik set X-Forwarded-Uri, not
		// X-Original-URL; ingress-nginx the other way round): where they
		// disagree one is the browser's, and no app is picked by them.
		{"a browser's X-Original-URL beside the proxy's X-Forwarded-Uri", "/auth/forward",
			http.Header{"X-Forwarded-Host": {f.toolsHost}, "X-Forwarded-Uri": {"/other/secret"}, "X-Original-URL": {"/metabase/"}}, 404, ""},
		{"a browser's absolute X-Original-URL beside the proxy's X-Forwarded-Uri", "/auth/forward",
			http.Header{"X-Forwarded-Host": {f.toolsHost}, "X-Forwarded-Uri": {"/other/secret"}, "X-Original-URL": {"http://" + f.toolsHost + "/metabase/"}}, 404, ""},
		{"a browser's X-Forwarded-Host beside the proxy's X-Original-URL", "/auth/forward",
			http.Header{"X-Original-URL": {"http://" + f.toolsHost + "/other/x"}, "X-Forwarded-Host": {f.salesHost}}, 404, ""},
		{"a browser's X-Forwarded-Uri beside the proxy's X-Original-URL", "/auth/forward",
			http.Header{"X-Original-URL": {"http://" + f.toolsHost + "/other/x"}, "X-Forwarded-Uri": {"/metabase/"}}, 404, ""},
		{"all agree (nginx sets them all)", "/auth/forward",
			http.Header{"X-Original-URL": {"http://" + strings.ToUpper(f.toolsHost) + "/metabase/q?a=1"}, "X-Forwarded-Host": {f.toolsHost},
				"X-Forwarded-Uri": {"/metabase/q?a=1"}, "X-Forwarded-Proto": {"http"}},
			401, signin("metabase", "http://"+f.toolsHost+"/metabase/q?a=1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := ""
			if tt.path == "/.gatehouse/auth" {
				host = f.toolsHost
			}
			res, body := f.ask(t, nil, tt.path, host, "", tt.h)
			if res.StatusCode != tt.status {
				t.Fatalf("%d, want %d: %s", res.StatusCode, tt.status, body)
			}
			if got := res.Header.Get("Location"); got != tt.location {
				t.Errorf("Location %q, want %q", got, tt.location)
			}
			if got := res.Header.Get("X-Auth-Redirect"); got != tt.location {
				t.Errorf("X-Auth-Redirect %q, want %q", got, tt.location)
			}
			if tt.status == 401 && (!strings.Contains(body, "Sign in") || res.Header.Get("X-Forwarded-User") != "") {
				t.Errorf("401 without the sign-in page, or with an identity: %s", body)
			}
		})
	}
	// Caddy and Traefik hand the answer to the browser: with ?redirect=1 a
	// navigation gets a redirect it follows, a form post or script still 401.
	h := http.Header{"X-Forwarded-Host": {f.salesHost}, "X-Forwarded-Uri": {"/"}, "X-Forwarded-Method": {"GET"}}
	if res, _ := f.ask(t, nil, "/auth/forward?redirect=1", "", "", h); res.StatusCode != http.StatusFound || res.Header.Get("Location") != signin("sales", "http://"+f.salesHost+"/") {
		t.Errorf("redirect=1, GET: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	h.Set("X-Forwarded-Method", "POST")
	if res, _ := f.ask(t, nil, "/auth/forward?redirect=1", "", "", h); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("redirect=1, POST: %d, want 401", res.StatusCode)
	}
	h.Set("X-Forwarded-Method", "GET")
	h.Set("Accept", "application/json")
	if res, _ := f.ask(t, nil, "/auth/forward?redirect=1", "", "", h); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("redirect=1, a script: %d, want 401", res.StatusCode)
	}
}

// TestForwardAuthReadsNoBody: a question sent with a body that never
// comes is answered at once (a proxy that forwards the body gets its answer
// without Gatehouse waiting for it).
func TestForwardAuthReadsNoBody(t *testing.T) {
	f := newFwdEnv(t, "")
	for _, size := range []string{"Content-Length: 100", "Content-Length: 100000", "Transfer-Encoding: chunked"} {
		conn, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second)) // a hung test, not a speed check
		fmt.Fprintf(conn, "GET /auth/forward?app=sales HTTP/1.1\r\nHost: %s\r\n%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", f.addr, size)
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: no answer while the body was outstanding: %v", size, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", size, res.StatusCode)
		}
	}
}

func TestForwardAuthAllowsDeniesAndRevokes(t *testing.T) {
	f := newFwdEnv(t, "")
	ann := f.member(t, "ann@example.com")
	c := f.browser()

	// Anonymous: the 401's Location leads through sign-in, the app host's
	// start (its state) and callback (its cookie), back to the request.
	res, _ := f.ask(t, c, "/auth/forward", "", f.salesHost, http.Header{"X-Original-URL": {"http://" + f.salesHost + "/d/1?x=1"}})
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d", res.StatusCode)
	}
	seen, res, _ := walk(t, c, res.Header.Get("Location"), "ann@example.com")
	want := []string{"/apps/sales/signin", "/login", "/apps/sales/signin", "http://" + f.salesHost + "/.gatehouse/start",
		"/apps/sales/signin", "http://" + f.salesHost + "/.gatehouse/callback", "http://" + f.salesHost + "/d/1?x=1"}
	if len(seen) != len(want) {
		t.Fatalf("walked %v, want %v", seen, want)
	}
	for i, w := range want {
		if !strings.Contains(seen[i], w) {
			t.Errorf("hop %d: %s, want %s", i, seen[i], w)
		}
	}
	var names []string
	for _, ck := range c.Jar.Cookies(mustURL("http://" + f.salesHost + "/")) {
		names = append(names, ck.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "gatehouse_app_sales") {
		t.Fatalf("the app host holds %v, no gatehouse_app_sales", names)
	}

	// Allowed: 200 with the identity, whatever the proxy copied along
	// (an upgrade's headers, a body it should not have sent).
	h := http.Header{"X-Original-URL": {"http://" + f.salesHost + "/d/1"}, "Upgrade": {"websocket"}, "Connection": {"Upgrade"}}
	res, body := f.ask(t, c, "/auth/forward", "", f.salesHost, h)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("allowed: %d %s", res.StatusCode, body)
	}
	for name, want := range map[string]string{"X-Forwarded-User": "ann@example.com", "X-Forwarded-Email": "ann@example.com",
		"X-Forwarded-Groups": "sellers", "Remote-User": "ann@example.com", "X-Webauth-User": "ann@example.com",
		"X-Forwarded-Preferred-Username": ann.Name} {
		if got := res.Header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	tok, err := jwt.ParseSigned(res.Header.Get("X-Gatehouse-Assertion"), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("assertion: %v", err)
	}
	var claims jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil || !claims.Audience.Contains("http://"+f.salesHost) || claims.Subject == "" {
		t.Errorf("assertion claims %+v (%v), want aud http://%s", claims, err, f.salesHost)
	}
	// A socket or a write another origin's page sent (a sibling host of
	// the same site gets the Lax cookie sent along) is refused, as the
	// built-in proxy refuses it; the app's own pages and clients that
	// are no browser pass.
	for _, tc := range []struct {
		name   string
		h      http.Header
		status int
	}{
		{"a sibling's socket", http.Header{"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Origin": {"http://evil.example.com:" + f.port}}, 403},
		{"a socket from another port", http.Header{"Upgrade": {"websocket"}, "Origin": {"http://sales.example.com:1"}}, 403},
		{"a null origin's socket", http.Header{"Sec-Websocket-Key": {"x"}, "Origin": {"null"}}, 403},
		{"the app's own socket", http.Header{"Sec-Websocket-Key": {"x"}, "Origin": {"http://" + f.salesHost}}, 200},
		{"the app's own socket, any case", http.Header{"Sec-Websocket-Key": {"x"}, "Origin": {"HTTP://" + strings.ToUpper(f.salesHost)}}, 200},
		{"a socket from no browser", http.Header{"Sec-Websocket-Key": {"x"}}, 200},
		{"a sibling's form", http.Header{"X-Forwarded-Method": {"POST"}, "Sec-Fetch-Site": {"same-site"}, "Origin": {"http://evil.example.com"}}, 403},
		{"a sibling's form to ingress-nginx", http.Header{"X-Original-Method": {"DELETE"}, "Origin": {"http://evil.example.com"}}, 403},
		{"the app's own form", http.Header{"X-Forwarded-Method": {"POST"}, "Sec-Fetch-Site": {"same-origin"}, "Origin": {"http://" + f.salesHost}}, 200},
		{"a sibling's link", http.Header{"X-Forwarded-Method": {"GET"}, "Sec-Fetch-Site": {"same-site"}}, 200},
	} {
		tc.h.Set("X-Original-URL", "http://"+f.salesHost+"/api/live/ws")
		res, body := f.ask(t, c, "/auth/forward", "", f.salesHost, tc.h)
		if res.StatusCode != tc.status || (tc.status == 403 && !strings.Contains(body, "sent by another site")) {
			t.Errorf("%s: %d %.200q, want %d", tc.name, res.StatusCode, body, tc.status)
		}
	}
	// The same on the app's host, asked at /.gatehouse/auth.
	if res, _ := f.ask(t, c, "/.gatehouse/auth", f.salesHost, f.salesHost, http.Header{"X-Forwarded-Uri": {"/"}}); res.StatusCode != http.StatusOK ||
		res.Header.Get("X-Forwarded-User") != "ann@example.com" {
		t.Errorf("/.gatehouse/auth on the app host: %d %q", res.StatusCode, res.Header.Get("X-Forwarded-User"))
	}
	// The cookie is sealed for sales: useless for another app, even one
	// ann may open.
	if res, _ := f.ask(t, c, "/auth/forward?app=metabase", "", f.salesHost, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("sales's cookie for metabase: %d, want 401", res.StatusCode)
	}
	// Renamed for metabase, it does not open either.
	var sealed string
	for _, ck := range c.Jar.Cookies(mustURL("http://" + f.salesHost + "/")) {
		if ck.Name == "gatehouse_app_sales" {
			sealed = ck.Value
		}
	}
	for _, name := range []string{"gatehouse_app_metabase", "gatehouse_app"} {
		h := http.Header{"Cookie": {name + "=" + sealed}}
		if res, _ := f.ask(t, nil, "/auth/forward?app=metabase", "", "", h); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("sales's cookie as %s for metabase: %d, want 401", name, res.StatusCode)
		}
	}
	if n := f.countAudit(t, db.ActionAppOpen, "sales"); n != 1 {
		t.Errorf("%d app.open rows after the handshake and three answers, want 1", n)
	}

	// Revoked: the very next question is refused with the denial, audited
	// once a minute however often the proxy asks.
	if err := f.store.RemoveMember(context.Background(), db.Actor{Email: "test"}, f.sellers.ID, ann.ID); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		res, body = f.ask(t, c, "/auth/forward", "", f.salesHost, http.Header{"X-Original-URL": {"http://" + f.salesHost + "/d/1"}})
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "You cannot view this dashboard") ||
			!strings.Contains(body, f.base+"/dashboards/sales") || res.Header.Get("X-Forwarded-User") != "" {
			t.Fatalf("revoked: %d %s", res.StatusCode, body)
		}
	}
	if n := f.countAudit(t, db.ActionAccessDenied, "sales"); n != 1 {
		t.Errorf("%d denial rows for three refusals in a minute, want 1", n)
	}
	// nginx shows no body of a 403: its error_page asks for the denial page.
	res, body = send(t, c, "GET", "http://"+f.salesHost+"/.gatehouse/denied", http.Header{"X-Original-URL": {"http://" + f.salesHost + "/d/1"}}, nil)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "You cannot view this dashboard") {
		t.Errorf("denied page: %d %s", res.StatusCode, body)
	}
	// Granted again: the denied page sends the viewer back to the request.
	if err := f.store.AddMember(context.Background(), db.Actor{Email: "test"}, f.sellers.ID, ann.ID, 0); err != nil {
		t.Fatal(err)
	}
	res, _ = send(t, c, "GET", "http://"+f.salesHost+"/.gatehouse/denied", http.Header{"X-Original-URL": {"http://" + f.salesHost + "/d/1"}}, nil)
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/d/1" {
		t.Errorf("denied page once allowed: %d to %q, want 302 to /d/1", res.StatusCode, res.Header.Get("Location"))
	}
	// Signed out: the session is gone, so is the app host's cookie's worth.
	if err := f.store.RevokeUserSessions(context.Background(), ann.ID, ""); err != nil {
		t.Fatal(err)
	}
	if res, _ := f.ask(t, c, "/auth/forward", "", f.salesHost, http.Header{"X-Original-URL": {"http://" + f.salesHost + "/"}}); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("after the sessions ended: %d, want 401", res.StatusCode)
	}
}

// TestForwardAuthSignInStaysOnTheAppsHosts: the sign-in's next is kept
// only on an origin of the app's; anything else comes back to the app.
func TestForwardAuthSignInStaysOnTheAppsHosts(t *testing.T) {
	f := newFwdEnv(t, "")
	f.member(t, "ann@example.com")
	c := f.browser()
	for next, want := range map[string]string{
		"http://evil.example/steal":                    "http://" + f.salesHost + "/.gatehouse/start",
		"http://" + f.salesHost + "/ok":                "http://" + f.salesHost + "/.gatehouse/start",
		"http://" + f.toolsHost + "/metabase/":         "http://" + f.salesHost + "/.gatehouse/start",
		"//evil.example/":                              "http://sales.localhost:" + f.port + "/.gatehouse/start",
		"http://sales.localhost:" + f.port + "/fine":   "http://sales.localhost:" + f.port + "/.gatehouse/start",
		"https://" + f.salesHost + "/other-scheme":     "http://" + f.salesHost + "/.gatehouse/start",
		"http://ann@" + f.salesHost + "/with-userinfo": "http://" + f.salesHost + "/.gatehouse/start",
	} {
		seen, _, _ := walk(t, c, f.base+"/apps/sales/signin?next="+url.QueryEscape(next), "ann@example.com")
		var start string
		for _, s := range seen {
			if strings.Contains(s, "/.gatehouse/start") {
				start = s
			}
		}
		if !strings.HasPrefix(start, want) {
			t.Errorf("next %s: went to %v, want %s…", next, seen, want)
		}
		last := seen[len(seen)-1]
		if strings.Contains(last, "evil.example") || strings.Contains(last, "other-scheme") || strings.Contains(last, "with-userinfo") {
			t.Errorf("next %s: ended at %s", next, last)
		}
	}
}

// TestForwardAuthHostsServeOnlyTheirApps: a host a team's proxy serves
// answers the handshake's paths for the apps mounted there alone, and
// nothing else of Gatehouse's.
func TestForwardAuthHostsServeOnlyTheirApps(t *testing.T) {
	f := newFwdEnv(t, "")
	c := f.browser()
	for _, tc := range []struct {
		url    string
		status int
	}{
		{"http://" + f.salesHost + "/.gatehouse/start?app=metabase&next=%2F", http.StatusNotFound},             // metabase is not at this host
		{"http://" + f.toolsHost + "/.gatehouse/start?app=sales&next=%2F", http.StatusNotFound},                // nor sales at this one
		{"http://" + f.toolsHost + "/.gatehouse/start?app=metabase&next=%2F", http.StatusFound},                // metabase is
		{"http://" + f.toolsHost + "/.gatehouse/elsewhere?app=metabase", http.StatusNotFound},                  // no such path
		{"http://unknown.example.com:" + f.port + "/.gatehouse/start?app=sales&next=%2F", http.StatusNotFound}, // no app's host: the main routes' 404
	} {
		res, body := send(t, c, "GET", tc.url, nil, nil)
		if res.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d: %.200s", tc.url, res.StatusCode, tc.status, body)
		}
	}
}
