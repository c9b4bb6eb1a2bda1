package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"gatehouse/app/apps"
	"gatehouse/db"
)

// Real dashboards behind Gatehouse: Node-RED with node-red-dashboard, the
// Jupyter Notebook and a Plotly app on Flask, each started by its test
// (.ci/run installs them). Where CI=true a missing one fails the test;
// elsewhere the test is skipped with what to install.
//
//	GATEHOUSE_TEST_NODE_RED  the node-red command (default
//	                         /opt/node-red/node_modules/.bin/node-red, as
//	                         `npm install --prefix /opt/node-red` puts it)
//	GATEHOUSE_TEST_JUPYTER   the jupyter-notebook command (default: on PATH)
//	GATEHOUSE_TEST_PYTHON    a python3 with flask and plotly (default
//	                         /usr/bin/python3, Debian's)

// needUpstream returns the command named by env (else def), or skips the
// test (fails it under CI) when it cannot run: check runs it to see.
func needUpstream(t *testing.T, env, def, install string, check ...string) string {
	t.Helper()
	cmd := os.Getenv(env)
	if cmd == "" {
		cmd = def
	}
	path, err := exec.LookPath(cmd)
	if err == nil && len(check) > 0 {
		if out, cerr := exec.Command(path, check...).CombinedOutput(); cerr != nil {
			err = fmt.Errorf("%s %s: %v: %s", path, strings.Join(check, " "), cerr, bytes.TrimSpace(out))
		}
	}
	if err != nil {
		msg := fmt.Sprintf("%s cannot run (%v): install %s, or set %s", cmd, err, install, env)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// upstreamProc is a real upstream the test started, in its own process
// group (with whatever it starts, such as Jupyter's kernels).
type upstreamProc struct {
	name   string
	mu     sync.Mutex
	out    bytes.Buffer
	exited chan struct{}
	lines  chan string
}

func (p *upstreamProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *upstreamProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startUpstream starts cmd; it is killed, with its process group, when the
// test ends, and its output is logged if the test failed. Its stdout
// lines are also sent to lines (dropped when nobody reads them).
func startUpstream(t *testing.T, name string, cmd *exec.Cmd) *upstreamProc {
	t.Helper()
	p := &upstreamProc{name: name, exited: make(chan struct{}), lines: make(chan string, 16)}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = p
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			_, _ = p.Write(append(sc.Bytes(), '\n'))
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.output())
		}
	})
	return p
}

// waitReady polls url (every 20 ms, for at most a minute) until it
// answers 200, and fails the test if the upstream exits first.
func (p *upstreamProc) waitReady(t *testing.T, url string, header http.Header) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequest("GET", url, nil)
		for k, vs := range header {
			req.Header[k] = vs
		}
		if res, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before answering %s", p.name, url)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer %s within a minute", p.name, url)
		}
	}
}

// freeLoopbackPort returns a port nobody listens on just now, for an
// upstream that cannot be told to pick its own.
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// pointSalesAt makes the sales app's upstream url.
func (e *appsEnv) pointSalesAt(t *testing.T, url string) {
	t.Helper()
	if _, err := e.store.UpdateApp(context.Background(), db.Actor{Email: "test"}, db.App{Slug: "sales", Upstream: url, Title: "Sales app"}); err != nil {
		t.Fatal(err)
	}
}

// readUntilClosed reads ws until it closes and returns the close error.
func readUntilClosed(ctx context.Context, ws *websocket.Conn) error {
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			return err
		}
	}
}

// wantRevokedClose fails the test unless err is the close a revoked
// viewer's socket gets.
func wantRevokedClose(t *testing.T, what string, err error) {
	t.Helper()
	if code := websocket.CloseStatus(err); code != apps.CloseAccessRevoked {
		t.Errorf("%s closed with %v (code %d), want close code %d: access revoked", what, err, code, apps.CloseAccessRevoked)
	}
}

