package cli

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLIApps(t *testing.T) {
	e := newCLIEnv(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusFound) }))
	defer up.Close()

	out := e.ok("", "apps", "add", "sales", up.URL, "--title", "Sales app", "--user-header", "x-webauth-user")
	for _, want := range []string{"added app sales → " + up.URL, "served at http://sales.localhost:8080/", "grants add sales GROUP"} {
		if !strings.Contains(out, want) {
			t.Errorf("apps add says %q, want %q in it", out, want)
		}
	}
	if out := e.ok("", "apps", "add", "ops", "http://127.0.0.1:1/", "--title", "Ops", "--base-url", "https://gatehouse.corp.example"); !strings.Contains(out, "apps are off") || !strings.Contains(out, "--apps-domain") {
		t.Errorf("apps add on a non-loopback base URL without --apps-domain does not say apps are off: %q", out)
	}
	e.fails(1, "an app named sales already exists", "", "apps", "add", "sales", up.URL, "--title", "Again")
	e.fails(1, "access is already a dashboard's slug", "", "apps", "add", "access", up.URL, "--title", "Clash")
	e.fails(1, "must be an http:// or https:// URL", "", "apps", "add", "bad", "ftp://x", "--title", "Bad")
	e.fails(1, "title is required", "", "apps", "add", "notitle", up.URL)
	e.fails(1, "host name label", "", "apps", "add", "Bad_Slug", up.URL, "--title", "Bad")
	e.fails(1, "set by Gatehouse", "", "apps", "add", "forge", up.URL, "--title", "F", "--user-header", "X-Forwarded-User")

	list := e.ok("", "apps", "list")
	if !strings.Contains(list, "sales") || !strings.Contains(list, "X-Webauth-User") || !strings.Contains(list, "Sales app") {
		t.Errorf("apps list:\n%s", list)
	}
	// An app is a dashboard: listed, granted, decided.
	if out := e.ok("", "dashboards", "list"); !strings.Contains(out, "sales") {
		t.Errorf("dashboards list lacks the app:\n%s", out)
	}
	e.ok("", "users", "create", "ann@example.com")
	e.ok("", "groups", "create", "sellers")
	if out, _, code := e.run("", "access", "check", "ann@example.com", "sales"); code != 1 || !strings.Contains(out, "denied: ann@example.com may not open sales") {
		t.Errorf("access check before the grant: exit %d, %q", code, out)
	}
	e.ok("", "grants", "add", "sales", "sellers")
	e.ok("", "groups", "add-member", "sellers", "ann@example.com")
	if out := e.ok("", "access", "check", "ann@example.com", "sales"); !strings.Contains(out, "allowed: ann@example.com may open sales") {
		t.Errorf("access check: %q", out)
	}

	if out := e.ok("", "apps", "set", "sales", "--title", "Sales", "--user-header", ""); !strings.Contains(out, "(Sales)") {
		t.Errorf("apps set: %q", out)
	}
	if list := e.ok("", "apps", "list"); strings.Contains(list, "X-Webauth-User") {
		t.Errorf("--user-header '' kept the header:\n%s", list)
	}
	e.fails(1, `no app "nope"`, "", "apps", "set", "nope", "--title", "x")

	// check: sales answers (302 counts), ops does not: exit 1.
	if out := e.ok("", "apps", "check", "sales"); !strings.Contains(out, "up (302") {
		t.Errorf("apps check sales: %q", out)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + ln.Addr().String() + "/"
	ln.Close()
	e.ok("", "apps", "set", "ops", "--url", closed)
	out, errOut, code := e.run("", "apps", "check")
	if code != 1 || !strings.Contains(out, "ops") || !strings.Contains(out, "down:") || !strings.Contains(errOut, "1 of 2 apps are down") {
		t.Errorf("apps check with one down: exit %d, out %q, err %q", code, out, errOut)
	}

	e.ok("", "apps", "remove", "ops")
	e.fails(1, `no app "ops"`, "", "apps", "remove", "ops")
	if out := e.ok("", "keys", "rotate"); !strings.Contains(out, "new signing key") || !strings.Contains(out, "stays published for 24h0m0s") {
		t.Errorf("keys rotate: %q", out)
	}
	audit := e.ok("", "audit", "list")
	for _, want := range []string{"app.create", "app.update", "app.delete", "keys.rotate"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %s:\n%s", want, audit)
		}
	}
}

