package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"gatehouse/db"
)

// cookieNamed returns the cookie called name among cs, or nil.
func cookieNamed(cs []*http.Cookie, name string) *http.Cookie {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestAppsSignInInsideAFrame walks the handshake as a cross-site frame
// does (Sec-Fetch-Dest: iframe). There the browser keeps only partitioned
// cookies (CHIPS) set inside the frame, so the state and the app cookie
// must be Partitioned, SameSite=None and Secure (http://*.localhost is a
// secure context); a top-level sign-in keeps the Lax host-only cookie.
// The chromium test (e2e/apps_frame_test.go) shows the browser agrees.
func TestAppsSignInInsideAFrame(t *testing.T) {
	e := newAppsEnv(t)
	e.member(t, "ann@example.com")
	main := e.login(t, "ann@example.com")
	frame := e.browser()
	frame.Jar = nil // cookies by hand: Go's jar keeps Secure ones from http URLs to itself
	inFrame := http.Header{"Sec-Fetch-Dest": {"iframe"}, "Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"navigate"}}
	with := func(cookies ...*http.Cookie) http.Header {
		h := inFrame.Clone()
		var parts []string
		for _, c := range cookies {
			parts = append(parts, c.Name+"="+c.Value)
		}
		h.Set("Cookie", strings.Join(parts, "; "))
		return h
	}

	res, _ := send(t, frame, "GET", e.appURL("sales", "/report"), inFrame, nil)
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), e.base+"/apps/sales/signin?") {
		t.Fatalf("framed, no cookie: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	state := cookieNamed(res.Cookies(), "gatehouse_app_framed_state")
	if state == nil || !state.Partitioned || !state.Secure || state.SameSite != http.SameSiteNoneMode || !state.HttpOnly || state.Path != "/" {
		t.Fatalf("framed sign-in state cookie %+v, want Partitioned, Secure, SameSite=None, HttpOnly, Path /", state)
	}
	if c := cookieNamed(res.Cookies(), "gatehouse_app_state"); c != nil {
		t.Errorf("framed sign-in also set the Lax state cookie %+v, which a cross-site frame drops", c)
	}

	cb := e.callbackFor(t, main, res.Header.Get("Location"))
	res, body := send(t, frame, "GET", cb.String(), with(state), nil)
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/report" {
		t.Fatalf("framed callback: %d to %q: %s", res.StatusCode, res.Header.Get("Location"), body)
	}
	framed := cookieNamed(res.Cookies(), "gatehouse_app_framed")
	if framed == nil || !framed.Partitioned || !framed.Secure || framed.SameSite != http.SameSiteNoneMode || !framed.HttpOnly || framed.Path != "/" || framed.Domain != "" {
		t.Fatalf("framed app cookie %+v, want host-only, Partitioned, Secure, SameSite=None, HttpOnly, Path /", framed)
	}
	if lax := cookieNamed(res.Cookies(), "gatehouse_app"); lax == nil || lax.SameSite != http.SameSiteLaxMode || lax.Partitioned {
		t.Errorf("framed callback's Lax cookie %+v: the same-site (production) frame keeps it", lax)
	}
	if gone := cookieNamed(res.Cookies(), "gatehouse_app_framed_state"); gone == nil || gone.MaxAge >= 0 || !gone.Partitioned {
		t.Errorf("the framed state cookie is not removed (in its partition): %+v", gone)
	}

	// The partitioned cookie alone opens the app; it never reaches the upstream.
	res, body = send(t, frame, "GET", e.appURL("sales", "/report"), with(framed, &http.Cookie{Name: "theirs", Value: "1"}), nil)
	if res.StatusCode != http.StatusOK || body != "upstream saw /report" {
		t.Fatalf("framed, with the partitioned cookie: %d %q", res.StatusCode, body)
	}
	if ck := e.up.last().Header.Values("Cookie"); len(ck) != 1 || ck[0] != "theirs=1" {
		t.Errorf("upstream got Cookie %q, want the upstream's own alone", ck)
	}

	// A stale top-level cookie sent first (its session logged out) does
	// not hide a live framed one.
	top, _, _ := e.signIn(t, "ann@example.com", "/")
	stale := cookieNamed(top.Jar.Cookies(mustURL(e.appURL("sales", "/"))), "gatehouse_app")
	if stale == nil {
		t.Fatal("the top-level sign-in set no gatehouse_app cookie")
	}
	if res, _ := send(t, top, "POST", e.base+"/logout", nil, url.Values{}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	res, body = send(t, frame, "GET", e.appURL("sales", "/page"), with(stale, framed), nil)
	if res.StatusCode != http.StatusOK || body != "upstream saw /page" {
		t.Errorf("a stale top-level cookie beside a live framed one: %d %q", res.StatusCode, body)
	}
	res, _ = send(t, frame, "GET", e.appURL("sales", "/page"), with(stale), nil)
	if res.StatusCode != http.StatusFound {
		t.Errorf("the stale cookie alone: %d, want 302 to sign in", res.StatusCode)
	}

	// A top-level sign-in sets no partitioned cookie at all.
	top = e.browser()
	res, _ = send(t, top, "GET", e.appURL("sales", "/"), nil, nil)
	for _, c := range res.Cookies() {
		if c.Partitioned || c.Name != "gatehouse_app_state" || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("top-level sign-in set cookie %+v, want the Lax state cookie alone", c)
		}
	}
}

// TestAppsFrameable: an app's responses may be framed by the main origin
// (and the app itself) only, whatever the upstream said; Gatehouse's own
// pages on the app origin likewise; the main origin is never framed, and
// only an app's dashboard page may frame, only that app.
func TestAppsFrameable(t *testing.T) {
	e := newAppsEnv(t)
	e.member(t, "ann@example.com")
	c, res, _ := e.signIn(t, "ann@example.com", "/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("signed in: %d", res.StatusCode)
	}
	wantFA := "frame-ancestors " + e.base + " 'self'"
	if csp := res.Header.Values("Content-Security-Policy"); len(csp) != 1 || csp[0] != wantFA || res.Header.Get("X-Frame-Options") != "" {
		t.Errorf("proxied response: CSP %q, X-Frame-Options %q; want %q alone", csp, res.Header.Get("X-Frame-Options"), wantFA)
	}
	res, _ = send(t, c, "GET", e.appURL("sales", "/.gatehouse/nothing"), nil, nil)
	if csp := res.Header.Get("Content-Security-Policy"); res.StatusCode != http.StatusNotFound || !strings.HasSuffix(csp, "; frame-ancestors "+e.base) {
		t.Errorf("Gatehouse's page on the app origin: %d, CSP %q, want framed by the main origin only", res.StatusCode, csp)
	}

	res, body := send(t, c, "GET", e.base+"/dashboards/sales", nil, nil)
	csp := res.Header.Get("Content-Security-Policy")
	if res.StatusCode != http.StatusOK ||
		!strings.HasSuffix(csp, "; frame-src "+e.appURL("sales", "")+" "+e.base+"/apps/sales/signin") ||
		!strings.Contains(csp, "frame-ancestors 'none'") || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("the app's dashboard page: %d, CSP %q, X-Frame-Options %q", res.StatusCode, csp, res.Header.Get("X-Frame-Options"))
	}
	for _, want := range []string{
		`<iframe id="app-frame-sales" class="app-frame" src="` + e.appURL("sales", "/") + `" title="Sales app"`,
		`href="` + e.appURL("sales", "/") + `">Open full screen</a>`,
		`sse-connect="/dashboards/sales/events?state=a%3A"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the app's dashboard page lacks %s", want)
		}
	}

	// Denied, the page shows the denial, no frame, and may still frame
	// the app: regaining access brings the frame into this page.
	ann, err := e.store.UserByEmail(context.Background(), "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.RemoveMember(context.Background(), db.Actor{Email: "test"}, e.sellers.ID, ann.ID); err != nil {
		t.Fatal(err)
	}
	res, body = send(t, c, "GET", e.base+"/dashboards/sales", nil, nil)
	if res.StatusCode != http.StatusForbidden || strings.Contains(body, "<iframe") || !strings.Contains(body, "You cannot view this dashboard") ||
		res.Header.Get("Content-Security-Policy") != csp {
		t.Errorf("denied: %d, frame shown %v, CSP %q", res.StatusCode, strings.Contains(body, "<iframe"), res.Header.Get("Content-Security-Policy"))
	}
	// The app origin's own 403, shown in the frame, leads to the request
	// form in the whole window (Gatehouse's pages are never framed).
	res, body = send(t, c, "GET", e.appURL("sales", "/"), nil, nil)
	if want := `<a href="` + e.base + `/dashboards/sales" target="_top">`; res.StatusCode != http.StatusForbidden || !strings.Contains(body, want) ||
		!strings.HasSuffix(res.Header.Get("Content-Security-Policy"), "; frame-ancestors "+e.base) {
		t.Errorf("denied on the app origin: %d, CSP %q, want a link %s in %s", res.StatusCode, res.Header.Get("Content-Security-Policy"), want, body)
	}
	// Every other page frames nothing.
	res, _ = send(t, c, "GET", e.base+"/", nil, nil)
	if got := res.Header.Get("Content-Security-Policy"); got != contentSecurityPolicy {
		t.Errorf("home page CSP %q", got)
	}
}
