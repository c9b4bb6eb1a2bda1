package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/db"
)

// soakDuration is how long TestSoak loads the server: 30 s in the suite,
// or GATEHOUSE_SOAK (a Go duration, e.g. 10m) for a longer run.
func soakDuration(t *testing.T) time.Duration {
	if v := os.Getenv("GATEHOUSE_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("GATEHOUSE_SOAK=%q: %v", v, err)
		}
		return d
	}
	return 30 * time.Second
}

// soakDirBound is the most the data directory (database, WAL and
// shared-memory file) may grow during the suite's soak; a longer soak
// scales it by its length. SECURITY.md states it with the measured figures.
const soakDirBound = 32 << 20

// dirSize is the total size of the regular files in dir.
func dirSize(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
	}
	return n
}

// soakClient sends requests with one fixed cookie (or none).
type soakClient struct {
	base   string
	cookie *http.Cookie
	http   *http.Client
}

func (c *soakClient) send(method, path string, form url.Values) (int, string, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return 0, "", "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if strings.Contains(path, "/panels/") {
		req.Header.Set("HX-Request", "true")
	}
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Retry-After"), string(b), nil
}

// TestSoak is the proof issue 12 asks for: one `gatehouse serve` under
// mixed load (panel reads, correct logins, a throttled flood, admin
// writes) while other processes run CLI commands (reads and writes),
// `backup` and a second `serve` on the same data directory, in a loop.
// Afterwards: no 5xx but the 503-with-Retry-After of a saturated password
// hasher, a correct login works, every acknowledged write is in the
// database, PRAGMA integrity_check is ok, and the data directory grew less
// than soakDirBound (per 30 s of load).
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary for 30 s; skipped with -short")
	}
	length := soakDuration(t)
	bin := buildGatehouse(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	backups := filepath.Join(dir, "backups")
	if err := os.Mkdir(backups, 0o700); err != nil {
		t.Fatal(err)
	}
	e := &cliEnv{t: t, data: data}
	e.ok("", "migrate") // only serve and migrate create a database
	e.ok(testPassword+"\n", "users", "create", "root@example.com", "--admin", "--password-stdin")
	e.ok(testPassword+"\n", "users", "create", "ann@example.com", "--password-stdin")
	e.ok(testPassword+"\n", "users", "create", "victim@example.com", "--password-stdin")
	e.ok("", "groups", "create", "staff")
	e.ok("", "groups", "add-member", "staff", "ann@example.com")
	e.ok("", "grants", "add", "access", "staff")
	srv := startServes(t, bin, serveSpec{name: "server", args: []string{"--data", data}})[0]

	root, ann := newBrowser(t), newBrowser(t)
	root.login(srv, "root@example.com")
	ann.login(srv, "ann@example.com")
	client := floodClient()
	rootC := &soakClient{base: srv.url, cookie: root.cookie, http: client}
	annC := &soakClient{base: srv.url, cookie: ann.cookie, http: client}
	anon := &soakClient{base: srv.url, http: client}

	startSize := dirSize(data)
	var peakSize atomic.Int64
	var tally statusTally
	var mu sync.Mutex
	var httpGroups, cliGroups []string
	var logins, panels, flooded, cliRuns, backupsMade, serves atomic.Int64
	deadline := time.Now().Add(length)
	var wg sync.WaitGroup
	loop := func(n int, fn func(worker, i int)) {
		for w := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Now().Before(deadline); i++ {
					fn(w, i)
				}
			}()
		}
	}
	// Unexpected answers are recorded as "bad" with the status they had.
	expect := func(what string, code int, retry, body string, err error, want ...int) bool {
		if err != nil {
			tally.add(0, "", err.Error(), what)
			return false
		}
		tally.add(code, retry, body, what)
		for _, w := range want {
			if code == w {
				return true
			}
		}
		if code < 500 { // 5xx are judged by the tally
			tally.mu.Lock()
			if len(tally.bad) < 10 {
				tally.bad = append(tally.bad, fmt.Sprintf("%s: unexpected %d", what, code))
			}
			tally.mu.Unlock()
		}
		return false
	}

	loop(2, func(_, _ int) { // panel reads
		code, retry, body, err := annC.send("GET", "/dashboards/access/panels/overview", nil)
		if expect("panel read", code, retry, body, err, http.StatusOK) {
			panels.Add(1)
		}
	})
	loop(2, func(_, _ int) { // correct logins: each an argon2 hash
		code, retry, body, err := anon.send("POST", "/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}})
		if expect("login", code, retry, body, err, http.StatusSeeOther, http.StatusServiceUnavailable) && code == http.StatusSeeOther {
			logins.Add(1)
		}
	})
	loop(4, func(_, _ int) { // the throttled flood
		code, retry, body, err := anon.send("POST", "/login", url.Values{"email": {"victim@example.com"}, "password": {"wrong password"}})
		if expect("flooded login", code, retry, body, err, http.StatusUnauthorized, http.StatusTooManyRequests, http.StatusServiceUnavailable) {
			flooded.Add(1)
		}
	})
	loop(1, func(_, i int) { // admin writes
		name := fmt.Sprintf("soak-http-%d", i)
		code, retry, body, err := rootC.send("POST", "/admin/groups", url.Values{"name": {name}})
		if expect("admin write", code, retry, body, err, http.StatusSeeOther) {
			mu.Lock()
			httpGroups = append(httpGroups, name)
			mu.Unlock()
		}
		time.Sleep(20 * time.Millisecond)
	})
	loop(1, func(_, _ int) { // the data directory's size
		if n := dirSize(data); n > peakSize.Load() {
			peakSize.Store(n)
		}
		time.Sleep(100 * time.Millisecond)
	})
	loop(1, func(_, i int) { // other processes on the same directory
		run := func(args ...string) bool {
			out, err := runGatehouse(bin, append(args, "--data", data)...)
			cliRuns.Add(1)
			if err != nil {
				tally.add(0, "", fmt.Sprintf("%v: %.300s", err, out), "gatehouse "+strings.Join(args, " "))
			}
			return err == nil
		}
		run("users", "list")
		run("audit", "list", "--limit", "20")
		name := fmt.Sprintf("soak-cli-%d", i)
		if run("groups", "create", name) {
			mu.Lock()
			cliGroups = append(cliGroups, name)
			mu.Unlock()
		}
		backup := filepath.Join(backups, fmt.Sprintf("b-%d.db", i))
		if run("backup", backup) {
			backupsMade.Add(1)
			if i%5 == 0 {
				checkIntegrity(t, backup, "backup "+backup)
			}
			_ = os.Remove(backup)
		}
		if i%3 == 0 { // a second server on the same directory, briefly
			second := startServes(t, bin, serveSpec{name: fmt.Sprintf("second-%d", i), args: []string{"--data", data}})[0]
			c := &soakClient{base: second.url, cookie: ann.cookie, http: client}
			code, retry, body, err := c.send("GET", "/dashboards/access/panels/overview", nil)
			expect("panel read on the second server", code, retry, body, err, http.StatusOK)
			second.stop(t)
			if errs := errorLines(second.logs()); len(errs) > 0 {
				tally.add(0, "", errs[0], "second server log")
			}
			serves.Add(1)
		}
	})
	wg.Wait()

	// After the load: a correct login works and the admin can still write.
	code, retry, body, err := anon.send("POST", "/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}})
	expect("login after the soak", code, retry, body, err, http.StatusSeeOther)
	code, retry, body, err = rootC.send("POST", "/admin/groups", url.Values{"name": {"after-soak"}})
	if expect("admin write after the soak", code, retry, body, err, http.StatusSeeOther) {
		httpGroups = append(httpGroups, "after-soak")
	}
	if n := dirSize(data); n > peakSize.Load() {
		peakSize.Store(n)
	}
	srv.stop(t)
	if errs := errorLines(srv.logs()); len(errs) > 0 {
		t.Errorf("the server logged %d errors, the first:\n%s", len(errs), strings.Join(errs[:min(len(errs), 5)], "\n"))
	}

	growth := peakSize.Load() - startSize
	bound := int64(soakDirBound) * max(1, int64(length/(30*time.Second)))
	t.Logf("soak %s: %d panel reads, %d logins, %d flooded logins, %d admin writes, %d CLI runs (%d backups, %d CLI writes), %d second servers; answers %s; data dir %.1f MB -> peak %.1f MB (+%.1f MB, bound %d MB)",
		length, panels.Load(), logins.Load(), flooded.Load(), len(httpGroups), cliRuns.Load(), backupsMade.Load(), len(cliGroups), serves.Load(),
		tally.String(), float64(startSize)/(1<<20), float64(peakSize.Load())/(1<<20), float64(growth)/(1<<20), bound>>20)
	if len(tally.bad) > 0 {
		t.Errorf("answers that must not happen: %v", tally.bad)
	}
	if growth > bound {
		t.Errorf("the data directory grew by %d bytes, want at most %d", growth, bound)
	}
	if panels.Load() == 0 || logins.Load() == 0 || len(httpGroups) < 2 || len(cliGroups) == 0 || backupsMade.Load() == 0 || serves.Load() == 0 {
		t.Errorf("some load never ran: %d panels, %d logins, %d admin writes, %d CLI writes, %d backups, %d second servers",
			panels.Load(), logins.Load(), len(httpGroups), len(cliGroups), backupsMade.Load(), serves.Load())
	}

	ctx := context.Background()
	checkIntegrity(t, filepath.Join(data, "gatehouse.db"), "the database")
	store, err := db.Open(ctx, db.Config{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	missing := 0
	for _, name := range append(httpGroups, cliGroups...) {
		if _, err := store.GroupByName(ctx, name); err != nil {
			missing++
			if missing < 5 {
				t.Errorf("acknowledged group %s: %v", name, err)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged groups are missing", missing, len(httpGroups)+len(cliGroups))
	}
	audited, err := store.DB.NewSelect().Model((*db.AuditEvent)(nil)).
		Where("action = ? AND target = ?", db.ActionLogin, "ann@example.com").Count(ctx)
	if err != nil || int64(audited) < logins.Load()+1 {
		t.Errorf("%d login audit rows for %d acknowledged logins (%v)", audited, logins.Load()+1, err)
	}
	throttled, err := store.DB.NewSelect().Model((*db.AuditEvent)(nil)).Where("action = ?", db.ActionLoginThrottled).Count(ctx)
	if err != nil || int64(throttled) > 1+int64(length/DefaultConfig().ThrottleWindow) {
		t.Errorf("%d login.throttled rows for one address flooding one account for %s (%v)", throttled, length, err)
	}
}

// checkIntegrity runs PRAGMA integrity_check on the SQLite file at path.
func checkIntegrity(t *testing.T, path, what string) {
	t.Helper()
	ctx := context.Background()
	s, err := db.Open(ctx, db.Config{DSN: path})
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	defer s.Close()
	var check string
	if err := s.DB.NewRaw("PRAGMA integrity_check").Scan(ctx, &check); err != nil || check != "ok" {
		t.Errorf("%s: integrity_check = %q, %v", what, check, err)
	}
}
