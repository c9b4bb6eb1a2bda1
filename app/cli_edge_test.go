package app

import (
	"context"
	"strings"
	"testing"

	"gatehouse/db"
)

// TestCLIEscapesControlCharacters: what a stranger typed into the login
// form (ESC sequences, CR/LF) prints as visible escapes: it can neither
// recolour the terminal nor forge a line of the audit list.
func TestCLIEscapesControlCharacters(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("", "migrate")
	store, err := openStore(context.Background(), Config{DataDir: e.data})
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
	if code != 1 || strings.Contains(errOut, "\x1b") {
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