// TestAppsRealFlask: a Plotly dashboard on Flask (Debian's python3-flask
// and python3-plotly) behind Gatehouse greets the signed-in viewer by the
// name Gatehouse gives it; whatever identity the client claims in any
// spelling never reaches it, nor do Gatehouse's cookies.
func TestAppsRealFlask(t *testing.T) {
	python := needUpstream(t, "GATEHOUSE_TEST_PYTHON", "/usr/bin/python3", "Debian's python3-flask and python3-plotly",
		"-c", "import flask, plotly")
	e := newAppsEnv(t)
	e.member(t, "ann@example.com")
	e.createUser(t, "bea@example.com", false) // no grant
	p := startUpstream(t, "flask", exec.Command(python, filepath.Join("testdata", "apps", "whoami.py")))
	var upstream string
	select {
	case line := <-p.lines:
		upstream = strings.TrimPrefix(line, "listening on ")
	case <-p.exited:
		t.Fatal("the Flask app exited before listening")
	case <-time.After(time.Minute):
		t.Fatal("the Flask app did not listen within a minute")
	}
	p.waitReady(t, upstream+"/whoami.json", nil)
	e.pointSalesAt(t, upstream)

	c, res, body := e.signIn(t, "ann@example.com", "/")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "<h1>Signed in as ann@example.com</h1>") ||
		!strings.Contains(body, `class="plotly-graph-div"`) {
		t.Fatalf("the dashboard through Gatehouse: %d\n%.2000s", res.StatusCode, body)
	}

	forged := http.Header{
		"X-Forwarded-User": {"ceo@example.com"}, "X_Forwarded_User": {"ceo@example.com"},
		"X-Forwarded-Email": {"ceo@example.com"}, "X-Forwarded-Groups": {"admins"},
		"Remote-User": {"ceo"}, "X-Gatehouse-Assertion": {"forged"},
		"Cookie": {"theme=dark; " + e.sessions.CookieName() + "=stolen"},
	}
	res, body = send(t, c, "GET", e.appURL("sales", "/"), forged, nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Signed in as ann@example.com") || strings.Contains(body, "ceo") {
		t.Errorf("with a forged X-Forwarded-User the page says: %d\n%.300s", res.StatusCode, body)
	}
	res, body = send(t, c, "GET", e.appURL("sales", "/whoami.json"), forged, nil)
	var seen struct {
		Environ map[string]string `json:"environ"`
		Cookies []string          `json:"cookies"`
	}
	if err := json.Unmarshal([]byte(body), &seen); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("whoami.json: %d %v\n%s", res.StatusCode, err, body)
	}
	for key, want := range map[string]string{
		"HTTP_X_FORWARDED_USER": "ann@example.com", "HTTP_X_FORWARDED_EMAIL": "ann@example.com",
		"HTTP_X_FORWARDED_GROUPS": "sellers", "HTTP_REMOTE_USER": "ann@example.com",
		"HTTP_HOST": "sales.localhost:" + e.port,
	} {
		if got := seen.Environ[key]; got != want {
			t.Errorf("Flask read %s = %q, want %q", key, got, want)
		}
	}
	if a := seen.Environ["HTTP_X_GATEHOUSE_ASSERTION"]; strings.Count(a, ".") != 2 || strings.Contains(a, "forged") {
		t.Errorf("Flask got the assertion %q, want Gatehouse's JWT alone", a)
	}
	if !slices.Contains(seen.Cookies, "theme") {
		t.Errorf("the app's own cookie was not forwarded: %v", seen.Cookies)
	}
	for _, name := range seen.Cookies {
		if strings.HasPrefix(name, "gatehouse") || name == e.sessions.CookieName() {
			t.Errorf("Flask was sent Gatehouse's cookie %s", name)
		}
	}

	// A viewer without a grant gets Gatehouse's denial, not the page.
	_, res, body = e.signIn(t, "bea@example.com", "/")
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "You cannot view this dashboard") {
		t.Errorf("bea, no grant: %d\n%.2000s", res.StatusCode, body)
	}
}

