package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIFlagsBeforeTheCommand: `gatehouse --data DIR users list` works as
// the README says flags do, and a --data that names the database file says
// what to pass instead.
func TestCLIFlagsBeforeTheCommand(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("", "users", "create", "ann@example.com")
	other := &cliEnv{t: t, data: filepath.Join(t.TempDir(), "none")} // the environment names no database
	if out := other.ok("", "--data", e.data, "users", "list"); !strings.Contains(out, "ann@example.com") {
		t.Errorf("--data before the command: %q", out)
	}
	if out := other.ok("", "--verbose", "--data="+e.data, "users", "list"); !strings.Contains(out, "ann@example.com") {
		t.Errorf("--verbose --data= before the command: %q", out)
	}
	other.fails(2, "is a file: pass the directory that holds gatehouse.db, or the file itself with --db", "",
		"--data", filepath.Join(e.data, "gatehouse.db"), "users", "list")
	other.fails(2, "is a file", "", "users", "list", "--data", filepath.Join(e.data, "gatehouse.db"))
	if out := other.ok("", "users", "list", "--db", filepath.Join(e.data, "gatehouse.db")); !strings.Contains(out, "ann@example.com") {
		t.Errorf("--db FILE: %q", out)
	}
}

// TestCLISuggestsNames: a mistyped group, dashboard or user gets a "did you
// mean", and creating a group that differs from one only in case names the
// one that exists.
func TestCLISuggestsNames(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("", "users", "create", "ann@example.com")
	e.ok("", "groups", "create", "Sales")
	e.fails(1, `a group named "Sales" already exists (names are unique regardless of case)`, "", "groups", "create", "sales")
	e.fails(1, `no group named "Slaes" (did you mean "Sales"?)`, "", "groups", "members", "Slaes")
	e.fails(1, `no group named "sales-team"`, "", "groups", "members", "sales-team")
	e.fails(1, `no dashboard "acess" (did you mean "access"?)`, "", "grants", "add", "acess", "Sales")
	e.fails(1, `no user with email ann@exmple.com (did you mean "ann@example.com"?)`, "", "groups", "add-member", "Sales", "ann@exmple.com")
	if _, errOut, _ := e.run("", "groups", "members", "marketing"); strings.Contains(errOut, "did you mean") {
		t.Errorf("a name far from every group got a suggestion: %q", errOut)
	}
}

// TestAccessApplyRefusesMassRemovals: a file that would remove more than a
// few percent of the groups, memberships or grants (a truncated file in CI)
// is refused by apply, warned about by plan, and goes through only when
// --allow-removals says how many removals are meant.
func TestAccessApplyRefusesMassRemovals(t *testing.T) {
	e := newCLIEnv(t)
	for i := range 10 {
		e.ok("", "users", "create", fmt.Sprintf("u%d@example.com", i))
		e.ok("", "groups", "create", fmt.Sprintf("team-%d", i))
		e.ok("", "groups", "add-member", fmt.Sprintf("team-%d", i), fmt.Sprintf("u%d@example.com", i))
	}
	e.ok("", "grants", "add", "access", "team-0")
	exported := e.ok("", "access", "export")
	// Cut the file after the second group: eight groups, their members and
	// the grants (at the file's end) are gone from it.
	cut := exported[:strings.Index(exported, "  - name: team-2")]
	file := filepath.Join(t.TempDir(), "truncated.yaml")
	if err := os.WriteFile(file, []byte(cut), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := e.run("", "access", "plan", file)
	if code != 2 || !strings.Contains(errOut, "would remove 8 of 10 groups, 8 of 10 memberships and 1 of 1 grants; apply refuses it without --allow-removals 17") {
		t.Errorf("plan: exit %d, stderr %q", code, errOut)
	}
	e.fails(1, "would remove 8 of 10 groups, 8 of 10 memberships and 1 of 1 grants; nothing was changed. If that is meant, run it again with --allow-removals 17", "", "access", "apply", file)
	e.fails(1, "nothing was changed", "", "access", "apply", file, "--allow-removals", "16")
	if out := e.ok("", "groups", "list"); !strings.Contains(out, "team-9") {
		t.Fatalf("a refused apply removed groups:\n%s", out)
	}
	e.fails(2, "--yes works only on a terminal", "", "access", "apply", file, "--yes")
	if out := e.ok("", "access", "apply", file, "--allow-removals", "17"); !strings.Contains(out, "Applied: 0 added, 0 changed, 9 removed") {
		t.Errorf("apply with --allow-removals: %q", out)
	}
	if out := e.ok("", "groups", "list"); strings.Contains(out, "team-9") {
		t.Errorf("the allowed apply left team-9:\n%s", out)
	}
	// A small edit (one membership of many) passes without a flag.
	e.ok("", "groups", "add-member", "team-0", "u5@example.com")
	small := e.ok("", "access", "export")
	small = strings.Replace(small, "\n      - u5@example.com", "", 1)
	if err := os.WriteFile(file, []byte(small), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := e.ok("", "access", "apply", file); !strings.Contains(out, "1 removed") {
		t.Errorf("a small removal: %q", out)
	}
}
