package cli

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"gatehouse/db"
)

// scim token create prints the token alone; only its hash is stored; list
// shows names, never tokens; revoke removes it; each change is audited.
func TestCLISCIMTokens(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok("", "scim", "token", "create", "okta")
	tok := strings.TrimSpace(out)
	if !regexp.MustCompile(`^scim_[A-Za-z0-9_-]{43}$`).MatchString(tok) || strings.Count(out, "\n") != 1 {
		t.Fatalf("create printed %q, want the token alone on one line", out)
	}
	// Flags after the positional work too.
	e.ok("", "scim", "token", "create", "entra", "--data", e.data)
	e.fails(1, "a SCIM token named okta exists", "", "scim", "token", "create", "okta")
	e.fails(1, "must be 1–64 letters", "", "scim", "token", "create", "bad name")
	e.fails(2, "", "", "scim", "token", "create")

	list := e.ok("", "scim", "token", "list")
	if !strings.Contains(list, "okta") || !strings.Contains(list, "entra") || strings.Contains(list, tok) {
		t.Errorf("list: %s", list)
	}
	ctx := context.Background()
	s, err := db.Open(ctx, db.Config{DataDir: e.data})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SCIMTokenByHash(ctx, db.HashToken(tok)); err != nil {
		t.Errorf("the printed token is not the stored one: %v", err)
	}
	toks, _ := s.ListSCIMTokens(ctx)
	for _, st := range toks {
		if strings.Contains(st.TokenHash, tok) || st.TokenHash == tok {
			t.Error("the token is stored in the clear")
		}
	}
	s.Close()

	if out := e.ok("", "scim", "token", "revoke", "okta"); !strings.Contains(out, "revoked SCIM token okta") {
		t.Errorf("revoke: %s", out)
	}
	e.fails(1, "no SCIM token named okta", "", "scim", "token", "revoke", "okta")
	if list := e.ok("", "scim", "token", "list"); strings.Contains(list, "okta") {
		t.Errorf("okta still listed: %s", list)
	}
	audit := e.ok("", "audit", "list")
	if strings.Count(audit, "scim.token.create") != 2 || !strings.Contains(audit, "scim.token.revoke") {
		t.Errorf("audit: %s", audit)
	}
	for _, args := range [][]string{{"scim", "--help"}, {"scim", "token", "--help"}, {"scim", "token", "create", "--help"}, {"scim", "token", "list", "--help"}, {"scim", "token", "revoke", "--help"}} {
		if _, _, code := e.run("", args...); code != 0 {
			t.Errorf("%v: exit %d", args, code)
		}
	}
	e.fails(2, "", "", "scim", "tokens")
}
