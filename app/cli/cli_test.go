package cli

import (
	"bytes"
	"context"
	"gatehouse/app"
	"gatehouse/internal/testutil"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// cliEnv runs gatehouse commands against one data directory.
type cliEnv struct {
	t    *testing.T
	data string
}

// newCLIEnv gives a data directory with a migrated database in it, as
// serve or migrate leave it (other commands never create one).
func newCLIEnv(t *testing.T) *cliEnv {
	e := newEmptyCLIEnv(t)
	e.ok("", "migrate")
	return e
}

// newEmptyCLIEnv gives a data directory that does not exist yet.
func newEmptyCLIEnv(t *testing.T) *cliEnv {
	return &cliEnv{t: t, data: filepath.Join(t.TempDir(), "data")}
}

// run executes args with stdin and returns stdout, stderr and the exit code.
func (e *cliEnv) run(stdin string, args ...string) (string, string, int) {
	e.t.Helper()
	var out, errOut bytes.Buffer
	c := &CLI{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string {
			if k == "GATEHOUSE_DATA" {
				return e.data
			}
			return ""
		}}
	code := c.Run(context.Background(), args)
	return out.String(), errOut.String(), code
}

func (e *cliEnv) ok(stdin string, args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(stdin, args...)
	if code != 0 {
		e.t.Fatalf("gatehouse %s: exit %d, stderr %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func (e *cliEnv) fails(wantCode int, wantErr string, stdin string, args ...string) {
	e.t.Helper()
	_, errOut, code := e.run(stdin, args...)
	if code != wantCode || !strings.Contains(errOut, wantErr) {
		e.t.Errorf("gatehouse %s: exit %d stderr %q; want exit %d containing %q", strings.Join(args, " "), code, errOut, wantCode, wantErr)
	}
	if strings.Count(strings.TrimSpace(errOut), "\n") > 1 && wantCode == 1 {
		e.t.Errorf("error is more than one sentence: %q", errOut)
	}
}

func TestCLIUsers(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok("", "users", "create", "Ann@Example.com", "--name", "Ann Admin", "--admin")
	if !strings.Contains(out, "created admin ann@example.com") {
		t.Errorf("create output: %s", out)
	}
	temp := regexp.MustCompile(`temporary password \(shown once; must be changed at first login\): (\S+)`).FindStringSubmatch(out)
	if temp == nil {
		t.Fatalf("no temporary password printed: %s", out)
	}
	// Flags after or before the positional argument.
	e.ok(testPassword+"\n", "users", "create", "--password-stdin", "bob@example.com")
	out = e.ok("", "users", "list")
	for _, want := range []string{"ann@example.com", "Ann Admin", "admin", "must change password", "bob@example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("users list lacks %q:\n%s", want, out)
		}
	}

	e.fails(1, "already exists", testPassword+"\n", "users", "create", "BOB@example.com", "--password-stdin")
	e.fails(1, "not a valid email", "", "users", "create", "not-an-email")
	e.fails(1, "at least 12 characters", "short\n", "users", "create", "c@example.com", "--password-stdin")
	e.fails(1, "too common", "password1234\n", "users", "create", "c@example.com", "--password-stdin")
	e.fails(1, "no user with email", "", "users", "deactivate", "nobody@example.com")
	e.fails(1, "no user with email", testPassword+"\n", "users", "set-password", "nobody@example.com", "--password-stdin")
	e.fails(2, "--password-stdin is required", "", "users", "set-password", "bob@example.com")
	e.fails(2, "missing arguments", "", "users", "create")
	e.fails(2, "unknown subcommand", "", "users", "frobnicate")
	e.fails(2, "unknown flag --bogus", "", "users", "list", "--bogus")

	e.ok("another good passphrase\n", "users", "set-password", "bob@example.com", "--password-stdin")
	e.ok("", "users", "promote", "bob@example.com")
	e.ok("", "users", "demote", "bob@example.com")
	e.fails(1, "last active admin", "", "users", "demote", "ann@example.com")
	e.fails(1, "last active admin", "", "users", "deactivate", "ann@example.com")
	e.ok("", "users", "deactivate", "bob@example.com")
	if out := e.ok("", "users", "list"); !strings.Contains(out, "deactivated") {
		t.Errorf("deactivation not listed:\n%s", out)
	}
	e.ok("", "users", "activate", "bob@example.com")

	out = e.ok("", "audit", "list", "--since", "1h")
	for _, want := range []string{"user.create", "user.password", "user.promote", "user.demote", "user.deactivate", "user.activate"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit lacks %s:\n%s", want, out)
		}
	}
}

func TestCLIGroupsGrantsAccess(t *testing.T) {
	e := newCLIEnv(t)
	e.ok(testPassword+"\n", "users", "create", "ann@example.com", "--password-stdin")
	e.ok("", "groups", "create", "Security", "--description", "the security team")
	e.fails(1, "already exists", "", "groups", "create", "security")
	e.fails(1, "at most 64", "", "groups", "create", strings.Repeat("x", 65))
	e.fails(1, "required", "", "groups", "create", "   ")

	out, _, code := e.run("", "access", "check", "ann@example.com", "access")
	if code != 1 || !strings.Contains(out, "denied") || !strings.Contains(out, "no group has been granted") {
		t.Errorf("check before grant: exit %d: %s", code, out)
	}
	e.ok("", "grants", "add", "access", "security")
	e.fails(1, "no dashboard", "", "grants", "add", "nope", "security")
	e.fails(1, "no group named", "", "grants", "add", "access", "nope")
	out, _, code = e.run("", "access", "check", "ann@example.com", "access")
	if code != 1 || !strings.Contains(out, `not in a group that has access`) || !strings.Contains(out, "Security") {
		t.Errorf("check non-member: exit %d: %s", code, out)
	}
	e.ok("", "groups", "add-member", "security", "ann@example.com")
	e.fails(1, "already a member", "", "groups", "add-member", "security", "ann@example.com")
	e.fails(1, "not in the future", "", "groups", "add-member", "security", "ann@example.com", "--expires", "2001-01-01")
	e.fails(1, "not a date", "", "groups", "add-member", "security", "ann@example.com", "--expires", "tomorrow")
	out, _, code = e.run("", "access", "check", "ann@example.com", "access")
	if code != 0 || !strings.Contains(out, "allowed") || !strings.Contains(out, `"Security"`) {
		t.Errorf("check member: exit %d: %s", code, out)
	}
	if out := e.ok("", "groups", "members", "security"); !strings.Contains(out, "ann@example.com") {
		t.Errorf("members: %s", out)
	}
	if out := e.ok("", "grants", "list"); !strings.Contains(out, "access") || !strings.Contains(out, "Security") {
		t.Errorf("grants list: %s", out)
	}
	if out := e.ok("", "groups", "list"); !regexp.MustCompile(`Security\s+1\s+1\s+the security team`).MatchString(out) {
		t.Errorf("groups list: %s", out)
	}
	e.ok("", "groups", "remove-member", "security", "ann@example.com")
	e.fails(1, "not a member", "", "groups", "remove-member", "security", "ann@example.com")
	e.ok("", "grants", "remove", "access", "security")
	e.fails(1, "has no grant", "", "grants", "remove", "access", "security")
	e.ok("", "groups", "delete", "security")
	e.fails(1, "no group named", "", "groups", "delete", "security")
	if out := e.ok("", "dashboards", "list"); !strings.Contains(out, "access") {
		t.Errorf("dashboards list: %s", out)
	}
}

func TestCLIMigrateVersionBackupHelp(t *testing.T) {
	e := newEmptyCLIEnv(t)
	if out := e.ok("", "migrate"); !strings.Contains(out, "applied 0001_init.sql") {
		t.Errorf("migrate: %s", out)
	}
	if out := e.ok("", "migrate"); !strings.Contains(out, "up to date") {
		t.Errorf("second migrate: %s", out)
	}
	if out := e.ok("", "version"); !strings.HasPrefix(out, "gatehouse ") {
		t.Errorf("version: %s", out)
	}
	backup := filepath.Join(t.TempDir(), "copy.db")
	e.ok("", "backup", backup)
	if st, err := os.Stat(backup); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v %v", st, err)
	}
	e.fails(1, "already exists", "", "backup", backup)
	for _, cmd := range [][]string{{"serve", "--help"}, {"users", "create", "--help"}, {"groups", "add-member", "--help"}, {"audit", "list", "--help"}, {"backup", "--help"}} {
		out, _, code := e.run("", cmd...)
		if code != 0 || !strings.Contains(out, "usage: gatehouse") {
			t.Errorf("%v: exit %d, %q", cmd, code, out)
		}
	}
	e.fails(2, "unknown command", "", "frobnicate")
}

