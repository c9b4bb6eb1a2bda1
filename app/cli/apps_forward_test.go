package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIAppsExternalURL: where a team's proxy serves an app is set by
// apps add and apps set, checked, listed, and removed when set empty.
func TestCLIAppsExternalURL(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok("", "apps", "add", "grafana", "http://127.0.0.1:3000", "--title", "Grafana", "--external-url", "HTTPS://Grafana.Example.com")
	if !strings.Contains(out, "forward authentication at https://grafana.example.com/") {
		t.Errorf("apps add --external-url says %q", out)
	}
	if list := e.ok("", "apps", "list"); !strings.Contains(list, "EXTERNAL URL") || !strings.Contains(list, "https://grafana.example.com/") {
		t.Errorf("apps list:\n%s", list)
	}
	e.ok("", "apps", "set", "grafana", "--external-url", "https://tools.example.com/grafana")
	if list := e.ok("", "apps", "list"); !strings.Contains(list, "https://tools.example.com/grafana/") {
		t.Errorf("apps set --external-url: the path is not kept with its slash:\n%s", list)
	}
	for _, bad := range []string{"ftp://x/", "https://u:p@tools.example.com/", "https://tools.example.com/?q=1", "https://tools.example.com/.gatehouse/x/", "/grafana/"} {
		e.fails(1, "external URL", "", "apps", "set", "grafana", "--external-url", bad)
	}
	if list := e.ok("", "apps", "list"); !strings.Contains(list, "https://tools.example.com/grafana/") {
		t.Errorf("a refused --external-url changed the app:\n%s", list)
	}
	e.ok("", "apps", "set", "grafana", "--external-url", "")
	if list := e.ok("", "apps", "list"); strings.Contains(list, "tools.example.com") {
		t.Errorf("--external-url '' kept it:\n%s", list)
	}
	if out := e.ok("", "audit", "list"); !strings.Contains(out, "app.update") {
		t.Errorf("apps set is not audited:\n%s", out)
	}
	e.fails(1, "external URL", "", "apps", "add", "bad", "http://127.0.0.1:3000", "--title", "Bad", "--external-url", "grafana.example.com")
}

// TestAccessFileExternalURL: access files carry an app's external URL:
// export writes it, plan shows a change to it, apply stores it.
func TestAccessFileExternalURL(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("", "apps", "add", "grafana", "http://127.0.0.1:3000", "--title", "Grafana", "--external-url", "https://grafana.example.com")
	exported := e.ok("", "access", "export")
	if !strings.Contains(exported, "external_url: https://grafana.example.com/") {
		t.Fatalf("export lacks the external URL:\n%s", exported)
	}
	file := filepath.Join(t.TempDir(), "access.yaml")
	edited := strings.Replace(exported, "external_url: https://grafana.example.com/", "external_url: https://tools.example.com/grafana/", 1)
	if err := os.WriteFile(file, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _, code := e.run("", "access", "plan", file); code != 2 || !strings.Contains(out, "(behind a proxy at https://grafana.example.com/) → ") ||
		!strings.Contains(out, "(behind a proxy at https://tools.example.com/grafana/)") {
		t.Errorf("plan: exit %d, want 2 (changes):\n%s", code, out)
	}
	e.ok("", "access", "apply", file)
	if list := e.ok("", "apps", "list"); !strings.Contains(list, "https://tools.example.com/grafana/") {
		t.Errorf("after apply:\n%s", list)
	}
	bad := strings.Replace(exported, "external_url: https://grafana.example.com/", "external_url: ftp://x/", 1)
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	e.fails(1, "external URL", "", "access", "plan", file)
}
