package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/db"
	"gatehouse/db/postgrestest"
)

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
	proxy := postgrestest.NewProxy(t, dsn)
	proxy.Start()
	ta := newTestAppOn(t, proxy.DSN)
	ta.createUser(t, "root@example.com", true)
	c := ta.login(t, "root@example.com")
	for _, path := range []string{"/", "/healthz", "/dashboards/access/panels/overview"} {
		if res, _ := ta.get(t, c, path, false); res.StatusCode != http.StatusOK {
			t.Fatalf("before the outage: %s %d", path, res.StatusCode)
		}
	}

	proxy.Stop()
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

	proxy.Start()
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
	proxy.Stop()
	proxy.Start()
	time.Sleep(50 * time.Millisecond) // let the closes reach the app's sockets
	for i := range 6 {
		if res, body := ta.get(t, c, "/dashboards/access/panels/overview", true); res.StatusCode != http.StatusOK {
			t.Errorf("request %d after a restart: %d (%d bytes)", i, res.StatusCode, len(body))
		}
	}
}

// lastLine is what an operator reads first: the final error line.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