func TestCLINewerSchemaIsRefused(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("", "migrate")
	store, err := app.OpenStore(context.Background(), app.Config{DataDir: e.data})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.DB.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)"); err != nil {
		t.Fatal(err)
	}
	store.Close()
	e.fails(1, "newer than this binary", "", "users", "list")
}

func TestServeStartsOnFreshDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fresh", "data")
	var logs testutil.LockedBuffer
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	c := &CLI{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &logs,
		Getenv: func(k string) string { return "" }, Ready: func(addr string) { ready <- addr }}
	go func() { done <- c.Run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data", dir}) }()
	var addr string
	select {
	case addr = <-ready:
	case code := <-done:
		t.Fatalf("serve exited with %d: %s", code, logs.String())
	case <-time.After(20 * time.Second):
		t.Fatal("server did not start")
	}
	res, err := http.Get("http://" + addr + "/healthz")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", res, err)
	}
	res.Body.Close()
	for path, mode := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "gatehouse.db"): 0o600} {
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v (%v)", path, st.Mode().Perm(), mode, err)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exit code %d after shutdown", code)
	}
	if !strings.Contains(logs.String(), "/setup?token=") {
		t.Errorf("no setup link in the log:\n%s", logs.String())
	}
}

func TestServeClearStartupErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e := newCLIEnv(t)
	e.fails(1, "already in use", "", "serve", "--addr", ln.Addr().String())

	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.MkdirAll(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 { // root ignores directory permissions
		e.fails(1, "cannot open database file", "", "serve", "--data", ro, "--addr", "127.0.0.1:0")
	}
}

