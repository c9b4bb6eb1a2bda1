package cli

import (
	"strings"
	"testing"
)

func TestCLIGroupManagers(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("", "users", "create", "ann@example.com")
	e.ok("", "groups", "create", "sales")
	if out := e.ok("", "groups", "add-manager", "sales", "ann@example.com"); !strings.Contains(out, "ann@example.com now manages sales") {
		t.Errorf("add-manager: %q", out)
	}
	e.fails(1, "ann@example.com already manages sales", "", "groups", "add-manager", "sales", "ann@example.com")
	e.fails(1, "no user with email bob@example.com", "", "groups", "add-manager", "sales", "bob@example.com")
	e.fails(1, `no group named "ops"`, "", "groups", "add-manager", "ops", "ann@example.com")
	if out := e.ok("", "groups", "remove-manager", "sales", "ann@example.com"); !strings.Contains(out, "no longer manages") {
		t.Errorf("remove-manager: %q", out)
	}
	e.fails(1, "ann@example.com is not a manager of sales", "", "groups", "remove-manager", "sales", "ann@example.com")
	if out := e.ok("", "audit", "list"); !strings.Contains(out, "manager.add") || !strings.Contains(out, "manager.remove") {
		t.Errorf("audit:\n%s", out)
	}
}

func TestCLIGroupsMapAndUnmap(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("", "groups", "create", "Finance")
	if out := e.ok("", "groups", "map", "Finance", "fin-team"); !strings.Contains(out, `mapped IdP group "fin-team" to Finance`) {
		t.Errorf("map: %q", out)
	}
	if _, errOut, code := e.run("", "groups", "map", "finance", "fin-team"); code != 1 || !strings.Contains(errOut, `"fin-team" already feeds Finance`) {
		t.Errorf("mapping twice: exit %d, %q", code, errOut)
	}
	if _, errOut, code := e.run("", "groups", "map", "Nope", "fin-team"); code != 1 || !strings.Contains(errOut, `no group named "Nope"`) {
		t.Errorf("unknown group: exit %d, %q", code, errOut)
	}
	if _, errOut, code := e.run("", "groups", "map", "Finance", " "); code != 1 || !strings.Contains(errOut, "IdP group is required") {
		t.Errorf("empty IdP group: exit %d, %q", code, errOut)
	}
	if out := e.ok("", "groups", "unmap", "Finance", "fin-team"); !strings.Contains(out, `unmapped IdP group "fin-team" from Finance`) {
		t.Errorf("unmap: %q", out)
	}
	if _, errOut, code := e.run("", "groups", "unmap", "Finance", "fin-team"); code != 1 || !strings.Contains(errOut, `"fin-team" does not feed Finance`) {
		t.Errorf("unmapping twice: exit %d, %q", code, errOut)
	}
	if out := e.ok("", "audit", "list", "--action", "group."); !strings.Contains(out, "group.map") || !strings.Contains(out, "group.unmap") {
		t.Errorf("audit lacks the mapping changes:\n%s", out)
	}
}

// TestCLIGroupNamesAreNFCAndVisible: the command line shares the one group
// name check (app's TestGroupNamesAreNFCAndVisible covers the forms): no
// invisible characters, names stored in NFC and unique in any form.
func TestCLIGroupNamesAreNFCAndVisible(t *testing.T) {
	e := newCLIEnv(t)
	e.fails(1, "group name must not contain invisible characters (it contains U+200B)", "", "groups", "create", "SALES\u200b")
	e.ok("", "groups", "create", "Cafe\u0301")
	e.fails(1, "already exists", "", "groups", "create", "caf\u00e9")
	if out := e.ok("", "groups", "list"); !strings.Contains(out, "Caf\u00e9") {
		t.Errorf("groups list: %q", out)
	}
}
