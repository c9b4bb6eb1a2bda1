package e2e

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"gatehouse/db/postgrestest"
	"gatehouse/e2e/axe"
)

// frameUpstream is an app behind Gatehouse, as teams run them: a page
// whose script opens a WebSocket to its own origin, and which forbids
// being framed (X-Frame-Options and frame-ancestors 'none'). The page
// tells the page framing it what it sees (postMessage), and the server
// counts the sockets it holds.
type frameUpstream struct {
	*httptest.Server
	mu          sync.Mutex
	open        map[string]int // sockets held, by the Host they came for
	opened      map[string]int // sockets ever opened, by Host
	socketUsers []string
}

const frameUpstreamPage = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Orders upstream</title></head>
<body data-user="%s" data-probe="%s"><h1>Orders upstream</h1><pre id="log"></pre>
<script>
const log = document.getElementById("log");
function say(s) {
	log.textContent += s + "\n";
	if (parent !== window) parent.postMessage("upstream: " + s, "*");
}
say("page for " + document.body.dataset.user);
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
ws.onopen = () => { say("socket open"); ws.send("hello"); };
ws.onmessage = (e) => say("got " + e.data);
ws.onclose = (e) => say("socket closed " + e.code + " " + e.reason);
const probe = document.body.dataset.probe;
if (probe) {
	const other = new WebSocket(probe);
	other.onopen = () => say("probe open");
	other.onclose = (e) => say("probe closed " + e.code);
}
</script></body></html>`

func newFrameUpstream(t *testing.T) *frameUpstream {
	t.Helper()
	up := &frameUpstream{open: map[string]int{}, opened: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; connect-src 'self' ws:; frame-ancestors 'none'")
		// The ops app's page also tries a socket to the orders app:
		// another app's page, framed in Gatehouse's page like it.
		probe := ""
		if rest, ok := strings.CutPrefix(r.Host, "ops."); ok {
			probe = "ws://orders." + rest + "/ws"
		}
		fmt.Fprintf(w, frameUpstreamPage, html.EscapeString(r.Header.Get("X-Forwarded-User")), html.EscapeString(probe))
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		// Any Origin: refusing foreign ones is Gatehouse's job.
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		user, host := r.Header.Get("X-Forwarded-User"), r.Host
		up.mu.Lock()
		up.open[host]++
		up.opened[host]++
		up.socketUsers = append(up.socketUsers, user)
		up.mu.Unlock()
		defer func() {
			up.mu.Lock()
			up.open[host]--
			up.mu.Unlock()
		}()
		for {
			_, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if string(msg) == "hello" {
				if err := c.Write(r.Context(), websocket.MessageText, []byte("hi "+user)); err != nil {
					return
				}
			}
		}
	})
	up.Server = httptest.NewServer(mux)
	t.Cleanup(up.Close)
	return up
}

// sockets returns how many sockets the upstream holds for host.
func (up *frameUpstream) sockets(host string) int {
	up.mu.Lock()
	defer up.mu.Unlock()
	return up.open[host]
}

// waitSockets waits until the upstream holds n open sockets for host.
func (up *frameUpstream) waitSockets(t *testing.T, what, host string, n int) {
	t.Helper()
	deadline := time.Now().Add(liveBound)
	for up.sockets(host) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the upstream holds %d sockets for %s, want %d", what, up.sockets(host), host, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// collectMessages makes every page the tab opens keep the messages framed
// pages post to it in window.e2eMessages, from the first moment (a frame
// may load before a test could add a listener).
func collectMessages(t *testing.T, tb *tab) {
	t.Helper()
	tb.run(t, "collect posted messages", chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(`window.e2eMessages = [];
			window.addEventListener("message", (e) => window.e2eMessages.push(e.origin + " " + e.data));`).Do(ctx)
		return err
	}))
}

// frameView is what an app's dashboard page shows.
type frameView struct {
	Frames     int    `json:"frames"`
	Title      string `json:"title"`
	Src        string `json:"src"`
	FullScreen string `json:"fullScreen"`
	Denials    int    `json:"denials"`
	Forms      int    `json:"forms"`
}

const frameViewJS = `(() => {
	const body = document.querySelector("#dashboard-body");
	if (!body) return {frames: 0, denials: 0, forms: 0};
	const f = body.querySelector("iframe");
	const full = [...body.querySelectorAll("a")].find((a) => a.textContent.trim() === "Open full screen");
	return {
		frames: body.querySelectorAll("iframe").length,
		title: f ? f.title : "", src: f ? f.src : "",
		fullScreen: full ? full.href : "",
		denials: body.querySelectorAll(".denied").length,
		forms: body.querySelectorAll('form[action$="/request"]').length,
	};
})()`

func (tb *tab) waitFrameView(t *testing.T, what string, ok func(frameView) bool) frameView {
	t.Helper()
	deadline := time.Now().Add(liveBound)
	var v frameView
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		err := chromedp.Run(ctx, chromedp.Evaluate(frameViewJS, &v))
		cancel()
		if err == nil && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s tab: waited %s for %s; page: %+v (%v)\n%s", tb.name, liveBound, what, v, err, tb.where())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitMessage waits until a framed page of origin has posted a message
// containing text, at least n times, and returns every message so far.
func (tb *tab) waitMessage(t *testing.T, origin, text string, n int) []string {
	t.Helper()
	cond := fmt.Sprintf(`(window.e2eMessages || []).filter((m) => m.startsWith(%q + " ") && m.includes(%q)).length >= %d`, origin, text, n)
	tb.waitFor(t, fmt.Sprintf("%q posted %d times by %s", text, n, origin), cond, liveBound)
	var msgs []string
	tb.eval(t, `window.e2eMessages`, &msgs)
	return msgs
}

// checkFramedLooks is checkLooks for a page framing another origin: axe
// checks Gatehouse's page and leaves the app's frame alone (the app is
// not Gatehouse's to fix, and a cross-origin frame without axe would make
// axe wait for it).
func (tb *tab) checkFramedLooks(t *testing.T, state string) {
	t.Helper()
	run := strings.Replace(axeRunJS, "axe.run(document, {", "axe.run(document, {iframes: false, ", 1)
	for _, l := range looks {
		l.apply(t, tb)
		tb.run(t, "settle", chromedp.Sleep(50*time.Millisecond))
		var loaded bool
		tb.eval(t, `typeof window.axe === "object"`, &loaded)
		if !loaded {
			tb.run(t, "load axe-core", chromedp.Evaluate(axe.Source, nil))
		}
		var out []string
		tb.run(t, "run axe-core", chromedp.Evaluate(run, &out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
			return p.WithAwaitPromise(true)
		}))
		for _, v := range out {
			t.Errorf("%s at %s: %s", state, l.name, v)
		}
		// At every size the frame is as wide as the page's content and
		// leaves the page nothing to scroll sideways.
		var fit struct {
			Frame   float64 `json:"frame"`
			Content float64 `json:"content"`
			Scroll  int     `json:"scroll"`
			Inner   int     `json:"inner"`
			Height  float64 `json:"height"`
		}
		tb.eval(t, `(() => { const f = document.querySelector("iframe"); const b = document.querySelector("#dashboard-body");
			return {frame: f ? f.getBoundingClientRect().width : 0, content: b.getBoundingClientRect().width,
				height: f ? f.getBoundingClientRect().height : 0,
				scroll: document.documentElement.scrollWidth, inner: document.documentElement.clientWidth}; })()`, &fit)
		if fit.Frame != 0 && (fit.Frame < fit.Content-1 || fit.Height < 300) {
			t.Errorf("%s at %s: the frame is %.0f×%.0f px in content %.0f px wide", state, l.name, fit.Frame, fit.Height, fit.Content)
		}
		if fit.Scroll > fit.Inner {
			t.Errorf("%s at %s: the page scrolls sideways (%d > %d)", state, l.name, fit.Scroll, fit.Inner)
		}
		if dir := os.Getenv("GATEHOUSE_TOUR_SHOTS"); dir != "" {
			var png []byte
			tb.run(t, "screenshot", chromedp.FullScreenshot(&png, 100))
			name := unsafeName.ReplaceAllString(strings.ToLower(state), "-") + "." + l.name + ".png"
			if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	looks[0].apply(t, tb)
}

// frameTitles returns the titles of the documents in the page's
// out-of-process frames (a frame of another site than its page): what a
// person sees there, which the page's own scripts may not read. DevTools
// attaches to each frame to ask.
func (tb *tab) frameTitles(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	infos, err := chromedp.Targets(ctx)
	if err != nil {
		t.Fatalf("listing the browser's targets: %v", err)
	}
	var titles []string
	for _, info := range infos {
		if info.Type != "iframe" {
			continue
		}
		// Cancelling a context attached to a frame would close the frame:
		// it is left until the test ends.
		fctx, fcancel := chromedp.NewContext(tb.ctx, chromedp.WithTargetID(info.TargetID))
		t.Cleanup(fcancel)
		var title string
		ectx, ecancel := context.WithTimeout(fctx, 5*time.Second)
		err := chromedp.Run(ectx, chromedp.Evaluate(`document.title`, &title))
		ecancel()
		if err == nil {
			titles = append(titles, title)
		}
	}
	return titles
}

// TestAppFramedInChromium: alice opens an app on its dashboard page. The
// upstream forbids framing; Gatehouse lets its own page frame it, the
// sign-in runs inside the frame (partitioned cookies: the main origin
// 127.0.0.1 and the app's orders.localhost are different sites), and the
// app's own WebSocket works there. Losing access, from the command line or
// the admin panel, replaces the frame with the one denial and cuts the
// socket; regaining it brings the frame back without a reload. Full screen
// works at the app's origin; a socket another app's page opens with alice's
// cookie is refused; with the upstream down, Gatehouse's 502 page shows in
// the frame.
func TestAppFramedInChromium(t *testing.T) {
	up := newFrameUpstream(t)
	addr := freeAddr(t) // the apps' origins take the base URL's port: not 0
	srv := startServer(t, nil, "--demo", "--addr", addr)
	port := addr[strings.LastIndex(addr, ":")+1:]
	ordersHost := "orders.localhost:" + port
	appOrigin := "http://" + ordersHost
	srv.cli(t, "apps", "add", "orders", up.URL, "--title", "Orders app")
	srv.cli(t, "grants", "add", "orders", "sales")

	b := newBrowser(t)
	alice := b.newTab(t, "alice")
	admin := b.newTab(t, "admin")
	collectMessages(t, alice)
	logIn(t, alice, srv.URL, "alice@demo.example", demoPassword)
	logIn(t, admin, srv.URL, "admin@demo.example", demoPassword)

	framed := func(v frameView) bool { return v.Frames == 1 && v.Denials == 0 }
	oneDenialNoFrame := func(v frameView) bool { return v.Frames == 0 && v.Denials == 1 && v.Forms == 1 }
	samePage := func(t *testing.T) {
		t.Helper()
		var ok bool
		alice.eval(t, `window.e2eSamePage === true && location.pathname === "/dashboards/orders"`, &ok)
		if !ok {
			t.Error("the dashboard page was reloaded or left; it must change in place")
		}
	}
	removeInPanel := func(group string) {
		admin.open(t, srv.URL+"/admin/groups")
		admin.click(t, fmt.Sprintf(`//div[@id="groups-table"]//a[normalize-space(.)=%q]`, group))
		admin.waitFor(t, "the group's page", `/^\/admin\/groups\/\d+$/.test(location.pathname) && document.readyState === "complete"`, actionTimeout)
		admin.click(t, `//tr[contains(., "alice@demo.example")]//button[normalize-space(.)="Remove"]`)
	}
	sockets := 0 // sockets alice's frames opened so far

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"framed", func(t *testing.T) {
			alice.open(t, srv.URL+"/dashboards/orders")
			v := alice.waitFrameView(t, "the app's frame", framed)
			if v.Title != "Orders app" || v.Src != appOrigin+"/" || v.FullScreen != appOrigin+"/" {
				t.Errorf("frame %+v, want titled Orders app, showing and linking to %s/", v, appOrigin)
			}
			// The upstream's page ran inside the frame as alice: signed in
			// there, and its socket answered through Gatehouse.
			alice.waitMessage(t, appOrigin, "upstream: page for alice@demo.example", 1)
			alice.waitMessage(t, appOrigin, "upstream: got hi alice@demo.example", 1)
			sockets++
			up.waitSockets(t, "framed", ordersHost, 1)
			alice.checkFramedLooks(t, "app framed")
			var ok bool
			alice.eval(t, `window.e2eSamePage = true`, &ok)
		}},
		{"revoked_from_the_cli", func(t *testing.T) {
			srv.cli(t, "groups", "remove-member", "sales", "alice@demo.example")
			alice.waitFrameView(t, "one denial in place of the frame", oneDenialNoFrame)
			up.waitSockets(t, "after groups remove-member", ordersHost, 0)
			// The frame's socket was told why before the frame went.
			alice.waitMessage(t, appOrigin, "upstream: socket closed 4403 access revoked", 1)
			if got := alice.text(t, "#dashboard-body h2"); got != "You cannot view this dashboard" {
				t.Errorf("the denial's heading = %q", got)
			}
			samePage(t)
			alice.checkFramedLooks(t, "app denied")
		}},
		{"regranted_from_the_cli", func(t *testing.T) {
			srv.cli(t, "groups", "add-member", "sales", "alice@demo.example")
			alice.waitFrameView(t, "the frame back", framed)
			sockets++
			alice.waitMessage(t, appOrigin, "upstream: got hi alice@demo.example", int(sockets))
			up.waitSockets(t, "regranted", ordersHost, 1)
			samePage(t)
		}},
		{"revoked_in_the_admin_panel", func(t *testing.T) {
			removeInPanel("sales")
			alice.waitFrameView(t, "one denial in place of the frame", oneDenialNoFrame)
			up.waitSockets(t, "after Remove in the admin panel", ordersHost, 0)
			alice.waitMessage(t, appOrigin, "upstream: socket closed 4403 access revoked", 2)
			samePage(t)
			srv.cli(t, "groups", "add-member", "sales", "alice@demo.example")
			alice.waitFrameView(t, "the frame back", framed)
			sockets++
			alice.waitMessage(t, appOrigin, "upstream: got hi alice@demo.example", int(sockets))
		}},
		{"full_screen", func(t *testing.T) {
			alice.click(t, `//a[normalize-space(.)="Open full screen"]`)
			alice.waitFor(t, "the app at its own origin", fmt.Sprintf(`location.origin === %q && document.readyState === "complete"`, appOrigin), actionTimeout)
			alice.waitFor(t, "the upstream's socket answering", `document.body.innerText.includes("got hi alice@demo.example")`, liveBound)
			if got := alice.text(t, "h1"); got != "Orders upstream" {
				t.Errorf("full screen shows %q", got)
			}
		}},
		{"foreign_origin_socket_refused", func(t *testing.T) {
			// Another app, ops, framed in Gatehouse's page as orders was:
			// its page opens a socket to orders. Alice's partitioned
			// orders cookie goes with it (the same top-level site), the
			// Origin is ops's, and Gatehouse refuses it before the upstream.
			srv.cli(t, "apps", "add", "ops", up.URL, "--title", "Ops app")
			srv.cli(t, "grants", "add", "ops", "sales")
			opsHost := "ops.localhost:" + port
			opsOrigin := "http://" + opsHost
			up.mu.Lock()
			before := up.opened[ordersHost]
			up.mu.Unlock()
			alice.open(t, srv.URL+"/dashboards/ops")
			alice.waitMessage(t, opsOrigin, "upstream: got hi alice@demo.example", 1)
			alice.waitMessage(t, opsOrigin, "upstream: probe closed 1006", 1)
			up.mu.Lock()
			orders, ops := up.opened[ordersHost]-before, up.opened[opsHost]
			up.mu.Unlock()
			if orders != 0 || ops != 1 {
				t.Errorf("the upstream got %d sockets for orders and %d for ops; want ops's own alone", orders, ops)
			}
			// The request line is written once the handler returns, which
			// may be after the page saw its socket close.
			logged := func() bool { return strings.Contains(srv.log.String(), `path=/ws status=403`) }
			for deadline := time.Now().Add(actionTimeout); !logged() && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			if !logged() {
				t.Errorf("Gatehouse logged no 403 for the foreign socket (a 401 would mean the cookie was not sent and the Origin never checked)")
			}
		}},
		{"upstream_down_in_the_frame", func(t *testing.T) {
			// Gatehouse's own 502 page shows in the frame: the main
			// origin may frame it. (Last: DevTools stays attached to the
			// frame, which upsets later navigations of the tab.)
			srv.cli(t, "apps", "set", "orders", "--url", "http://"+freeAddr(t))
			alice.open(t, srv.URL+"/dashboards/orders")
			want := "Orders app is down · Orders app · Gatehouse"
			alice.waitFrameView(t, "the app's frame", framed)
			deadline := time.Now().Add(liveBound)
			for !slices.Contains(alice.frameTitles(t), want) {
				if time.Now().After(deadline) {
					t.Fatalf("frames show %q, want %q", alice.frameTitles(t), want)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}},
	}
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			defer admin.assertClean(t)
			defer alice.assertClean(t)
			s.run(t)
		})
		if !ok {
			return // later steps build on this one
		}
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	for _, u := range up.socketUsers {
		if u != "alice@demo.example" {
			t.Errorf("the upstream got a socket for %q", u)
		}
	}
}

