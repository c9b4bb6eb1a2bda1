package cli

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse/db"
	"gatehouse/db/postgrestest"
)

// seedForCopy fills the CLI environment's SQLite database through the CLI
// and returns a logged-in browser cookie made by an app on it.
func seedForCopy(t *testing.T, e *cliEnv) {
	t.Helper()
	e.ok(testPassword+"\n", "users", "create", "ann@example.com", "--password-stdin", "--admin")
	e.ok(testPassword+"\n", "users", "create", "bob@example.com", "--password-stdin")
	e.ok("", "groups", "create", "Sales")
	e.ok("", "groups", "add-member", "sales", "bob@example.com")
	e.ok("", "grants", "add", "access", "sales")
}

// The moved database works with the same logins and decisions: the CLI
// sees the same users and access on the target.
func checkCopied(t *testing.T, e *cliEnv, target string) {
	t.Helper()
	out := e.ok("", "users", "list", "--db", target)
	for _, want := range []string{"ann@example.com", "bob@example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("users on the target lack %s:\n%s", want, out)
		}
	}
	if out := e.ok("", "access", "check", "bob@example.com", "access", "--db", target); !strings.Contains(out, "allowed") {
		t.Errorf("bob's access on the target: %s", out)
	}
	// New rows get new ids, after the copied ones.
	e.ok(testPassword+"\n", "users", "create", "cy@example.com", "--password-stdin", "--db", target)
}

func TestCLICopySQLiteToSQLite(t *testing.T) {
	e := newCLIEnv(t)
	seedForCopy(t, e)
	target := filepath.Join(t.TempDir(), "moved", "gatehouse.db")

	out := e.ok("", "copy", "--from", e.data, "--to", target)
	for _, want := range []string{"users", "audit_events", "copied " + filepath.Join(e.data, "gatehouse.db") + " into " + target} {
		if !strings.Contains(out, want) {
			t.Errorf("copy output lacks %q:\n%s", want, out)
		}
	}
	checkCopied(t, e, target)

	e.fails(1, "the target database is not empty: it already has rows in users (3)", "", "copy", "--from", e.data, "--to", target)
	e.fails(1, "does not exist", "", "copy", "--from", filepath.Join(t.TempDir(), "nope.db"), "--to", filepath.Join(t.TempDir(), "x.db"))
	e.fails(1, "name the same database", "", "copy", "--from", e.data, "--to", filepath.Join(e.data, "gatehouse.db"))
	e.fails(2, "both --from and --to are required", "", "copy", "--from", e.data)
	if out, _, code := e.run("", "copy", "--help"); code != 0 || !strings.Contains(out, "usage: gatehouse copy") {
		t.Errorf("copy --help: %d %s", code, out)
	}
}

func TestCLICopySQLiteToPostgres(t *testing.T) {
	dsn := postgrestest.Schema(t)
	e := newCLIEnv(t)
	seedForCopy(t, e)

	// Someone is logged in on the old server; the move keeps them logged in.
	old := serve(t, "--data", e.data)
	cookie := old.login(t, "bob@example.com")
	old.stop()

	out := e.ok("", "copy", "--from", filepath.Join(e.data, "gatehouse.db"), "--to", dsn)
	if !strings.Contains(out, "copied ") || !strings.Contains(out, "sessions") {
		t.Errorf("copy output:\n%s", out)
	}
	checkCopied(t, e, dsn)

	pg := serve(t, "--db", dsn)
	req, _ := http.NewRequest("GET", pg.URL+"/dashboards/access/panels/overview", nil)
	req.Header.Set("HX-Request", "true")
	req.AddCookie(cookie)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("the session made on SQLite, used on PostgreSQL: %d %s", res.StatusCode, body)
	}

	e.fails(1, "the target database is not empty", "", "copy", "--from", e.data, "--to", dsn)
	store, err := db.Open(context.Background(), db.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if n, _ := store.CountActiveAdmins(context.Background()); n != 1 {
		t.Errorf("%d admins on the target, want 1", n)
	}
}
