package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/db"
)

// runGatehouse runs the binary once (a separate process) and returns its
// combined output and error.
func runGatehouse(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// errorLines returns a log's lines at level ERROR, except the request log's
// lines for 503s: a saturated password hasher answers 503 on purpose, and
// any other 503 (a storage error) has its own "request failed" line.
func errorLines(logs string) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "msg=request ") && strings.Contains(line, "status=503 ") {
			continue
		}
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "panic") {
			out = append(out, line)
		}
	}
	return out
}

// statusTally counts answers by status code.
type statusTally struct {
	mu    sync.Mutex
	codes map[int]int
	// bad holds a few descriptions of answers that must not happen.
	bad []string
}

// add counts one answer. A 5xx is bad unless it is the 503 with
// Retry-After that says the password hasher is saturated.
func (s *statusTally) add(code int, retryAfter, body, what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.codes == nil {
		s.codes = map[int]int{}
	}
	s.codes[code]++
	hashBusy := code == http.StatusServiceUnavailable && retryAfter != "" && strings.Contains(body, "is busy")
	if (code == 0 || code >= 500) && !hashBusy && len(s.bad) < 10 {
		if i := strings.Index(body, "<main"); i >= 0 {
			body = body[i:] // the message, not the page's head
		}
		s.bad = append(s.bad, fmt.Sprintf("%s: %d %.300s", what, code, body))
	}
}

// floodClient keeps a connection per flooding goroutine, as a load tool does.
func floodClient() *http.Client {
	return &http.Client{Timeout: 15 * time.Second,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 64},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (s *statusTally) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprint(s.codes)
}

// TestCLIDuringWriteLoadKeepsTheServerWriting: while a gatehouse server
// answers a flood of throttled logins (each one a write), other processes
// run `users list` and `backup` on the same data directory. Opening the
// database in another process must not disturb the server: during and after
// the flood it answers no 5xx, a correct login and an admin change still
// succeed, and their audit rows are in the database.
//
// Before the fix, the server's WAL watch closed a descriptor of the -shm
// file, which dropped the server's own SQLite locks on it; the next process
// to open the database rebuilt the wal-index under the running server, and
// every later write failed with SQLITE_IOERR_IN_PAGE.
func TestCLIDuringWriteLoadKeepsTheServerWriting(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	const rounds = 8
	bin := buildGatehouse(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	e := &cliEnv{t: t, data: data}
	e.ok("", "migrate") // only serve and migrate create a database
	e.ok("", "migrate") // only serve and migrate create a database
	e.ok(testPassword+"\n", "users", "create", "root@example.com", "--admin", "--password-stdin")
	e.ok(testPassword+"\n", "users", "create", "victim@example.com", "--password-stdin")
	srv := startServes(t, bin, serveSpec{name: "server", args: []string{"--data", data}})[0]

	root := newBrowser(t)
	root.login(srv, "root@example.com")

	// Lock the victim's account, then flood it: every answer is a cheap 429
	// and (today) a write.
	var tally statusTally
	client := floodClient()
	bad := url.Values{"email": {"victim@example.com"}, "password": {"wrong password"}}.Encode()
	post := func() (int, string, string, error) {
		res, err := client.Post(srv.url+"/login", "application/x-www-form-urlencoded", strings.NewReader(bad))
		if err != nil {
			return 0, "", "", err
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode, res.Header.Get("Retry-After"), string(body), nil
	}
	for range 6 {
		if _, _, _, err := post(); err != nil {
			t.Fatal(err)
		}
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var sent atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				code, retry, body, err := post()
				if err != nil {
					tally.add(0, "", err.Error(), "flooded login")
					return
				}
				sent.Add(1)
				tally.add(code, retry, body, "flooded login")
			}
		}()
	}

	// Meanwhile other processes open the same database, again and again.
	for sent.Load() < 300 { // the flood is under way
		time.Sleep(10 * time.Millisecond)
	}
	for i := range rounds {
		if out, err := runGatehouse(bin, "users", "list", "--data", data); err != nil || !strings.Contains(out, "root@example.com") {
			t.Errorf("users list: %v\n%s", err, out)
		}
		backup := filepath.Join(dir, fmt.Sprintf("backup-%d.db", i))
		if out, err := runGatehouse(bin, "backup", backup, "--data", data); err != nil {
			t.Errorf("backup: %v\n%s", err, out)
		}
		// The server writes in between.
		res, body := root.do("POST", srv, "/admin/groups", url.Values{"name": {fmt.Sprintf("during-%d", i)}}, false)
		tally.add(res.StatusCode, res.Header.Get("Retry-After"), body, "admin change during the flood")
	}
	stop.Store(true)
	wg.Wait()

	// After the other processes have come and gone, the server still writes.
	again := newBrowser(t)
	res, body := again.do("POST", srv, "/login", url.Values{"email": {"root@example.com"}, "password": {testPassword}}, false)
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("a correct login after the CLI ran: %d\n%s", res.StatusCode, body)
	}
	res, body = root.do("POST", srv, "/admin/groups", url.Values{"name": {"after-cli"}}, false)
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("an admin change after the CLI ran: %d\n%s", res.StatusCode, body)
	}
	t.Logf("%d flooded logins, answers %s", sent.Load(), tally.String())
	if len(tally.bad) > 0 {
		t.Errorf("answers that must not happen: %v", tally.bad)
	}
	srv.stop(t)
	if errs := errorLines(srv.logs()); len(errs) > 0 {
		t.Errorf("the server logged %d errors, the first:\n%s", len(errs), strings.Join(errs[:min(len(errs), 5)], "\n"))
	}

	ctx := context.Background()
	store, err := db.Open(ctx, db.Config{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var check string
	if err := store.DB.NewRaw("PRAGMA integrity_check").Scan(ctx, &check); err != nil || check != "ok" {
		t.Errorf("integrity_check = %q, %v", check, err)
	}
	for i := range rounds {
		if _, err := store.GroupByName(ctx, fmt.Sprintf("during-%d", i)); err != nil {
			t.Errorf("group during-%d: %v", i, err)
		}
	}
	if _, err := store.GroupByName(ctx, "after-cli"); err != nil {
		t.Errorf("the group made after the CLI ran: %v", err)
	}
	for _, want := range []struct{ action, target string }{
		{db.ActionLogin, "root@example.com"},
		{db.ActionGroupCreate, "after-cli"},
	} {
		n, err := store.DB.NewSelect().Model((*db.AuditEvent)(nil)).Where("action = ? AND target = ?", want.action, want.target).Count(ctx)
		if err != nil || n == 0 {
			t.Errorf("no %s audit row for %s (%v)", want.action, want.target, err)
		}
	}
}
