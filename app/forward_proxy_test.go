package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"gatehouse/app/dashboards"
	"gatehouse/db"
	"gatehouse/db/postgrestest"
)

// The proxies here run the configurations of docs/forward-auth.md, read
// from the document itself: the fenced block after each
// "<!-- config: PROXY FILE -->" line. The test changes only addresses:
//
//	nginx: "listen 80;" → a free port; gatehouse.internal:8080 → the test's
//	       Gatehouse; 127.0.0.1:3000 and :3001 → the test's upstream.
//	Caddy: the same, and "HOST {" → "http://HOST:PORT {".
//
// So what the document shows is what was run.

// forwardAuthDoc is the document holding the configurations.
const forwardAuthDoc = "../docs/forward-auth.md"

var configMarker = regexp.MustCompile("(?m)^<!-- config: (\\S+) (\\S+) -->\n```[a-z]*\n")

// docConfigs returns the document's configuration files for proxy, by name.
func docConfigs(t testing.TB, proxy string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(forwardAuthDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	files := map[string]string{}
	for _, m := range configMarker.FindAllStringSubmatchIndex(doc, -1) {
		if doc[m[2]:m[3]] != proxy {
			continue
		}
		body, _, ok := strings.Cut(doc[m[1]:], "\n```\n")
		if !ok {
			t.Fatalf("%s: the %s block is not closed", forwardAuthDoc, doc[m[4]:m[5]])
		}
		files[doc[m[4]:m[5]]] = body + "\n"
	}
	if len(files) == 0 {
		t.Fatalf("%s has no %s configuration", forwardAuthDoc, proxy)
	}
	return files
}

// needTool returns the path of a program a test runs; without it the test
// is skipped, or fails where CI=true.
func needTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (CI installs it: .ci/run)", name)
	}
	t.Skipf("%s is not installed; the forward-auth proxy tests need it (apt-get install %s)", name, name)
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// freePort returns a port nothing listens on just now.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// proxyEnv is Gatehouse and its upstream behind a real proxy running the
// document's configuration: grafana at a host of its own, metabase under
// /metabase/ of a shared host, both granted to sellers.
type proxyEnv struct {
	*appsEnv
	proxy                  string // the proxy's address
	grafanaHost, toolsHost string // as the browser writes them, with the proxy's port
	logs                   func() string
}

// proxyOpts changes what newProxyEnvWith starts (the benchmark's needs).
type proxyOpts struct {
	upstream  string                                // the apps' upstream ("": the recording one)
	nginxHTTP string                                // more of nginx's http block; PORT is the proxy's port
	configure []func(*Config, *dashboards.Registry) // Gatehouse's configuration
}

// newProxyEnv starts Gatehouse and the proxy ("nginx" or "caddy").
func newProxyEnv(t testing.TB, proxy string) *proxyEnv {
	t.Helper()
	return newProxyEnvWith(t, proxy, proxyOpts{})
}