func TestCLIAccessFileApps(t *testing.T) {
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
	e.ok("", "groups", "create", "sellers")
	e.ok("", "apps", "add", "sales", "http://127.0.0.1:8501/", "--title", "Sales", "--user-header", "X-WEBAUTH-USER")

	// Exported, applied back: nothing to change.
	exported := e.ok("", "access", "export")
	if !strings.Contains(exported, "apps:\n  - slug: sales\n    url: http://127.0.0.1:8501/\n    title: Sales\n    user_header: X-Webauth-User\n") {
		t.Fatalf("export lacks the app:\n%s", exported)
	}
	if out := e.ok("", "access", "plan", write("same.yaml", exported)); !strings.Contains(out, "No changes") {
		t.Errorf("plan of an export: %q", out)
	}

	// A file without `apps:` (written before apps existed) leaves them.
	old := "version: 1\ngroups:\n  - name: sellers\ngrants:\n  sales: [sellers]\n"
	if out := e.ok("", "access", "apply", write("old.yaml", old)); strings.Contains(out, "app") {
		t.Errorf("a file without apps changed apps: %q", out)
	}
	if list := e.ok("", "apps", "list"); !strings.Contains(list, "sales") {
		t.Errorf("the app is gone:\n%s", list)
	}

	// Add one, change one; a grant may name an app the file adds.
	edited := old + "apps:\n  - slug: sales\n    url: http://127.0.0.1:8502/\n    title: Sales\n  - {slug: ops, url: 'http://127.0.0.1:9000', title: Ops}\n"
	edited = strings.Replace(edited, "sales: [sellers]", "sales: [sellers]\n  ops: [sellers]", 1)
	file := write("edited.yaml", edited)
	out, errOut, code := e.run("", "access", "plan", file)
	if code != 2 || !strings.Contains(out, `+ app ops → http://127.0.0.1:9000 "Ops"`) ||
		!strings.Contains(out, `~ app sales: http://127.0.0.1:8501/ "Sales" (user header X-Webauth-User) → http://127.0.0.1:8502/ "Sales"`) {
		t.Errorf("plan: exit %d\n%s%s", code, out, errOut)
	}
	e.ok("", "access", "apply", file)
	if list := e.ok("", "apps", "list"); !strings.Contains(list, "ops") || !strings.Contains(list, "8502") {
		t.Errorf("after apply:\n%s", list)
	}
	if out := e.ok("", "access", "plan", file); !strings.Contains(out, "No changes") {
		t.Errorf("applying twice changes: %q", out)
	}

	// `apps: []` removes them; bad apps are errors with their line.
	out, _, code = e.run("", "access", "plan", write("none.yaml", old+"apps: []\n"))
	if code != 2 || !strings.Contains(out, "- app ops") || !strings.Contains(out, "- app sales") {
		t.Errorf("apps: [] plan: exit %d\n%s", code, out)
	}
	_, errOut, code = e.run("", "access", "plan", write("bad.yaml", old+"apps:\n  - {slug: access, url: 'http://x', title: Clash}\n  - {slug: bad, url: 'ftp://x', title: Bad}\n"))
	if code != 1 || !strings.Contains(errOut, `bad.yaml:7:`) || !strings.Contains(errOut, `app "access": that slug is already a dashboard's`) ||
		!strings.Contains(errOut, "bad.yaml:8:") || !strings.Contains(errOut, "must be an http:// or https:// URL") {
		t.Errorf("bad apps: exit %d, %s", code, errOut)
	}
	audit := e.ok("", "audit", "list")
	if !strings.Contains(audit, "app.update") || strings.Count(audit, "app.create") != 2 {
		t.Errorf("apply's app changes are not audited:\n%s", audit)
	}
}

// TestServeOnPortZeroServesAppsAtTheRealPort: with --addr 127.0.0.1:0 the
// system picks the port, and an app's origin and its sign-in name that
// port, not 0.
func TestServeOnPortZeroServesAppsAtTheRealPort(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("", "apps", "add", "sales", "http://127.0.0.1:1/", "--title", "Sales app")
	srv := serve(t, "--data", e.data)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/report", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "sales.localhost:" + port
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	want := srv.URL + "/apps/sales/signin?"
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, want) {
		t.Errorf("an anonymous request to the app at port %s: %d to %q, want 302 to %s…", port, res.StatusCode, loc, want)
	}
}