// testPassword is every test user's password.
const testPassword = "correct horse battery"

const testMailFrom = "Gatehouse <gatehouse@example.com>"

// lastLine is the last line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// server is a `gatehouse serve` run in-process by a test.
type server struct {
	URL  string // http://127.0.0.1:PORT
	logs testutil.LockedBuffer
	stop func() int
}

// serve runs `gatehouse serve --addr 127.0.0.1:0 args...` and returns once
// it listens. Stop ends it and returns its exit code; the test's end stops
// it too.
func serve(t *testing.T, args ...string) *server {
	t.Helper()
	s := &server{}
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	c := &CLI{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &s.logs,
		Getenv: func(string) string { return "" }, Ready: func(addr string) { ready <- addr }}
	go func() { done <- c.Run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)) }()
	var once sync.Once
	code := 0
	s.stop = func() int {
		once.Do(func() { cancel(); code = <-done })
		return code
	}
	t.Cleanup(func() { s.stop() })
	select {
	case addr := <-ready:
		s.URL = "http://" + addr
	case code := <-done:
		t.Fatalf("serve exited with %d: %s", code, s.logs.String())
	case <-time.After(20 * time.Second):
		t.Fatal("server did not start")
	}
	return s
}

// login signs email in with testPassword and returns the session cookie.
func (s *server) login(t *testing.T, email string) *http.Cookie {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.PostForm(s.URL+"/login", url.Values{"email": {email}, "password": {testPassword}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || len(res.Cookies()) == 0 {
		t.Fatalf("login as %s: %d, cookies %v", email, res.StatusCode, res.Cookies())
	}
	return res.Cookies()[0]
}
