package cli

import (
	"context"
	"gatehouse/db/postgrestest"
	"gatehouse/internal/testutil"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestServeRefusesABadMetricsAddrBeforeListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e := newCLIEnv(t)
	e.ok("", "migrate")
	_, errOut, code := e.run("", "serve", "--addr", "127.0.0.1:0", "--metrics-addr", ln.Addr().String())
	if code != 1 || !strings.Contains(errOut, "cannot listen for metrics on "+ln.Addr().String()) {
		t.Fatalf("serve with a taken --metrics-addr: exit %d, stderr %q", code, errOut)
	}
	if strings.Contains(errOut, "gatehouse listening") {
		t.Errorf("serve said it was listening before failing: %q", errOut)
	}
}

func TestOIDCFlagsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--password-login=false"}, "needs --oidc-issuer"},
		{[]string{"--password-login=false", "--allow-signup"}, "--allow-signup creates password accounts"},
		{[]string{"--oidc-issuer", "idp.example.com"}, "issuer URL"},
		{[]string{"--oidc-issuer", "https://idp.example.com"}, "needs --oidc-client-id"},
		{[]string{"--oidc-issuer", "https://idp.example.com", "--oidc-client-id", "x", "--oidc-scopes", "email"}, "must include openid"},
		{[]string{"--oidc-issuer", "https://idp.example.com", "--oidc-client-id", "x", "--oidc-link", "domain"}, "--oidc-link must be email or never"},
		{[]string{"--oidc-issuer", "https://idp.example.com", "--oidc-client-id", "x", "--oidc-missing-groups", "ignore"}, "--oidc-missing-groups must be refuse or empty"},
	} {
		var out, errb strings.Builder
		c := &CLI{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
		if code := c.Run(context.Background(), append([]string{"serve", "--data", t.TempDir()}, tc.args...)); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("serve %v: exit %d, stderr %q, want 2 saying %q", tc.args, code, errb.String(), tc.want)
		}
	}
	// --oidc-link is read from GATEHOUSE_OIDC_LINK too.
	var out, errb strings.Builder
	c := &CLI{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return map[string]string{"GATEHOUSE_OIDC_LINK": "always"}[k] }}
	if code := c.Run(context.Background(), []string{"serve", "--data", t.TempDir(), "--oidc-issuer", "https://idp.example.com", "--oidc-client-id", "x"}); code != 2 ||
		!strings.Contains(errb.String(), "--oidc-link must be email or never") {
		t.Errorf("GATEHOUSE_OIDC_LINK=always: exit %d, stderr %q", code, errb.String())
	}
}

func TestServeGivesUpOnUnreachablePostgres(t *testing.T) {
	addr := testutil.FreeAddr(t)
	// runServe fails the test if serve is still waiting after 20 s: the
	// 1.5 s --db-wait must end it long before that.
	code, stderr := runServe(t, 20*time.Second, "--db", "postgres://gh:s3cret@"+addr+"/gatehouse?sslmode=disable", "--db-wait", "1500ms")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
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

// runServe runs `gatehouse serve args...` in-process and returns its exit
// code and its stderr; once it listens it is stopped. A serve still
// running after timeout fails the test.
func runServe(t *testing.T, timeout time.Duration, args ...string) (code int, stderr string) {
	t.Helper()
	var errOut testutil.LockedBuffer
	stderrBuf := &errOut
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &CLI{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: stderrBuf,
		Getenv: func(string) string { return "" }, Ready: func(string) { cancel() }}
	done := make(chan int, 1)
	go func() { done <- c.Run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)) }()
	select {
	case code = <-done:
	case <-time.After(timeout):
		cancel()
		code = <-done
		t.Errorf("serve %v still running after %v", args, timeout)
	}
	return code, errOut.String()
}

func TestServeRefusesABadPostgresDSN(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://gh:s3cret@127.0.0.1:5432/gatehouse?sslmode=sometimes": "the PostgreSQL DSN is invalid: sslmode 'sometimes' is not supported",
		"postgres://gh:s3cret@127.0.0.1:port/gatehouse":                   "the PostgreSQL DSN is invalid: invalid port",
	} {
		code, stderr := runServe(t, 10*time.Second, "--db", dsn)
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
	// With --db-wait 30s, a serve that waited would outlive runServe's 20 s
	// and fail the test there.
	code, stderr := runServe(t, 20*time.Second, "--db", u.String(), "--db-wait", "30s")
	if code != 1 || !strings.Contains(lastLine(stderr), `database "no_such_gatehouse_db" does not exist`) {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
}

// A server started before PostgreSQL waits for it, then serves.
func TestServeWaitsForPostgres(t *testing.T) {
	dsn := postgrestest.Schema(t)
	proxy := postgrestest.NewProxy(t, dsn)
	time.AfterFunc(time.Second, proxy.Start)
	code, stderr := runServe(t, 30*time.Second, "--db", proxy.DSN, "--db-wait", "20s")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "waiting for PostgreSQL at "+proxy.Addr+": connection refused") ||
		!strings.Contains(stderr, "PostgreSQL is answering") || !strings.Contains(stderr, "gatehouse listening") {
		t.Errorf("log:\n%s", stderr)
	}
}

// TestServeStreamFlags: --max-streams sets the server's budget (logged at
// start with the open-file limit it was weighed against), and a
// --streams-per-user below one is refused before anything starts.
func TestServeStreamFlags(t *testing.T) {
	code, stderr := runServe(t, 30*time.Second, "--data", t.TempDir(), "--max-streams", "123")
	if code != 0 || !strings.Contains(stderr, "max_streams=123") || !strings.Contains(stderr, "open_file_limit=") {
		t.Errorf("serve --max-streams 123: exit %d\n%s", code, stderr)
	}
	code, stderr = runServe(t, 30*time.Second, "--data", t.TempDir(), "--streams-per-user", "0")
	if code != 2 || !strings.Contains(stderr, "--streams-per-user") {
		t.Errorf("serve --streams-per-user 0: exit %d, want 2\n%s", code, stderr)
	}
}
