package cli

import (
	"context"
	"gatehouse/app"
	"gatehouse/db"
	"gatehouse/internal/testutil"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLIAccessAsCode(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, u := range []string{"ann@example.com", "bob@example.com", "cy@example.com"} {
		e.ok("", "users", "create", u)
	}
	e.ok("", "groups", "create", "sales", "--description", "The sales team")
	e.ok("", "groups", "add-member", "sales", "ann@example.com", "--expires", "2099-06-30")
	e.ok("", "groups", "add-member", "sales", "bob@example.com")
	e.ok("", "groups", "add-manager", "sales", "bob@example.com")
	e.ok("", "grants", "add", "access", "sales")

	// export → apply → plan: nothing to change.
	exported := e.ok("", "access", "export")
	for _, want := range []string{"version: 1", "- name: sales", "description: The sales team", "managers:\n      - bob@example.com",
		"- {email: ann@example.com, expires: 2099-06-30}\n      - bob@example.com", "grants:\n  access:\n    - sales"} {
		if !strings.Contains(exported, want) {
			t.Errorf("export lacks %q:\n%s", want, exported)
		}
	}
	if again := e.ok("", "access", "export"); again != exported {
		t.Error("two exports of the same state differ")
	}
	file := write("access.yaml", exported)
	if out := e.ok("", "access", "apply", file); !strings.Contains(out, "No changes") {
		t.Errorf("apply of an export: %q", out)
	}
	if out, errOut, code := e.run("", "access", "plan", file); code != 0 || !strings.Contains(out, "No changes: the database already matches") {
		t.Errorf("plan of an export: exit %d, %q %q", code, out, errOut)
	}

	// Edit: cy joins sales until a date, bob leaves, a new group "ops" gets "access".
	edited := strings.Replace(exported, "expires: 2099-06-30}\n      - bob@example.com\n", "expires: 2099-06-30}\n      - {email: cy@example.com, expires: 2099-01-31}\n", 1)
	edited = strings.Replace(edited, "grants:\n  access:\n    - sales\n", "  - name: ops\n    members: [bob@example.com]\ngrants:\n  access:\n    - ops\n", 1)
	file = write("edited.yaml", edited)
	out, errOut, code := e.run("", "access", "plan", file)
	wantPlan := `- member "sales" / bob@example.com
+ member "sales" / cy@example.com (until 2099-01-31)
`
	if code != 2 || !strings.Contains(out, `+ group "ops"`+"\n"+`+ member "ops" / bob@example.com`) || !strings.Contains(out, wantPlan) ||
		!strings.Contains(out, `+ grant access → "ops"`+"\n"+`- grant access → "sales"`) || !strings.Contains(out, "Plan: 4 to add, 0 to change, 2 to remove.") {
		t.Errorf("plan of the edit: exit %d\n%s%s", code, out, errOut)
	}
	// Before apply, bob may open "access" through sales; cy may not.
	e.ok("", "access", "check", "bob@example.com", "access")
	e.fails(1, "", "", "access", "check", "cy@example.com", "access")
	if out := e.ok("", "access", "apply", file); !strings.Contains(out, "Applied: 4 added, 0 changed, 2 removed (sha256 ") {
		t.Errorf("apply: %q", out)
	}
	if out := e.ok("", "access", "check", "bob@example.com", "access"); !strings.Contains(out, `member of "ops"`) {
		t.Errorf("access check after apply: %q", out)
	}
	if out, _, code := e.run("", "access", "check", "ann@example.com", "access"); code != 1 || !strings.Contains(out, "denied") {
		t.Errorf("ann after the grant moved to ops: exit %d %q", code, out)
	}
	if out := e.ok("", "access", "plan", file); !strings.Contains(out, "No changes") {
		t.Errorf("plan after apply: %q", out)
	}
	if out := e.ok("", "audit", "list", "--action", "access.apply"); !strings.Contains(out, "edited.yaml") || !strings.Contains(out, `"sha256":"`) {
		t.Errorf("audit of the apply: %q", out)
	}

	// A bad file: every problem with its line and column, exit 1, nothing applied.
	bad := write("bad.yaml", "version: 1\ngroups:\n  - name: sales\n    members: [nobody@example.com]\n    color: red\ngrants:\n  nope: [sales]\n")
	before := e.ok("", "access", "export")
	out, errOut, code = e.run("", "access", "apply", bad)
	if code != 1 || out != "" ||
		!strings.Contains(errOut, bad+":4:15: unknown email nobody@example.com") ||
		!strings.Contains(errOut, bad+`:5:5: unknown key "color" in a group`) ||
		!strings.Contains(errOut, bad+`:7:3: unknown dashboard "nope"`) ||
		!strings.Contains(errOut, "3 problems in "+bad+"; nothing was changed") {
		t.Errorf("apply of a bad file: exit %d\nstdout %q\nstderr %s", code, out, errOut)
	}
	if e.ok("", "access", "export") != before {
		t.Error("a bad file changed the database")
	}
	if _, _, code := e.run("", "access", "plan", bad); code != 1 {
		t.Errorf("plan of a bad file: exit %d, want 1", code)
	}

	// Over 10 MB: refused before reading.
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("version: 1\n#"+strings.Repeat("x", 10<<20)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.fails(1, big+":1: the file is 10.0 MB; access files are limited to 10 MB", "", "access", "apply", big)

	// Standard input works too.
	if out, _, code := e.run(edited, "access", "plan", "-"); code != 0 || !strings.Contains(out, "No changes") {
		t.Errorf("plan from stdin: exit %d %q", code, out)
	}
	e.fails(2, "missing arguments", "", "access", "plan")
}

// TestExportsEscapeBidiAndC1Controls: `audit list --json` and `access
// export` write a right-to-left override (U+202E) and a C1 control
// (U+009B, CSI to some terminals) as escapes, as the text output does,
// never raw; the JSON still decodes, and the export applies back to the
// same values. (auditlog's TestTailEscapesBidiAndC1Controls does the same
// for --audit-log.)
func TestExportsEscapeBidiAndC1Controls(t *testing.T) {
	e := newCLIEnv(t)
	// The command line refuses such arguments; the web forms take them.
	const desc, idp = "Sales \u202eevil\u009b[31m red", "team-\u202ex"
	store, err := app.OpenStore(context.Background(), app.Config{DataDir: e.data})
	if err != nil {
		t.Fatal(err)
	}
	g, err := store.CreateGroup(context.Background(), db.Actor{Email: "web@example.com"}, "sales", desc)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.MapIdPGroup(context.Background(), db.Actor{Email: "web@example.com"}, g.ID, idp); err != nil {
		t.Fatal(err)
	}
	// A group named before names were checked for bidi controls.
	if _, err := store.CreateGroup(context.Background(), db.Actor{Email: "web@example.com"}, "old\u202ename", ""); err != nil {
		t.Fatal(err)
	}
	store.Close()
	raw := func(what, out string) {
		t.Helper()
		if strings.ContainsAny(out, "\u202e\u009b") {
			t.Errorf("%s carries a raw U+202E or U+009B:\n%q", what, out)
		}
	}

	out := e.ok("", "audit", "list", "--json")
	raw("audit list --json", out)
	var got []string
	for _, rec := range testutil.JSONLines(t, out) {
		got = append(got, mustJSON(t, rec))
	}
	if joined := strings.Join(got, "\n"); !strings.Contains(joined, desc) || !strings.Contains(joined, idp) {
		t.Errorf("the decoded audit records lost the values:\n%s", joined)
	}

	exported := e.ok("", "access", "export")
	raw("access export", exported)
	if !strings.Contains(exported, `description: "Sales \u202Eevil\x9B[31m red"`) || !strings.Contains(exported, `- "team-\u202Ex"`) ||
		!strings.Contains(exported, `- name: "old\u202Ename"`) {
		t.Errorf("export does not write the escapes:\n%s", exported)
	}
	file := filepath.Join(t.TempDir(), "access.yaml")
	if err := os.WriteFile(file, []byte(exported), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := e.run("", "access", "plan", file); code != 0 || !strings.Contains(out, "No changes") {
		t.Errorf("plan of the export: exit %d, %q %q", code, out, errOut)
	}
}
