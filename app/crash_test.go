package app

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gatehouse/db"
)

// startServer runs `gatehouse serve` with args on a free loopback port and
// returns its base URL and process.
func startServer(t *testing.T, args ...string) (string, *exec.Cmd) {
	t.Helper()
	in := startServes(t, buildGatehouse(t), serveSpec{name: "gatehouse", args: args})[0]
	return in.url, in.cmd
}

// TestCommittedChangesSurviveSIGKILL logs in many times concurrently, kills
// the server with SIGKILL mid-stream, and checks after a restart that every
// acknowledged login (session and audit row) is intact.
func TestCommittedChangesSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	data := filepath.Join(t.TempDir(), "data")
	e := &cliEnv{t: t, data: data}
	e.ok("", "migrate") // only serve and migrate create a database
	e.ok(testPassword+"\n", "users", "create", "ann@example.com", "--password-stdin")
	base, cmd := startServer(t, "--data", data)

	var mu sync.Mutex
	var cookies []*http.Cookie
	var stop atomic.Bool
	var wg sync.WaitGroup
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				res, err := client.PostForm(base+"/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}})
				if err != nil {
					return // the server is gone
				}
				res.Body.Close()
				if res.StatusCode == http.StatusSeeOther {
					mu.Lock()
					for _, c := range res.Cookies() {
						if c.Name != "gatehouse_device" { // the session cookie only
							cookies = append(cookies, c)
						}
					}
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	stop.Store(true)
	wg.Wait()
	_ = cmd.Wait()
	acknowledged := len(cookies)
	if acknowledged == 0 {
		t.Fatal("no login was acknowledged before the kill")
	}

	store, err := db.Open(context.Background(), db.Config{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	var check string
	if err := store.DB.NewRaw("PRAGMA integrity_check").Scan(context.Background(), &check); err != nil || check != "ok" {
		t.Fatalf("integrity_check after SIGKILL = %q, %v", check, err)
	}
	logins, _ := store.DB.NewSelect().Model((*db.AuditEvent)(nil)).Where("action = ?", db.ActionLogin).Count(context.Background())
	store.Close()
	if int(logins) < acknowledged {
		t.Errorf("%d logins acknowledged but only %d audit rows survived", acknowledged, logins)
	}

	base, _ = startServer(t, "--data", data)
	lost := 0
	for _, ck := range cookies {
		req, _ := http.NewRequest("GET", base+"/", nil)
		req.AddCookie(ck)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "Log out") {
			lost++
		}
	}
	t.Logf("%d logins acknowledged before SIGKILL, %d audit rows after restart, %d sessions lost", acknowledged, logins, lost)
	if lost > 0 {
		t.Errorf("%d of %d acknowledged sessions were lost", lost, acknowledged)
	}
}
