package cli

import (
	"net"
	"net/http"
	"net/http/httptest"
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
