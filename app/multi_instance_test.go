package app

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gatehouse/db"
	"gatehouse/db/postgrestest"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// buildGatehouse builds the real binary once per test run into a temporary
// directory (with -race when the tests run with it, so the build reuses
// their packages).
func buildGatehouse(t testing.TB) string {
	t.Helper()
	binaryOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			binaryErr = fmt.Errorf("building the binary needs the go command: %v", err)
			return
		}
		dir, err := os.MkdirTemp("", "gatehouse-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "gatehouse")
		args := []string{"build", "-o", binaryPath}
		if raceBuild {
			args = append(args, "-race")
		}
		cmd := exec.Command(goTool, append(args, ".")...)
		cmd.Dir = ".." // the module root, where main.go is
		if out, err := cmd.CombinedOutput(); err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

// instance is a `gatehouse serve` process.
type instance struct {
	name string
	cmd  *exec.Cmd
	url  string
	mu   sync.Mutex
	log  bytes.Buffer
}

func (in *instance) logs() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.log.String()
}

var listenLine = regexp.MustCompile(`msg="gatehouse listening" addr=(http://127\.0\.0\.1:\d+)`)

// startInstances starts one `gatehouse serve --db dsn --addr 127.0.0.1:0`
// per name, all at once, and returns them when each has logged its address.
func startInstances(t *testing.T, bin, dsn string, names ...string) []*instance {
	t.Helper()
	specs := make([]serveSpec, len(names))
	for i, name := range names {
		specs[i] = serveSpec{name: name, args: []string{"--db", dsn, "--db-wait", "10s"}}
	}
	return startServes(t, bin, specs...)
}

// serveSpec is one `gatehouse serve` to start: a name for its log, and its
// flags besides --addr.
type serveSpec struct {
	name string
	args []string
}

// startServes starts `gatehouse serve --addr 127.0.0.1:0 ARGS...` for each
// spec, all at once, and returns them when each has logged its address.
// Their logs are kept (instance.logs); cleanup stops them with SIGTERM.
func startServes(t *testing.T, bin string, specs ...serveSpec) []*instance {
	t.Helper()
	var out []*instance
	ready := make(chan error, len(specs))
	for _, spec := range specs {
		in := &instance{name: spec.name}
		in.cmd = exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, spec.args...)...)
		in.cmd.Env = cleanEnv()
		stderr, err := in.cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := in.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { in.stop(t) })
		go func() {
			sc := bufio.NewScanner(stderr)
			found := false
			for sc.Scan() {
				in.mu.Lock()
				in.log.WriteString(sc.Text() + "\n")
				in.mu.Unlock()
				if m := listenLine.FindStringSubmatch(sc.Text()); m != nil && !found {
					found = true
					in.mu.Lock()
					in.url = m[1]
					in.mu.Unlock()
					ready <- nil
				}
			}
			if !found {
				ready <- io.ErrUnexpectedEOF
			}
		}()
		out = append(out, in)
	}
	for range specs {
		select {
		case err := <-ready:
			if err != nil {
				for _, in := range out {
					t.Logf("%s log:\n%s", in.name, in.logs())
				}
				t.Fatal("an instance exited before listening")
			}
		case <-time.After(60 * time.Second):
			t.Fatal("instances did not start within 60s")
		}
	}
	for _, in := range out {
		in.mu.Lock()
		in.url = strings.TrimSuffix(in.url, "/")
		in.mu.Unlock()
	}
	return out
}

// stop asks the instance to shut down (SIGTERM) and waits for it.
func (in *instance) stop(t *testing.T) {
	if in.cmd.Process == nil || in.cmd.ProcessState != nil {
		return
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- in.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s exited with %v:\n%s", in.name, err, in.logs())
		}
	case <-time.After(15 * time.Second):
		_ = in.cmd.Process.Kill()
		<-done
		t.Errorf("%s did not stop on SIGTERM", in.name)
	}
}

// cleanEnv is the test's environment without GATEHOUSE_* settings.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEHOUSE_") {
			env = append(env, kv)
		}
	}
	return env
}

// gatehouseCLI runs the binary once with stdin and fails the test unless it exits 0.
func gatehouseCLI(t *testing.T, bin, dsn, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append(args, "--db", dsn)...)
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// browser sends requests to any instance with the cookies it was given,
// the way a load balancer spreads one browser's requests.
type browser struct {
	t      *testing.T
	cookie *http.Cookie
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	return &browser{t: t, client: &http.Client{
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *browser) do(method string, in *instance, path string, form url.Values, htmx bool) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, in.url+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if htmx {
		req.Header.Set("HX-Request", "true")
	}
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s%s: %v", method, in.name, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	for _, c := range res.Cookies() {
		if strings.HasSuffix(c.Name, "gatehouse_session") {
			if c.MaxAge < 0 || c.Value == "" {
				b.cookie = nil
			} else {
				b.cookie = c
			}
		}
	}
	return res, string(data)
}

