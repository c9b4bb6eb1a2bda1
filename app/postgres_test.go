package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/db"
	"gatehouse/db/postgrestest"
)

// tcpProxy forwards a local port to the PostgreSQL server, so a test can
// cut the database off (closing every connection, refusing new ones) and
// bring it back on the same address.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

// newTCPProxy reserves a local address for a proxy to target; call start.
func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, target: target, addr: ln.Addr().String()}
	ln.Close()
	t.Cleanup(p.stop)
	return p
}

func (p *tcpProxy) start() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// stop closes the listener and every forwarded connection.
func (p *tcpProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// viaProxy returns dsn with its host replaced by the proxy's address.
func viaProxy(t *testing.T, dsn string, p *tcpProxy) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.addr
	return u.String()
}

func postgresHost(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return u.Hostname() + ":5432"
	}
	return u.Host
}

// The app behaves on PostgreSQL as on SQLite: log in, open a granted panel,
// lose it when the membership goes.
func TestAppOnPostgres(t *testing.T) {
	ta := newTestAppOn(t, postgrestest.Schema(t))
	ctx := context.Background()
	if ta.store.Dialect != db.Postgres {
		t.Fatalf("dialect %s", ta.store.Dialect)
	}
	ann := ta.createUser(t, "ann@example.com", false)
	g, err := ta.store.CreateGroup(ctx, db.Actor{Email: "test"}, "staff", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := ta.store.AddGrant(ctx, db.Actor{Email: "test"}, "access", g.ID); err != nil {
		t.Fatal(err)
	}
	if err := ta.store.AddMember(ctx, db.Actor{Email: "test"}, g.ID, ann.ID, 0); err != nil {
		t.Fatal(err)
	}
	c := ta.login(t, "ann@example.com")
	if res, body := ta.get(t, c, "/", false); res.StatusCode != http.StatusOK || !strings.Contains(body, "Access") {
		t.Fatalf("home: %d", res.StatusCode)
	}
	for _, panel := range []string{"overview", "logins", "denied", "groups", "requests"} {
		if res, body := ta.get(t, c, "/dashboards/access/panels/"+panel, true); res.StatusCode != http.StatusOK || strings.Contains(body, "<html") {
			t.Errorf("panel %s: %d", panel, res.StatusCode)
		}
	}
	if err := ta.store.RemoveMember(ctx, db.Actor{Email: "test"}, g.ID, ann.ID); err != nil {
		t.Fatal(err)
	}
	if res, body := ta.get(t, c, "/dashboards/access/panels/overview", true); res.StatusCode != http.StatusForbidden || !strings.Contains(body, "You cannot view this dashboard") {
		t.Errorf("after removal: %d %s", res.StatusCode, body)
	}
	if res, body := ta.get(t, c, "/healthz", false); res.StatusCode != http.StatusOK || !strings.Contains(body, `"dialect":"postgres"`) {
		t.Errorf("healthz: %d %s", res.StatusCode, body)
	}
}

// While PostgreSQL is unreachable, pages answer 503 with a plain message and
// /healthz says so in JSON; once it is back, the very next request works
// (pooled connections the outage killed are not handed to requests).
func TestPostgresOutageAnswers503AndRecovers(t *testing.T) {
	dsn := postgrestest.Schema(t)
	proxy := newTCPProxy(t, postgresHost(t, dsn))
	proxy.start()
	ta := newTestAppOn(t, viaProxy(t, dsn, proxy))
	ta.createUser(t, "root@example.com", true)
	c := ta.login(t, "root@example.com")
	for _, path := range []string{"/", "/healthz", "/dashboards/access/panels/overview"} {
		if res, _ := ta.get(t, c, path, false); res.StatusCode != http.StatusOK {
			t.Fatalf("before the outage: %s %d", path, res.StatusCode)
		}
	}

	proxy.stop()
	// Until this server knows it is cut off, it may answer from what it
	// trusts under its lease (db/authz_lease.go): that is correct, since a
	// writer elsewhere waits for this server's acknowledgement or for the
	// lease to run out (leaseFor) before it returns. What must hold is that
	// once the lease has ended (at once when the LISTEN connection breaks,
	// at the latest leaseFor after the last beat) every request is a 503.
	for deadline := time.Now().Add(10 * time.Second); ta.store.LeaseStats().Trusted; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the store still trusts its lease 10 s after PostgreSQL became unreachable")
		}
	}
	for _, tc := range []struct {
		path string
		htmx bool
	}{{"/", false}, {"/dashboards/access", false}, {"/dashboards/access/panels/overview", true}} {
		res, body := ta.get(t, c, tc.path, tc.htmx)
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("during the outage: %s answered %d, want 503", tc.path, res.StatusCode)
		}
		for _, leak := range []string{"dial tcp", "127.0.0.1", "goroutine", "SQLSTATE", "pgdriver"} {
			if strings.Contains(body, leak) {
				t.Errorf("%s: the 503 page shows internals (%q)", tc.path, leak)
			}
		}
		if !strings.Contains(body, "database") {
			t.Errorf("%s: the 503 page does not say what is wrong:\n%s", tc.path, body)
		}
	}
	// A load balancer's health check carries no cookie.
	res, body := ta.get(t, ta.client(), "/healthz", false)
	var health map[string]string
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Content-Type") != "application/json" ||
		json.Unmarshal([]byte(body), &health) != nil || health["status"] != "unavailable" {
		t.Errorf("healthz during the outage: %d %q %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	if !strings.Contains(ta.Logs.String(), "cannot reach the database server") {
		t.Errorf("the log does not say why requests failed:\n%s", ta.Logs.String())
	}

	proxy.start()
	for _, path := range []string{"/healthz", "/", "/dashboards/access/panels/overview"} {
		if res, body := ta.get(t, c, path, true); res.StatusCode != http.StatusOK {
			t.Errorf("after the outage: %s answered %d (%d bytes)", path, res.StatusCode, len(body))
		}
	}

	// A restart between two requests (no request saw the outage): the
	// pooled connections it closed are dropped, not used.
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ta.get(t, ta.client(), "/healthz", false)
		}()
	}
	wg.Wait()
	proxy.stop()
	proxy.start()
	time.Sleep(50 * time.Millisecond) // let the closes reach the app's sockets
	for i := range 6 {
		if res, body := ta.get(t, c, "/dashboards/access/panels/overview", true); res.StatusCode != http.StatusOK {
			t.Errorf("request %d after a restart: %d (%d bytes)", i, res.StatusCode, len(body))
		}
	}
}