func newProxyEnvWith(t testing.TB, proxy string, o proxyOpts) *proxyEnv {
	t.Helper()
	bin := needTool(t, proxy)
	dsn := ""
	if os.Getenv("GATEHOUSE_TEST_APP_DB") == "postgres" {
		dsn = postgrestest.Schema(t)
	}
	e := newAppsEnvOn(t, dsn, o.configure...)
	port := freePort(t)
	p := &proxyEnv{appsEnv: e, proxy: "127.0.0.1:" + port,
		grafanaHost: "grafana.example.com:" + port, toolsHost: "tools.example.com:" + port}
	ctx := context.Background()
	actor := db.Actor{Email: "test"}
	for _, a := range []db.App{
		{Slug: "grafana", Upstream: e.up.URL, Title: "Grafana", UserHeader: "X-WEBAUTH-USER", ExternalURL: "http://" + p.grafanaHost + "/"},
		{Slug: "metabase", Upstream: e.up.URL, Title: "Metabase", ExternalURL: "http://" + p.toolsHost + "/metabase/"},
	} {
		a, err := db.CleanApp(a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.CreateApp(ctx, actor, a); err != nil {
			t.Fatal(err)
		}
		if err := e.store.AddGrant(ctx, actor, a.Slug, e.sellers.ID); err != nil {
			t.Fatal(err)
		}
	}

	upstream := strings.TrimPrefix(e.up.URL, "http://")
	if o.upstream != "" {
		upstream = o.upstream
	}
	addrs := strings.NewReplacer("gatehouse.internal:8080", e.addr, "127.0.0.1:3000", upstream, "127.0.0.1:3001", upstream)
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	var cmd *exec.Cmd
	logFile := filepath.Join(dir, "error.log")
	switch proxy {
	case "nginx":
		var sites []string
		for name, text := range docConfigs(t, "nginx") {
			text = strings.ReplaceAll(addrs.Replace(text), "listen 80;", "listen 127.0.0.1:"+port+";")
			write(name, text)
			if !strings.HasPrefix(name, "snippets/") {
				sites = append(sites, "    include "+name+";")
			}
		}
		// Unprivileged: every path nginx writes is inside dir.
		conf := write("nginx.conf", fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[2]s
%[3]s
}
`, dir, strings.Join(sites, "\n"), strings.ReplaceAll(o.nginxHTTP, "PORT", port)))
		cmd = exec.Command(bin, "-p", dir, "-c", conf, "-e", logFile)
	case "caddy":
		files := docConfigs(t, "caddy")
		text := addrs.Replace(files["Caddyfile"])
		for _, host := range []string{"grafana.example.com", "tools.example.com"} {
			text = strings.ReplaceAll(text, "\n"+host+" {", "\nhttp://"+host+":"+port+" {")
			if strings.HasPrefix(text, host+" {") {
				text = "http://" + host + ":" + port + text[len(host):]
			}
		}
		conf := write("Caddyfile", "{\n\tadmin off\n}\n\n"+text)
		cmd = exec.Command(bin, "run", "--adapter", "caddyfile", "--config", conf)
		cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
		lf, err := os.Create(logFile)
		if err != nil {
			t.Fatal(err)
		}
		defer lf.Close()
		cmd.Stdout, cmd.Stderr = lf, lf
	default:
		t.Fatalf("no proxy %q", proxy)
	}
	p.logs = func() string { b, _ := os.ReadFile(logFile); return string(b) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", p.proxy); err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("%s exited at start:\n%s", proxy, p.logs())
		case <-time.After(20 * time.Millisecond):
		}
		if i > 500 {
			t.Fatalf("%s did not listen on %s within 10s:\n%s", proxy, p.proxy, p.logs())
		}
	}
	return p
}

// browser reaches Gatehouse's own address directly and every other host
// at the proxy, keeps cookies and follows no redirect.
func (p *proxyEnv) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != p.addr {
			addr = p.proxy
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	return &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestForwardAuthNginx(t *testing.T) { testForwardAuthProxy(t, "nginx") }

func TestForwardAuthCaddy(t *testing.T) { testForwardAuthProxy(t, "caddy") }

func testForwardAuthProxy(t *testing.T, proxy string) {
	p := newProxyEnv(t, proxy)
	ann := p.member(t, "ann@example.com")
	p.createUser(t, "bob@example.com", false)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\n%s log:\n%s", append(args, proxy, p.logs())...)
	}

	// Anonymous, at a host of its own: to the sign-in, the app host's
	// start and callback (through the proxy), and back to the request,
	// which reaches the upstream with ann's identity.
	c := p.browser()
	grafana := "http://" + p.grafanaHost
	seen, res, body := walk(t, c, grafana+"/d/1?x=1", "ann@example.com")
	if res.StatusCode != http.StatusOK || body != "upstream saw /d/1?x=1" {
		fail("anonymous → sign-in → back: %d %q after %v", res.StatusCode, body, seen)
	}
	for _, want := range []string{p.base + "/apps/grafana/signin?next=", p.base + "/login", grafana + "/.gatehouse/start", grafana + "/.gatehouse/callback"} {
		if !strings.Contains(strings.Join(seen, " "), want) {
			t.Errorf("the sign-in did not pass %s: %v", want, seen)
		}
	}
	got := p.up.last()
	for name, want := range map[string]string{"X-Forwarded-User": "ann@example.com", "X-Forwarded-Email": "ann@example.com",
		"X-Forwarded-Groups": "sellers", "Remote-User": "ann@example.com", "X-Webauth-User": "ann@example.com",
		"X-Forwarded-Preferred-Username": ann.Name} {
		if v := got.Header.Get(name); v != want {
			t.Errorf("the upstream saw %s %q, want %q", name, v, want)
		}
	}
	if a := got.Header.Get("X-Gatehouse-Assertion"); strings.Count(a, ".") != 2 {
		t.Errorf("the upstream saw no assertion: %q", a)
	}

	// Allowed, forging: the upstream sees Gatehouse's identity, never the
	// browser's, whatever the spelling.
	forged := http.Header{"X-Forwarded-User": {"ceo@example.com"}, "x-forwarded-email": {"ceo@example.com"},
		"X-Forwarded-Groups": {"admins"}, "X-Forwarded-Preferred-Username": {"ceo"}, "Remote-User": {"ceo"},
		"X-Gatehouse-Assertion": {"forged"}, "X-WEBAUTH-USER": {"ceo"}}
	res, body = send(t, c, "GET", grafana+"/forged", forged, nil)
	if res.StatusCode != http.StatusOK {
		fail("allowed, forging: %d %s", res.StatusCode, body)
	}
	got = p.up.last()
	for name, want := range map[string]string{"X-Forwarded-User": "ann@example.com", "X-Forwarded-Email": "ann@example.com",
		"X-Forwarded-Groups": "sellers", "Remote-User": "ann@example.com", "X-Webauth-User": "ann@example.com"} {
		if vs := got.Header.Values(name); len(vs) != 1 || vs[0] != want {
			t.Errorf("forged: the upstream saw %s %q, want only %q", name, vs, want)
		}
	}
	if a := got.Header.Values("X-Gatehouse-Assertion"); len(a) != 1 || a[0] == "forged" {
		t.Errorf("forged: the upstream saw assertions %q", a)
	}
	// A form post: the question is still a GET without the body (the
	// proxies ask so), and the post goes on with its body.
	res, body = send(t, c, "POST", grafana+"/submit", nil, url.Values{"q": {"1"}})
	if res.StatusCode != http.StatusOK || body != "upstream saw /submit" || p.up.last().Method != "POST" {
		fail("allowed, a form post: %d %q", res.StatusCode, body)
	}
	// Anonymous, forging: nothing reaches the upstream.
	n := p.up.count()
	res, _ = send(t, p.browser(), "GET", grafana+"/forged", forged, nil)
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), p.base+"/apps/grafana/signin?next=") {
		fail("anonymous, forging: %d to %q, want 302 to the sign-in", res.StatusCode, res.Header.Get("Location"))
	}
	if p.up.count() != n {
		t.Error("an anonymous request reached the upstream")
	}
	// An admin in no group, forging: Gatehouse's answer names no group,
	// and the browser's list must not stand in for it.
	p.createUser(t, "root@example.com", true)
	rc := p.browser()
	if _, res, body := walk(t, rc, grafana+"/d/2", "root@example.com"); res.StatusCode != http.StatusOK {
		fail("an admin in no group: %d %q", res.StatusCode, body)
	}
	if res, body := send(t, rc, "GET", grafana+"/forged", forged, nil); res.StatusCode != http.StatusOK {
		fail("an admin in no group, forging: %d %s", res.StatusCode, body)
	}
	if vs := p.up.last().Header.Values("X-Forwarded-Groups"); slices.Contains(vs, "admins") {
		t.Errorf("an admin in no group forged X-Forwarded-Groups: the upstream saw %q", vs)
	}

	// A path under a shared host: signed in already, so straight through
	// the handshake; the rest of the host is not Gatehouse's.
	tools := "http://" + p.toolsHost
	seen, res, body = walk(t, c, tools+"/metabase/q/7", "ann@example.com")
	if res.StatusCode != http.StatusOK || body != "upstream saw /metabase/q/7" {
		fail("path-mounted: %d %q after %v", res.StatusCode, body, seen)
	}
	if strings.Contains(strings.Join(seen, " "), "/login") {
		t.Errorf("signed in already, yet asked to log in: %v", seen)
	}
	if v := p.up.last().Header.Get("X-Forwarded-User"); v != "ann@example.com" {
		t.Errorf("path-mounted: the upstream saw X-Forwarded-User %q", v)
	}
	if res, body := send(t, p.browser(), "GET", tools+"/", nil, nil); res.StatusCode != http.StatusOK || !strings.Contains(body, "tools.example.com") {
		t.Errorf("the rest of the shared host: %d %q", res.StatusCode, body)
	}

	// The question names the app: carol, allowed only the built-in sales
	// app, cannot use her cookie for it to reach grafana by sending the
	// proxy a Host that names sales (nginx's first server takes any host).
	salesOnly, err := p.store.CreateGroup(context.Background(), db.Actor{Email: "test"}, "sales-only", "")
	if err != nil {
		t.Fatal(err)
	}
	carol := p.createUser(t, "carol@example.com", false)
	if err := p.store.AddMember(context.Background(), db.Actor{Email: "test"}, salesOnly.ID, carol.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := p.store.AddGrant(context.Background(), db.Actor{Email: "test"}, "sales", salesOnly.ID); err != nil {
		t.Fatal(err)
	}
	cc, res, _ := p.appsEnv.signIn(t, "carol@example.com", "/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("carol on the built-in sales app: %d", res.StatusCode)
	}
	var salesCookie string
	for _, ck := range cc.Jar.Cookies(mustURL(p.appURL("sales", "/"))) {
		salesCookie += ck.Name + "=" + ck.Value + "; "
	}
	n = p.up.count()
	res, body = send(t, p.browser(), "GET", p.appURL("sales", "/d/1"), http.Header{"Cookie": {salesCookie}}, nil)
	if res.StatusCode == http.StatusOK && strings.HasPrefix(body, "upstream saw") || p.up.count() != n {
		t.Errorf("carol reached an upstream through the proxy with another app's cookie: %d %q", res.StatusCode, body)
	}

	// Denied at sign-in: bob gets the 403 page with the request form.
	seen, res, body = walk(t, p.browser(), grafana+"/", "bob@example.com")
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "You cannot view this dashboard") || !strings.Contains(body, "Request access") {
		fail("bob: %d after %v\n%s", res.StatusCode, seen, body)
	}

	// Revoked: the very next request through the proxy is refused with
	// Gatehouse's denial page, and the upstream never sees it.
	if err := p.store.RemoveMember(context.Background(), db.Actor{Email: "test"}, p.sellers.ID, ann.ID); err != nil {
		t.Fatal(err)
	}
	n = p.up.count()
	for _, u := range []string{grafana + "/d/1", tools + "/metabase/q/7"} {
		res, body = send(t, c, "GET", u, nil, nil)
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "You cannot view this dashboard") || !strings.Contains(body, p.base+"/dashboards/") {
			fail("revoked, %s: %d %s", u, res.StatusCode, body)
		}
	}
	if p.up.count() != n {
		t.Error("a request after revocation reached the upstream")
	}
	if p.countAudit(t, db.ActionAccessDenied, "grafana") == 0 {
		t.Error("the denial is not audited")
	}
}

// TestForwardAuthNginxCannotCutOpenSockets shows what docs/forward-auth.md
// says forward authentication cannot do: nginx asks once, when a WebSocket
// opens; after the viewer's access ends, new requests are refused but the
// socket nginx already holds goes on carrying messages.
func TestForwardAuthNginxCannotCutOpenSockets(t *testing.T) { testOpenSocket(t, "nginx") }

// TestForwardAuthCaddyCannotCutOpenSockets: the same with Caddy, whose
// forward_auth copies the upgrade's headers into its question (Caddy
// #5430); Gatehouse answers it as a plain one.
func TestForwardAuthCaddyCannotCutOpenSockets(t *testing.T) { testOpenSocket(t, "caddy") }

func testOpenSocket(t *testing.T, proxy string) {
	p := newProxyEnv(t, proxy)
	ann := p.member(t, "ann@example.com")
	c := p.browser()
	grafana := "http://" + p.grafanaHost
	if _, res, _ := walk(t, c, grafana+"/", "ann@example.com"); res.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d", res.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+p.grafanaHost+"/ws", &websocket.DialOptions{HTTPClient: c})
	if err != nil {
		t.Fatalf("WebSocket through %s: %v\n%s", proxy, err, p.logs())
	}
	defer ws.CloseNow()
	echo := func(msg string) error {
		if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			return err
		}
		_, got, err := ws.Read(ctx)
		if err == nil && string(got) != "echo "+msg {
			err = fmt.Errorf("echo %q, want %q", got, "echo "+msg)
		}
		return err
	}
	if err := echo("before"); err != nil {
		t.Fatal(err)
	}
	if err := p.store.RemoveMember(context.Background(), db.Actor{Email: "test"}, p.sellers.ID, ann.ID); err != nil {
		t.Fatal(err)
	}
	if res, _ := send(t, c, "GET", grafana+"/", nil, nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("a new request after revocation: %d, want 403", res.StatusCode)
	}
	// The open socket is the proxy's, not Gatehouse's: it still answers.
	if err := echo("after"); err != nil {
		t.Fatalf("the socket %s holds closed after revocation (%v): update docs/forward-auth.md", proxy, err)
	}
	if proxy != "nginx" {
		return
	}
	// How much gets through in two seconds (a measurement for the
	// document, not a check).
	n := 0
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); n++ {
		if err := echo("more"); err != nil {
			t.Fatalf("after %d messages: %v", n, err)
		}
	}
	t.Logf("%d messages went through nginx's open socket in the 2 s after revocation", n)
}