// TestAppsRealJupyter: the Jupyter Notebook (Debian's jupyter-notebook)
// behind Gatehouse: its pages load, a kernel started through its REST API
// runs code over the kernel's WebSocket, and removing the viewer's access
// closes that socket with "access revoked".
func TestAppsRealJupyter(t *testing.T) {
	jupyter := needUpstream(t, "GATEHOUSE_TEST_JUPYTER", "jupyter-notebook", "Debian's jupyter-notebook", "--version")
	e := newAppsEnv(t)
	ann := e.member(t, "ann@example.com")
	const token = "gatehouse-test-token"
	dir, port := t.TempDir(), freeLoopbackPort(t)
	cmd := exec.Command(jupyter, "--no-browser", "--allow-root", "--ip=127.0.0.1", "--port="+port,
		"--port-retries=0", "--NotebookApp.token="+token, "--notebook-dir="+dir,
		// The app's host (sales.localhost) is not one of Jupyter's local
		// names; Gatehouse is what guards it.
		"--NotebookApp.allow_remote_access=True")
	cmd.Env = append(os.Environ(), "HOME="+dir, "JUPYTER_RUNTIME_DIR="+filepath.Join(dir, ".rt"),
		"JUPYTER_CONFIG_DIR="+filepath.Join(dir, ".cfg"), "IPYTHONDIR="+filepath.Join(dir, ".ipython"),
		"PYDEVD_DISABLE_FILE_VALIDATION=1")
	p := startUpstream(t, "jupyter-notebook", cmd)
	auth := http.Header{"Authorization": {"token " + token}}
	p.waitReady(t, "http://127.0.0.1:"+port+"/api/status", auth)
	e.pointSalesAt(t, "http://127.0.0.1:"+port)

	c, res, body := e.signIn(t, "ann@example.com", "/tree?token="+token)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "<title>Home Page - Select or create a notebook</title>") {
		t.Fatalf("Jupyter's home page through Gatehouse: %d\n%.2000s", res.StatusCode, body)
	}
	res, body = send(t, c, "POST", e.appURL("sales", "/api/kernels"), auth, nil)
	var kernel struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &kernel); err != nil || res.StatusCode != http.StatusCreated || kernel.ID == "" {
		t.Fatalf("starting a kernel: %d %v\n%s", res.StatusCode, err, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(e.appURL("sales", "/api/kernels/"+kernel.ID+"/channels?session_id=test"), "http://", "ws://", 1),
		&websocket.DialOptions{HTTPClient: c, HTTPHeader: http.Header{"Origin": {e.appURL("sales", "")}, "Authorization": auth["Authorization"]}})
	if err != nil {
		t.Fatalf("the kernel's WebSocket through Gatehouse: %v", err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	execute, _ := json.Marshal(map[string]any{
		"header":        map[string]any{"msg_id": "run-1", "username": "test", "session": "test", "msg_type": "execute_request", "version": "5.3"},
		"parent_header": map[string]any{}, "metadata": map[string]any{}, "channel": "shell", "buffers": []any{},
		"content": map[string]any{"code": "print(6 * 7)", "silent": false, "store_history": false,
			"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true},
	})
	if err := ws.Write(ctx, websocket.MessageText, execute); err != nil {
		t.Fatal(err)
	}
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for the kernel's output: %v", err)
		}
		var msg struct {
			Header struct {
				MsgType string `json:"msg_type"`
			} `json:"header"`
			Content struct{ Text string } `json:"content"`
		}
		if json.Unmarshal(data, &msg) == nil && msg.Header.MsgType == "stream" {
			if msg.Content.Text != "42\n" {
				t.Fatalf("the kernel printed %q, want 42", msg.Content.Text)
			}
			break
		}
	}

	if err := e.store.RemoveMember(context.Background(), db.Actor{Email: "test"}, e.sellers.ID, ann.ID); err != nil {
		t.Fatal(err)
	}
	readCtx, cancelRead := context.WithTimeout(ctx, 5*time.Second)
	defer cancelRead()
	wantRevokedClose(t, "the kernel's socket", readUntilClosed(readCtx, ws))
	if res, body := send(t, c, "GET", e.appURL("sales", "/api/kernels"), auth, nil); res.StatusCode != http.StatusForbidden ||
		!strings.Contains(body, "You cannot view this dashboard") {
		t.Errorf("after the access ended: %d, want 403", res.StatusCode)
	}
}

// engineIOPackets splits an Engine.IO v4 polling payload into packets.
func engineIOPackets(body string) []string { return strings.Split(body, "\x1e") }

// socketIOConnect opens a Socket.IO session as the dashboard's page does:
// a polling handshake, the namespace connect, then the upgrade to a
// WebSocket (node-red-dashboard refuses a socket that starts as one). It
// returns the WebSocket, upgraded.
func (e *appsEnv) socketIOConnect(t *testing.T, c *http.Client, path string) *websocket.Conn {
	t.Helper()
	poll := e.appURL("sales", path+"?EIO=4&transport=polling")
	res, body := send(t, c, "GET", poll, nil, nil)
	var open struct {
		SID string `json:"sid"`
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(body, "0") || json.Unmarshal([]byte(body[1:]), &open) != nil || open.SID == "" {
		t.Fatalf("Socket.IO handshake through Gatehouse: %d %q", res.StatusCode, body)
	}
	poll += "&sid=" + open.SID
	req, _ := http.NewRequest("POST", poll, strings.NewReader("40"))
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	if res, err := c.Do(req); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("Socket.IO namespace connect: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	if res, body := send(t, c, "GET", poll, nil, nil); res.StatusCode != http.StatusOK || !slices.ContainsFunc(engineIOPackets(body), func(p string) bool { return strings.HasPrefix(p, "40{") }) {
		t.Fatalf("Socket.IO connect answer: %d %q", res.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(e.appURL("sales", path+"?EIO=4&transport=websocket&sid="+open.SID), "http://", "ws://", 1),
		&websocket.DialOptions{HTTPClient: c, HTTPHeader: http.Header{"Origin": {e.appURL("sales", "")}}})
	if err != nil {
		t.Fatalf("Socket.IO WebSocket upgrade through Gatehouse: %v", err)
	}
	ws.SetReadLimit(1 << 20)
	if err := ws.Write(ctx, websocket.MessageText, []byte("2probe")); err != nil {
		t.Fatal(err)
	}
	for {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("Socket.IO upgrade probe: %v", err)
		}
		if string(msg) == "3probe" {
			break
		}
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte("5")); err != nil {
		t.Fatal(err)
	}
	return ws
}

// clockUpdate is the dashboard's message carrying the flow's clock to the
// "Line 1 clock" text (node id "clock" in testdata/apps/nodered/flows.json).
var clockUpdate = regexp.MustCompile(`^42\["update-value",\{"value":"\d+",.*"id":"clock"\}\]$`)

// countUpdates reads ws until it has seen n of the dashboard clock's
// updates (answering Engine.IO pings), or fails.
func countUpdates(ctx context.Context, ws *websocket.Conn, n int) error {
	for seen := 0; seen < n; {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			return fmt.Errorf("after %d of %d updates: %w", seen, n, err)
		}
		switch {
		case string(msg) == "2":
			if err := ws.Write(ctx, websocket.MessageText, []byte("3")); err != nil {
				return err
			}
		case clockUpdate.Match(msg):
			seen++
		}
	}
	return nil
}

// TestAppsRealNodeRED: Node-RED 4 with node-red-dashboard 3 behind
// Gatehouse: the dashboard page and its script load, its Socket.IO
// connection upgrades to a WebSocket through the proxy and delivers the
// flow's updates; removing one viewer's access closes their socket with
// "access revoked" while another viewer's keeps receiving.
func TestAppsRealNodeRED(t *testing.T) {
	nodeRED := needUpstream(t, "GATEHOUSE_TEST_NODE_RED", "/opt/node-red/node_modules/.bin/node-red",
		"Node-RED (npm install --prefix /opt/node-red node-red@4.1.8 node-red-dashboard@3.6.6)", "--help")
	e := newAppsEnv(t)
	ann := e.member(t, "ann@example.com")
	e.member(t, "bea@example.com")
	dir, port := t.TempDir(), freeLoopbackPort(t)
	for _, name := range []string{"settings.js", "flows.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "apps", "nodered", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(nodeRED, "--userDir", dir, "--settings", filepath.Join(dir, "settings.js"))
	cmd.Env = append(os.Environ(), "PORT="+port, "HOME="+dir)
	p := startUpstream(t, "node-red", cmd)
	p.waitReady(t, "http://127.0.0.1:"+port+"/ui/", nil)
	e.pointSalesAt(t, "http://127.0.0.1:"+port)

	c, res, body := e.signIn(t, "ann@example.com", "/ui/")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `content="Node-RED"`) || !strings.Contains(body, `src="js/app.min.js"`) {
		t.Fatalf("the dashboard page through Gatehouse: %d\n%.2000s", res.StatusCode, body)
	}
	if res, body := send(t, c, "GET", e.appURL("sales", "/ui/js/app.min.js"), nil, nil); res.StatusCode != http.StatusOK || !strings.Contains(body, "angular") {
		t.Errorf("the dashboard's script through Gatehouse: %d, %d bytes", res.StatusCode, len(body))
	}
	bea, _, _ := e.signIn(t, "bea@example.com", "/ui/")

	ws := e.socketIOConnect(t, c, "/ui/socket.io/")
	defer ws.CloseNow()
	other := e.socketIOConnect(t, bea, "/ui/socket.io/")
	defer other.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for who, conn := range map[string]*websocket.Conn{"ann": ws, "bea": other} {
		if err := countUpdates(ctx, conn, 3); err != nil {
			t.Fatalf("%s's dashboard socket is not live: %v", who, err)
		}
	}

	if err := e.store.RemoveMember(context.Background(), db.Actor{Email: "test"}, e.sellers.ID, ann.ID); err != nil {
		t.Fatal(err)
	}
	readCtx, cancelRead := context.WithTimeout(ctx, 5*time.Second)
	defer cancelRead()
	wantRevokedClose(t, "ann's dashboard socket", readUntilClosed(readCtx, ws))
	if err := countUpdates(ctx, other, 5); err != nil {
		t.Errorf("bea's socket stopped when ann's access ended: %v", err)
	}
	if res, body := send(t, c, "GET", e.appURL("sales", "/ui/"), nil, nil); res.StatusCode != http.StatusForbidden ||
		!strings.Contains(body, "You cannot view this dashboard") {
		t.Errorf("ann after the access ended: %d, want 403", res.StatusCode)
	}
}