func (b *browser) login(in *instance, email string) {
	b.t.Helper()
	res, body := b.do("POST", in, "/login", url.Values{"email": {email}, "password": {testPassword}, "next": {"/"}}, false)
	if res.StatusCode != http.StatusSeeOther || b.cookie == nil {
		b.t.Fatalf("login as %s on %s: %d %s", email, in.name, res.StatusCode, body)
	}
}

// panel asks in for the access dashboard's overview panel, as htmx does.
func (b *browser) panel(in *instance) (int, string) {
	b.t.Helper()
	res, body := b.do("GET", in, "/dashboards/access/panels/overview", nil, true)
	return res.StatusCode, body
}

// Two gatehouse processes on one PostgreSQL schema behave as one: they start
// together on an empty database, a session made on A works on B, a
// membership removed through A (or by the CLI) is denied on B's very next
// request, and a logout on B ends the session on A.
func TestTwoInstancesBehaveAsOne(t *testing.T) {
	dsn := postgrestest.Schema(t)
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	bin := buildGatehouse(t)
	insts := startInstances(t, bin, dsn, "A", "B")
	a, b := insts[0], insts[1]

	gatehouseCLI(t, bin, dsn, testPassword+"\n", "users", "create", "ann@example.com", "--password-stdin")
	gatehouseCLI(t, bin, dsn, testPassword+"\n", "users", "create", "root@example.com", "--admin", "--password-stdin")
	gatehouseCLI(t, bin, dsn, "", "groups", "create", "staff")
	gatehouseCLI(t, bin, dsn, "", "groups", "add-member", "staff", "ann@example.com")
	gatehouseCLI(t, bin, dsn, "", "grants", "add", "access", "staff")

	ann := newBrowser(t)
	ann.login(a, "ann@example.com")
	if res, body := ann.do("GET", b, "/", nil, false); res.StatusCode != http.StatusOK || !strings.Contains(body, "ann") {
		t.Fatalf("B does not accept A's session: GET / = %d", res.StatusCode)
	}
	if code, _ := ann.panel(b); code != http.StatusOK {
		t.Fatalf("panel on B before the removal: %d", code)
	}

	// The admin removes ann from staff through A.
	store, err := db.Open(context.Background(), db.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	staff, err := store.GroupByName(context.Background(), "staff")
	if err != nil {
		t.Fatal(err)
	}
	annUser, err := store.UserByEmail(context.Background(), "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	root := newBrowser(t)
	root.login(a, "root@example.com")
	remove := "/admin/groups/" + strconv.FormatInt(staff.ID, 10) + "/members/" + strconv.FormatInt(annUser.ID, 10) + "/remove"
	if res, body := root.do("POST", a, remove, url.Values{}, false); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("removing the membership on A: %d %s", res.StatusCode, body)
	}
	if code, body := ann.panel(b); code != http.StatusForbidden || !strings.Contains(body, "You cannot view this dashboard") {
		t.Errorf("B's next panel request after the removal on A: %d, want 403 with the denial:\n%s", code, body)
	}

	// The same through the command line.
	gatehouseCLI(t, bin, dsn, "", "groups", "add-member", "staff", "ann@example.com")
	if code, _ := ann.panel(b); code != http.StatusOK {
		t.Errorf("B after the CLI re-added the membership: %d", code)
	}
	gatehouseCLI(t, bin, dsn, "", "groups", "remove-member", "staff", "ann@example.com")
	if code, body := ann.panel(a); code != http.StatusForbidden || !strings.Contains(body, "You cannot view this dashboard") {
		t.Errorf("A after the CLI removed the membership: %d", code)
	}

	// Logging out on B ends the session everywhere.
	saved := ann.cookie
	if res, _ := ann.do("POST", b, "/logout", url.Values{}, false); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout on B: %d", res.StatusCode)
	}
	ann.cookie = saved // a stolen copy of the cookie
	if res, _ := ann.do("GET", a, "/", nil, false); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Errorf("A after logout on B: %d %s, want a redirect to /login", res.StatusCode, res.Header.Get("Location"))
	}

	// Both answered those checks under their lease on what NOTIFY told
	// them (db/authz_lease.go), each with a row the writers wait for; a
	// stopped instance takes its row away.
	leases := func() (n int) {
		t.Helper()
		if err := store.DB.NewRaw("SELECT count(*) FROM authz_listeners WHERE lease_until > now()").Scan(context.Background(), &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := leases(); n != 2 {
		t.Errorf("running leases with two instances up: %d, want 2", n)
	}
	for _, in := range insts {
		if res, _ := newBrowser(t).do("GET", in, "/healthz", nil, false); res.StatusCode != http.StatusOK {
			t.Errorf("%s /healthz: %d", in.name, res.StatusCode)
		}
		in.stop(t)
		if logs := in.logs(); strings.Contains(logs, "panic") || strings.Contains(logs, "level=ERROR") {
			t.Errorf("%s logged errors:\n%s", in.name, logs)
		}
	}
	if n := leases(); n != 0 {
		t.Errorf("running leases after both instances stopped: %d, want 0 (writers would wait for them)", n)
	}
}