// TestAppFramedTwoInstancesPostgres: two instances share one PostgreSQL
// database. Alice holds the app's socket, framed, through instance A; an
// admin removes her from the granted group in instance B's admin panel.
// Instance A learns it from the database's notifications: it cuts the
// socket and her page shows the denial in place of the frame.
func TestAppFramedTwoInstancesPostgres(t *testing.T) {
	dsn := postgrestest.Schema(t)
	up := newFrameUpstream(t)
	addrA, addrB := freeAddr(t), freeAddr(t)
	srvA := startServer(t, nil, "--demo", "--db", dsn, "--addr", addrA)
	srvB := startServer(t, nil, "--demo", "--db", dsn, "--addr", addrB)
	portA := addrA[strings.LastIndex(addrA, ":")+1:]
	hostA := "orders.localhost:" + portA
	srvA.cli(t, "apps", "add", "orders", up.URL, "--title", "Orders app", "--db", dsn)
	srvA.cli(t, "grants", "add", "orders", "sales", "--db", dsn)

	b := newBrowser(t)
	alice := b.newTab(t, "alice")
	admin := b.newTab(t, "admin")
	collectMessages(t, alice)
	logIn(t, alice, srvA.URL, "alice@demo.example", demoPassword)
	logIn(t, admin, srvB.URL, "admin@demo.example", demoPassword)
	alice.open(t, srvA.URL+"/dashboards/orders")
	alice.waitFrameView(t, "the app's frame on A", func(v frameView) bool { return v.Frames == 1 && v.Denials == 0 })
	alice.waitMessage(t, "http://"+hostA, "upstream: got hi alice@demo.example", 1)
	up.waitSockets(t, "framed on A", hostA, 1)

	admin.open(t, srvB.URL+"/admin/groups")
	admin.click(t, `//div[@id="groups-table"]//a[normalize-space(.)="sales"]`)
	admin.waitFor(t, "the group's page", `/^\/admin\/groups\/\d+$/.test(location.pathname) && document.readyState === "complete"`, actionTimeout)
	admin.click(t, `//tr[contains(., "alice@demo.example")]//button[normalize-space(.)="Remove"]`)

	up.waitSockets(t, "after Remove on B", hostA, 0)
	alice.waitMessage(t, "http://"+hostA, "upstream: socket closed 4403 access revoked", 1)
	alice.waitFrameView(t, "one denial in place of the frame on A", func(v frameView) bool { return v.Frames == 0 && v.Denials == 1 && v.Forms == 1 })
	alice.assertClean(t)
	admin.assertClean(t)
}
