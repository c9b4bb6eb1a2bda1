package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gatehouse/app"
	"gatehouse/db"
)

// TestCLIEscapesControlCharacters: what a stranger typed into the login
// form (ESC sequences, CR/LF) prints as visible escapes: it can neither
// recolour the terminal nor forge a line of the audit list.
func TestCLIEscapesControlCharacters(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("", "migrate")
	store, err := app.OpenStore(context.Background(), app.Config{DataDir: e.data})
	if err != nil {
		t.Fatal(err)
	}
	forged := "x\x1b[2J\x1b[31m@evil.example\r\n2026-01-01 00:00:00  admin@example.com  user.promote  mallory@example.com\u202e"
	if err := store.Audit(context.Background(), db.Actor{Email: forged, IP: "127.0.0.1"},
		db.Event{Action: db.ActionLoginFailed, Target: forged, Detail: map[string]string{"reason": "bell\a"}}); err != nil {
		t.Fatal(err)
	}
	store.Close()
	out := e.ok("", "audit", "list")
	if strings.ContainsAny(out, "\x1b\r\a\u202e") {
		t.Errorf("audit list prints control characters raw: %q", out)
	}
	if lines := strings.Count(out, "\n"); lines != 2 {
		t.Errorf("audit list printed %d lines for one event (a forged line?):\n%s", lines, out)
	}
	for _, want := range []string{`x\x1b[2J\x1b[31m@evil.example\r\n2026-01-01`, `\u202e`, `bell\u0007`} {
		if !strings.Contains(out, want) {
			t.Errorf("audit list lacks the escaped %q:\n%s", want, out)
		}
	}
	// Errors too.
	_, errOut, code := e.run("", "users", "deactivate", "a\x1b[31m@example.com")
	if code != 2 || strings.Contains(errOut, "\x1b") {
		t.Errorf("error for an ESC email: exit %d, %q", code, errOut)
	}
}

func TestTermEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain ünïcödé": "plain ünïcödé", "a\tb": `a\tb`, "\x00\x7f": `\x00\x7f`, "\u009b31m": `\u009b31m`,
		"\u2028": `\u2028`, "\xff": `\xff`, `back\slash`: `back\slash`,
	} {
		if got := termEscape(in); got != want {
			t.Errorf("termEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCLIRefusesToCreateADatabase: only serve and migrate create one; any
// other command run in the wrong place says where it looked.
func TestCLIRefusesToCreateADatabase(t *testing.T) {
	e := newEmptyCLIEnv(t)
	want := "no database at " + filepath.Join(e.data, "gatehouse.db") + "; pass --data or --db"
	for _, args := range [][]string{{"users", "list"}, {"users", "create", "ann@example.com"}, {"groups", "list"},
		{"grants", "add", "access", "sales"}, {"audit", "list"}, {"access", "check", "a@example.com", "access"}} {
		_, errOut, code := e.run("", args...)
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and %q", args, code, errOut, want)
		}
	}
	if _, err := os.Stat(e.data); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a command created the data directory: %v", err)
	}
	// The relative default is named as typed.
	if got := describeDatabase(app.Config{DataDir: "data"}); got != "./data/gatehouse.db" {
		t.Errorf("describeDatabase = %q", got)
	}
	// dashboards list needs no database.
	if out := e.ok("", "dashboards", "list"); !strings.Contains(out, "access") {
		t.Errorf("dashboards list: %s", out)
	}
	e.ok("", "migrate")
	e.ok("", "users", "list")
	// --help and --verbose name the database.
	out := e.ok("", "users", "list", "--help")
	if !strings.Contains(out, "Database: "+filepath.Join(e.data, "gatehouse.db")) {
		t.Errorf("users list --help does not name the database:\n%s", out)
	}
	_, errOut, code := e.run("", "groups", "list", "--verbose")
	if code != 0 || !strings.Contains(errOut, "using the database "+filepath.Join(e.data, "gatehouse.db")) {
		t.Errorf("groups list --verbose: exit %d, stderr %q", code, errOut)
	}
}

// TestCLIUsageMistakes: one error line and one usage line, suggestions for
// typos, no --demo where it means nothing, plain words for a missing
// backup directory.
func TestCLIUsageMistakes(t *testing.T) {
	e := newCLIEnv(t)
	_, errOut, code := e.run("", "users", "list", "--bogus")
	if code != 2 || strings.Count(errOut, "unknown flag --bogus") != 1 || strings.Count(errOut, "usage:") != 1 || strings.Count(errOut, "\n") != 2 {
		t.Errorf("unknown flag: exit %d, stderr %q; want one error and one usage line", code, errOut)
	}
	_, errOut, code = e.run("", "users", "list", "--serch", "x")
	if code != 2 || !strings.Contains(errOut, "did you mean --search?") {
		t.Errorf("mistyped flag: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = e.run("", "user", "list")
	if code != 2 || !strings.Contains(errOut, `unknown command "user"; did you mean users?`) {
		t.Errorf("gatehouse user: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = e.run("", "grups", "list")
	if code != 2 || !strings.Contains(errOut, "did you mean groups?") {
		t.Errorf("gatehouse grups: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = e.run("", "users", "lst")
	if code != 2 || !strings.Contains(errOut, `unknown subcommand "lst"; did you mean list?`) {
		t.Errorf("users lst: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = e.run("", "frobnicate")
	if code != 2 || strings.Contains(errOut, "did you mean") {
		t.Errorf("frobnicate: exit %d, stderr %q (nothing is close)", code, errOut)
	}
	for _, args := range [][]string{{"users", "create", "--help"}, {"groups", "list", "--help"}, {"audit", "list", "--help"}, {"backup", "--help"}} {
		if out := e.ok("", args...); strings.Contains(out, "-demo") {
			t.Errorf("%v lists -demo:\n%s", args, out)
		}
	}
	if out := e.ok("", "serve", "--help"); !strings.Contains(out, "-demo") {
		t.Errorf("serve --help lacks -demo:\n%s", out)
	}
	if out := e.ok("", "users", "create", "vic@example.com"); !strings.Contains(out, "created viewer vic@example.com") {
		t.Errorf("users create: %s", out)
	}
	if out := e.ok("", "users", "list"); !regexp.MustCompile(`vic@example.com\s+viewer`).MatchString(out) {
		t.Errorf("users list does not say viewer:\n%s", out)
	}
	e.fails(1, "no directory /nonexistent/dir", "", "backup", "/nonexistent/dir/x.db")
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.fails(1, file+" is not a directory", "", "backup", filepath.Join(file, "x.db"))
}

// TestCLIRemembersDemoMode: after serve --demo, commands know the demo
// dashboards without --demo, and later starts stay demo ones.
func TestCLIRemembersDemoMode(t *testing.T) {
	e := newEmptyCLIEnv(t)
	if code, stderr := runServe(t, time.Minute, "--data", e.data, "--demo"); code != 0 {
		t.Fatalf("serve --demo: exit %d\n%s", code, stderr)
	}
	if out := e.ok("", "grants", "add", "sales", "support"); !strings.Contains(out, "granted sales to support") {
		t.Errorf("grants add: %s", out)
	}
	if out := e.ok("", "dashboards", "list"); !strings.Contains(out, "sales") {
		t.Errorf("dashboards list lacks the demo's sales:\n%s", out)
	}
	if out, _, code := e.run("", "access", "check", "alice@demo.example", "sales"); code != 0 || !strings.Contains(out, "allowed") {
		t.Errorf("access check: exit %d %s", code, out)
	}
	// A database that never ran the demo does not know its dashboards.
	plain := newCLIEnv(t)
	plain.fails(1, `no dashboard "sales"`, "", "grants", "add", "sales", "support")
}

// TestCLIRefusesControlCharactersInArguments: what the web refuses with
// 400, the command line refuses with a usage error, before any database.
func TestCLIRefusesControlCharactersInArguments(t *testing.T) {
	e := newCLIEnv(t)
	for _, args := range [][]string{
		{"users", "create", "a\x1b[31m@example.com"},
		{"groups", "create", "bad\xffname"},
		{"audit", "list", "--actor", "x\x1by"},
		{"users", "list", "--search", "\xfe"},
	} {
		_, errOut, code := e.run("", args...)
		if code != 2 || !strings.Contains(errOut, "contains a control character or invalid UTF-8") || strings.ContainsAny(errOut, "\x1b") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut)
		}
	}
}
