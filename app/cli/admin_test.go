package cli

import (
	"regexp"
	"strings"
	"testing"
)

// TestCLIAdminParity: what the admin panel does, the command line does
// too (DESIGN.md's list), with the same guards and audit rows.
func TestCLIAdminParity(t *testing.T) {
	e := newCLIEnv(t)
	e.ok(testPassword+"\n", "users", "create", "root@example.com", "--admin", "--password-stdin")
	e.ok(testPassword+"\n", "users", "create", "ann@example.com", "--name", "Ann", "--password-stdin")
	e.ok(testPassword+"\n", "users", "create", "bob@example.com", "--password-stdin")

	// Groups and members, with an expiry.
	e.ok("", "groups", "create", "Sales", "--description", "the sales team")
	e.ok("", "groups", "add-member", "sales", "ann@example.com", "--expires", "2099-01-31")
	e.ok("", "groups", "add-member", "--expires", "2099-02-01", "SALES", "bob@example.com") // flags before the arguments
	out := e.ok("", "groups", "members", "Sales")
	if !regexp.MustCompile(`ann@example.com\s+Ann\s+2099-01-31`).MatchString(out) || !strings.Contains(out, "2099-02-01") {
		t.Errorf("members:\n%s", out)
	}
	e.fails(1, "no user with email", "", "groups", "add-member", "sales", "nobody@example.com")
	e.fails(1, "no group named", "", "groups", "members", "nope")
	e.fails(2, "missing arguments", "", "groups", "add-member", "sales")
	e.ok("", "groups", "remove-member", "sales", "bob@example.com")
	if out := e.ok("", "groups", "list"); !regexp.MustCompile(`Sales\s+1\s+0\s+the sales team`).MatchString(out) {
		t.Errorf("groups list:\n%s", out)
	}

	// Grants.
	e.ok("", "grants", "add", "access", "Sales")
	e.fails(1, "already has access", "", "grants", "add", "access", "sales")
	if out := e.ok("", "grants", "list"); !regexp.MustCompile(`access\s+Sales`).MatchString(out) {
		t.Errorf("grants list:\n%s", out)
	}
	out, _, code := e.run("", "access", "check", "ann@example.com", "access")
	if code != 0 || !strings.Contains(out, `they are a member of "Sales"`) {
		t.Errorf("access check: %d %s", code, out)
	}
	e.ok("", "grants", "remove", "access", "sales")

	// Promote and demote, with the last-admin guard.
	e.fails(1, "root@example.com is the last active admin; promote another user first", "", "users", "demote", "root@example.com")
	e.fails(1, "last active admin", "", "users", "deactivate", "root@example.com")
	e.ok("", "users", "promote", "ann@example.com")
	e.ok("", "users", "demote", "root@example.com")
	out = e.ok("", "users", "list")
	if !regexp.MustCompile(`ann@example.com\s+Ann\s+admin`).MatchString(out) || !regexp.MustCompile(`root@example.com\s+viewer`).MatchString(out) {
		t.Errorf("users list:\n%s", out)
	}
	e.fails(1, "no user with email", "", "users", "promote", "nobody@example.com")

	out = e.ok("", "audit", "list", "--limit", "100")
	for _, want := range []string{"group.create", "member.add", "member.remove", "grant.add", "grant.remove", "user.promote", "user.demote"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit lacks %s", want)
		}
	}
	e.ok("", "groups", "delete", "sales")
	if out := e.ok("", "audit", "list", "--action", "group.delete"); !strings.Contains(out, "group.delete") {
		t.Error("delete not audited")
	}
}

// TestCLIDevSeed: the hidden seed command fills a database the panel can
// page through, and stays out of the command list.
func TestCLIDevSeed(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok("", "dev", "seed", "--users", "300", "--groups", "7", "--memberships", "900")
	if !strings.Contains(out, "seeded 300 users, 7 groups and 900 memberships") {
		t.Errorf("seed: %s", out)
	}
	if out := e.ok("", "groups", "list"); !strings.Contains(out, "Everyone (seed 1)") || strings.Count(out, "\n") != 8 {
		t.Errorf("groups after seed:\n%s", out)
	}
	// Seeding again adds more, with fresh ids and emails.
	e.ok("", "dev", "seed", "--users", "10", "--groups", "1", "--memberships", "5")
	if out := e.ok("", "users", "list"); strings.Count(out, "@seed.example") != 310 {
		t.Errorf("users after two seeds: %d", strings.Count(out, "@seed.example"))
	}
	e.fails(1, "at most 10 memberships", "", "dev", "seed", "--users", "5", "--groups", "2", "--memberships", "11")
	e.fails(2, "must not be negative", "", "dev", "seed", "--users", "-1")
	help, _, _ := e.run("", "--help")
	if strings.Contains(help, "dev") {
		t.Errorf("the dev command is listed:\n%s", help)
	}
}