// runServe runs `gatehouse serve args...` in-process and returns its exit
// code, its stderr, and how long it ran; ready (optional) receives the
// address when it listens, after which it is stopped.
func runServe(t *testing.T, timeout time.Duration, args ...string) (code int, stderr string, took time.Duration) {
	t.Helper()
	var errOut bytes.Buffer
	stderrBuf := &lockedBuffer{b: &errOut}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &CLI{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: stderrBuf,
		Getenv: func(string) string { return "" }, Ready: func(string) { cancel() }}
	done := make(chan int, 1)
	start := time.Now()
	go func() { done <- c.Run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)) }()
	select {
	case code = <-done:
	case <-time.After(timeout):
		cancel()
		code = <-done
		t.Errorf("serve %v still running after %v", args, timeout)
	}
	stderrBuf.mu.Lock()
	defer stderrBuf.mu.Unlock()
	return code, errOut.String(), time.Since(start)
}

// closedPort returns a local address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// lastLine is what an operator reads first: the final error line.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestServeGivesUpOnUnreachablePostgres(t *testing.T) {
	addr := closedPort(t)
	code, stderr, took := runServe(t, 20*time.Second, "--db", "postgres://gh:s3cret@"+addr+"/gatehouse?sslmode=disable", "--db-wait", "1500ms")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if took > 10*time.Second {
		t.Errorf("took %v with --db-wait 1.5s", took)
	}
	if last := lastLine(stderr); !strings.HasPrefix(last, "gatehouse serve: cannot reach PostgreSQL at "+addr+" after waiting ") ||
		!strings.HasSuffix(last, "s: connection refused") {
		t.Errorf("last line %q, want one sentence saying it gave up", last)
	}
	if n := strings.Count(stderr, "waiting for PostgreSQL at "+addr+": connection refused"); n < 2 {
		t.Errorf("%d waiting lines, want at least 2:\n%s", n, stderr)
	}
	for _, bad := range []string{"s3cret", "panic", "goroutine"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr contains %q:\n%s", bad, stderr)
		}
	}

	// Commands other than serve and migrate try once.
	e := newCLIEnv(t)
	e.fails(1, "cannot reach PostgreSQL at "+addr+": connection refused", "", "users", "list", "--db", "postgres://gh@"+addr+"/gatehouse?sslmode=disable")
}

func TestServeRefusesABadPostgresDSN(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://gh:s3cret@127.0.0.1:5432/gatehouse?sslmode=sometimes": "the PostgreSQL DSN is invalid: sslmode 'sometimes' is not supported",
		"postgres://gh:s3cret@127.0.0.1:port/gatehouse":                   "the PostgreSQL DSN is invalid: invalid port",
	} {
		code, stderr, _ := runServe(t, 10*time.Second, "--db", dsn)
		if code != 1 || !strings.Contains(lastLine(stderr), want) || strings.Contains(stderr, "s3cret") || strings.Contains(stderr, "panic") {
			t.Errorf("%s: exit %d\n%s\nwant one line containing %q", dsn, code, stderr, want)
		}
	}
}

// Waiting only helps while the server cannot be reached: a wrong database
// name fails at once, with the reason.
func TestServeFailsAtOnceOnAnUnknownDatabase(t *testing.T) {
	u, err := url.Parse(postgrestest.ServerDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/no_such_gatehouse_db"
	code, stderr, took := runServe(t, 20*time.Second, "--db", u.String(), "--db-wait", "30s")
	if code != 1 || took > 10*time.Second || !strings.Contains(lastLine(stderr), `database "no_such_gatehouse_db" does not exist`) {
		t.Errorf("exit %d after %v:\n%s", code, took, stderr)
	}
}

// A server started before PostgreSQL waits for it, then serves.
func TestServeWaitsForPostgres(t *testing.T) {
	dsn := postgrestest.Schema(t)
	proxy := newTCPProxy(t, postgresHost(t, dsn))
	time.AfterFunc(time.Second, proxy.start)
	code, stderr, _ := runServe(t, 30*time.Second, "--db", viaProxy(t, dsn, proxy), "--db-wait", "20s")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "waiting for PostgreSQL at "+proxy.addr+": connection refused") ||
		!strings.Contains(stderr, "PostgreSQL is answering") || !strings.Contains(stderr, "gatehouse listening") {
		t.Errorf("log:\n%s", stderr)
	}
}
