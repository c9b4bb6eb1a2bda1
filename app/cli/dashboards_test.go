package cli

import (
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

var problemLine = regexp.MustCompile(`^[^:]+:\d+:\d+: \S`)

// TestCLIDashboardFiles: new writes a starter file, check validates it
// against its database (exit 0), places each problem at FILE:LINE:COL
// (exit 1), and list shows file dashboards.
func TestCLIDashboardFiles(t *testing.T) {
	e := newCLIEnv(t)
	dir := filepath.Join(t.TempDir(), "dashboards")
	out := e.ok("", "dashboards", "new", "orders", "--dir", dir)
	if !strings.Contains(out, "wrote "+filepath.Join(dir, "orders.yaml")) {
		t.Errorf("dashboards new says %q", out)
	}
	e.fails(1, "already exists", "", "dashboards", "new", "orders", "--dir", dir)
	e.fails(2, "must be 1-64 of a-z", "", "dashboards", "new", "Bad Slug", "--dir", dir)

	// The starter names source "main": without sources.yaml, check says so.
	_, errOut, code := e.run("", "dashboards", "check", dir)
	if code != 1 || !strings.Contains(errOut, "orders.yaml:8:9: source \"main\" is not named in sources.yaml") {
		t.Errorf("check without sources: exit %d, stderr %q", code, errOut)
	}

	shop := filepath.Join(dir, "shop.db")
	rw, err := sql.Open("sqlite", shop)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"CREATE TABLE orders (region TEXT)", "INSERT INTO orders VALUES ('north')"} {
		if _, err := rw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	rw.Close()
	if err := os.WriteFile(filepath.Join(dir, "sources.yaml"), []byte("sources:\n  main: sqlite:shop.db\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := e.ok("", "dashboards", "check", dir); !strings.Contains(out, "1 dashboard and 1 source, all valid") {
		t.Errorf("check of the starter: %q", out)
	}

	// A query the database rejects, and a bad chart.
	path := filepath.Join(dir, "orders.yaml")
	data, _ := os.ReadFile(path)
	broken := strings.Replace(strings.Replace(string(data), "SELECT count(*) AS rows FROM orders", "SELECT count(*) AS rows FROM nowhere", 1),
		"chart: bar ", "chart: pie ", 1)
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = e.run("", "dashboards", "check", dir)
	if code != 1 || !strings.Contains(errOut, path+":28:12: chart \"pie\" must be one of bar, line, stat, table") {
		t.Errorf("check of a bad chart: exit %d, stderr %q", code, errOut)
	}
	broken = strings.Replace(broken, "chart: pie ", "chart: bar ", 1)
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = e.run("", "dashboards", "check", dir)
	if code != 1 || !strings.Contains(errOut, path+":25:7: panel overview: SQLite says:") || !strings.Contains(errOut, "no such table: nowhere") {
		t.Errorf("check of a bad query: exit %d, stderr %q", code, errOut)
	}
	for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
		if !problemLine.MatchString(line) {
			t.Errorf("check printed %q on stderr, not FILE:LINE:COL: message", line)
		}
	}
	if out := e.ok("", "dashboards", "list", "--dashboards", dir); !strings.Contains(out, "orders") || !strings.Contains(out, "by-region") {
		t.Errorf("dashboards list lacks the file dashboard:\n%s", out)
	}
	// Grants and the access check know file dashboards (GATEHOUSE_DASHBOARDS).
	t.Setenv("GATEHOUSE_DASHBOARDS", dir)
	e.ok("", "groups", "create", "sales")
	e.ok("correct-horse-battery-9\n", "users", "create", "ana@example.com", "--password-stdin")
	e.ok("", "groups", "add-member", "sales", "ana@example.com")
	e.fails(1, "no dashboard", "", "grants", "add", "ordres", "sales")
	e.ok("", "grants", "add", "orders", "sales")
	if out := e.ok("", "access", "check", "ana@example.com", "orders"); !strings.Contains(out, "sales") {
		t.Errorf("access check for a file dashboard: %q", out)
	}
}
