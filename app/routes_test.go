package app

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"gatehouse/assets"
)

// routePatterns reads every pattern registered in routes.go, so a route
// added there without an entry in the matrix below fails the test.
func routePatterns(t testing.TB) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "routes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "mux" {
			return true
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		if !ok {
			t.Fatalf("route pattern is not a literal at %v", call.Pos())
		}
		p, _ := strconv.Unquote(lit.Value)
		patterns = append(patterns, p)
		return true
	})
	if len(patterns) < 20 {
		t.Fatalf("found only %d routes in routes.go", len(patterns))
	}
	return patterns
}

// routeCase is how one route answers each kind of visitor (plain
// requests): anonymous, a user with no access, a member of the group
// granted the test dashboard, an admin, and a manager of that group (who is
// not a member of it and not an admin). Anonymous htmx requests to protected routes must answer 401
// with HX-Redirect; that is checked for every route whose anonymous status
// is 303.
type routeCase struct {
	method, path                       string
	anon, user, member, admin, manager int
}

func TestEveryRouteIsInTheAuthorizationMatrix(t *testing.T) {
	f := newAccessFixture(t)
	cases := routeMatrix(f)
	for _, p := range routePatterns(t) {
		if _, ok := cases[p]; !ok {
			t.Errorf("route %q has no entry in the authorization matrix (app/routes_test.go)", p)
		}
	}
}

func routeMatrix(f *accessFixture) map[string]routeCase {
	team, member := f.team.ID, f.member.ID
	id := func(n int64) string { return strconv.FormatInt(n, 10) }
	const missing = "999999"
	const (
		see = http.StatusSeeOther
		ok  = http.StatusOK
		no  = http.StatusForbidden
		nf  = http.StatusNotFound
		bad = http.StatusUnprocessableEntity
	)
	// Protected routes: anonymous visitors are sent to log in (303).
	return map[string]routeCase{
		"GET /assets/":                                {"GET", assets.Path("css/app.css"), ok, ok, ok, ok, ok},
		"GET /healthz":                                {"GET", "/healthz", ok, ok, ok, ok, ok},
		"GET /readyz":                                 {"GET", "/readyz", ok, ok, ok, ok, ok},
		"GET /login":                                  {"GET", "/login", ok, see, see, see, see},
		"POST /login":                                 {"POST", "/login", 401, 401, 401, 401, 401},
		"POST /logout":                                {"POST", "/logout", see, see, see, see, see},
		"GET /setup":                                  {"GET", "/setup?token=nope", nf, nf, nf, nf, nf},
		"POST /setup":                                 {"POST", "/setup", nf, nf, nf, nf, nf},
		"GET /auth/oidc/start":                        {"GET", "/auth/oidc/start?next=%2F", nf, nf, nf, nf, nf}, // without --oidc-issuer
		"GET /auth/oidc/callback":                     {"GET", "/auth/oidc/callback?code=x&state=y", nf, nf, nf, nf, nf},
		"GET /signup":                                 {"GET", "/signup", nf, nf, nf, nf, nf},
		"POST /signup":                                {"POST", "/signup", nf, nf, nf, nf, nf},
		"GET /signup/confirm":                         {"GET", "/signup/confirm?token=nope", nf, nf, nf, nf, nf},
		"POST /signup/confirm":                        {"POST", "/signup/confirm", nf, nf, nf, nf, nf},
		"GET /password/forgot":                        {"GET", "/password/forgot", nf, nf, nf, nf, nf}, // without --smtp-url
		"POST /password/forgot":                       {"POST", "/password/forgot", nf, nf, nf, nf, nf},
		"GET /password/reset":                         {"GET", "/password/reset?token=nope", nf, nf, nf, nf, nf},
		"POST /password/reset":                        {"POST", "/password/reset", nf, nf, nf, nf, nf},
		"GET /login/mfa":                              {"GET", "/login/mfa", see, see, see, see, see},
		"POST /login/mfa":                             {"POST", "/login/mfa", see, see, see, see, see},
		"POST /login/mfa/passkey/begin":               {"POST", "/login/mfa/passkey/begin", nf, nf, nf, nf, nf}, // passkeys are off without a base URL
		"POST /login/mfa/passkey/finish":              {"POST", "/login/mfa/passkey/finish", nf, nf, nf, nf, nf},
		"POST /login/passkey/begin":                   {"POST", "/login/passkey/begin", nf, nf, nf, nf, nf},
		"POST /login/passkey/finish":                  {"POST", "/login/passkey/finish", nf, nf, nf, nf, nf},
		"GET /{$}":                                    {"GET", "/", see, ok, ok, ok, ok},
		"GET /apps/{slug}/signin":                     {"GET", "/apps/" + missing + "/signin?next=%2F", see, nf, nf, nf, nf}, // no such app
		"GET /.well-known/jwks.json":                  {"GET", "/.well-known/jwks.json", ok, ok, ok, ok, ok},
		"GET /auth/forward":                           {"GET", "/auth/forward?app=" + missing, nf, nf, nf, nf, nf}, // a proxy's question: no such app
		"GET /account":                                {"GET", "/account", see, ok, ok, ok, ok},
		"GET /account/password":                       {"GET", "/account/password", see, see, see, see, see},
		"POST /account/password":                      {"POST", "/account/password", see, bad, bad, bad, bad},
		"GET /account/security":                       {"GET", "/account/security", see, ok, ok, ok, ok},
		"POST /account/security/totp":                 {"POST", "/account/security/totp", see, ok, ok, ok, ok},
		"POST /account/security/totp/confirm":         {"POST", "/account/security/totp/confirm", see, bad, bad, bad, bad}, // no code
		"POST /account/security/passkeys/begin":       {"POST", "/account/security/passkeys/begin", see, nf, nf, nf, nf},
		"POST /account/security/passkeys/finish":      {"POST", "/account/security/passkeys/finish", see, nf, nf, nf, nf},
		"POST /account/security/totp/remove":          {"POST", "/account/security/totp/remove", see, nf, nf, nf, nf},  // none confirmed
		"POST /account/security/recovery":             {"POST", "/account/security/recovery", see, 409, 409, 409, 409}, // no factor yet
		"POST /account/security/passkeys/{id}/remove": {"POST", "/account/security/passkeys/" + missing + "/remove", see, nf, nf, nf, nf},
		"GET /dashboards/{slug}":                      {"GET", "/dashboards/test", see, no, ok, ok, no},
		"GET /dashboards/{slug}/panels/{panel}":       {"GET", "/dashboards/test/panels/open", see, no, ok, ok, no},
		"POST /dashboards/{slug}/request":             {"POST", "/dashboards/nope/request", see, nf, nf, nf, nf},
		"GET /dashboards/{slug}/events":               {"GET", "/dashboards/nope/events", 401, nf, nf, nf, nf}, // a stream: checked in dashboards_live_test.go

		"GET /admin":                                       {"GET", "/admin", see, no, no, ok, no},
		"GET /admin/{$}":                                   {"GET", "/admin/", see, no, no, ok, no},
		"/admin/":                                          {"GET", "/admin/nope", see, no, no, nf, no},
		"GET /admin/groups":                                {"GET", "/admin/groups?q=te", see, no, no, ok, no},
		"POST /admin/groups":                               {"POST", "/admin/groups", see, no, no, bad, no},
		"GET /admin/groups/{id}":                           {"GET", "/admin/groups/" + id(team), see, no, no, ok, ok},
		"POST /admin/groups/{id}":                          {"POST", "/admin/groups/" + missing, see, no, no, nf, no},
		"GET /admin/groups/{id}/delete":                    {"GET", "/admin/groups/" + id(team) + "/delete", see, no, no, ok, no},
		"POST /admin/groups/{id}/delete":                   {"POST", "/admin/groups/" + missing + "/delete", see, no, no, nf, no},
		"GET /admin/groups/{id}/candidates":                {"GET", "/admin/groups/" + id(team) + "/candidates?q=out", see, no, no, see, see}, // a plain request goes back to the group page,
		"POST /admin/groups/{id}/members":                  {"POST", "/admin/groups/" + missing + "/members", see, no, no, nf, no},
		"POST /admin/groups/{id}/members/{user}/remove":    {"POST", "/admin/groups/" + missing + "/members/" + id(member) + "/remove", see, no, no, nf, no},
		"POST /admin/groups/{id}/members/{user}/expiry":    {"POST", "/admin/groups/" + missing + "/members/" + id(member) + "/expiry", see, no, no, nf, no},
		"POST /admin/groups/{id}/idp-groups":               {"POST", "/admin/groups/" + missing + "/idp-groups", see, no, no, nf, no},
		"POST /admin/groups/{id}/idp-groups/remove":        {"POST", "/admin/groups/" + missing + "/idp-groups/remove", see, no, no, nf, no},
		"GET /admin/users":                                 {"GET", "/admin/users?q=ex", see, no, no, ok, no},
		"POST /admin/users":                                {"POST", "/admin/users", see, no, no, bad, no},
		"POST /admin/users/{id}":                           {"POST", "/admin/users/" + missing, see, no, no, nf, no},
		"GET /admin/users/{id}":                            {"GET", "/admin/users/" + id(member), see, no, no, ok, no},
		"POST /admin/users/{id}/groups/{group}":            {"POST", "/admin/users/" + missing + "/groups/" + id(team), see, no, no, nf, no},
		"POST /admin/users/{id}/active":                    {"POST", "/admin/users/" + missing + "/active", see, no, no, nf, no},
		"POST /admin/users/{id}/admin":                     {"POST", "/admin/users/" + missing + "/admin", see, no, no, nf, no},
		"POST /admin/users/{id}/password":                  {"POST", "/admin/users/" + missing + "/password", see, no, no, nf, no},
		"POST /admin/users/{id}/mfa/reset":                 {"POST", "/admin/users/" + missing + "/mfa/reset", see, no, no, nf, no},
		"POST /admin/users/{id}/sessions/{session}/revoke": {"POST", "/admin/users/" + id(member) + "/sessions/nope/revoke", see, no, no, nf, no},
		"GET /admin/access":                                {"GET", "/admin/access", see, no, no, ok, no},
		"GET /admin/apps":                                  {"GET", "/admin/apps", see, no, no, ok, no},
		"POST /admin/apps":                                 {"POST", "/admin/apps", see, no, no, bad, no}, // an empty form
		"POST /admin/apps/{slug}":                          {"POST", "/admin/apps/" + missing, see, no, no, nf, no},
		"POST /admin/apps/{slug}/delete":                   {"POST", "/admin/apps/" + missing + "/delete", see, no, no, nf, no},
		"GET /admin/scim":                                  {"GET", "/admin/scim", see, no, no, ok, no},
		"POST /admin/scim/tokens":                          {"POST", "/admin/scim/tokens", see, no, no, 422, no}, // an empty name
		"POST /admin/scim/tokens/{name}/revoke":            {"POST", "/admin/scim/tokens/nope/revoke", see, no, no, nf, no},
		"POST /admin/access/{slug}/{group}":                {"POST", "/admin/access/nope/" + id(team), see, no, no, nf, no},
		"GET /admin/requests":                              {"GET", "/admin/requests", see, no, no, ok, ok},
		"POST /admin/requests/{id}":                        {"POST", "/admin/requests/" + missing, see, no, no, nf, nf},
		"GET /admin/explain":                               {"GET", "/admin/explain?user=member%40example.com&dashboard=test", see, no, no, ok, no},
		"POST /admin/groups/{id}/managers":                 {"POST", "/admin/groups/" + missing + "/managers", see, no, no, nf, no},
		"POST /admin/groups/{id}/managers/{user}/remove":   {"POST", "/admin/groups/" + id(team) + "/managers/" + id(member) + "/remove", see, no, no, nf, no},
		"GET /admin/audit":                                 {"GET", "/admin/audit", see, no, no, ok, no},
		"/":                                                {"GET", "/nope", nf, nf, nf, nf, nf},
	}
}

func TestRouteAuthorizationMatrix(t *testing.T) {
	f := newAccessFixture(t)
	patterns := routePatterns(t)
	cases := routeMatrix(f)
	clients := map[string]*http.Client{"anonymous": f.ta.client(), "user": f.outsiderC, "member": f.memberC, "admin": f.adminC,
		"manager": f.withManager(t)}
	run := func(t *testing.T, who string, tc routeCase, htmx bool) (*http.Response, string) {
		req, err := http.NewRequest(tc.method, f.ta.Server.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.method == "POST" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if htmx {
			req.Header.Set("HX-Request", "true")
		}
		return f.ta.do(t, clients[who], req)
	}
	// Logout last: it ends the sessions the other cases use.
	var ordered []string
	for _, p := range patterns {
		if p != "POST /logout" {
			ordered = append(ordered, p)
		}
	}
	ordered = append(ordered, "POST /logout")
	for _, p := range ordered {
		tc, ok := cases[p]
		if !ok {
			continue // reported by TestEveryRouteIsInTheAuthorizationMatrix
		}
		for _, who := range []string{"anonymous", "user", "member", "admin", "manager"} {
			want := map[string]int{"anonymous": tc.anon, "user": tc.user, "member": tc.member, "admin": tc.admin, "manager": tc.manager}[who]
			t.Run(fmt.Sprintf("%s as %s", p, who), func(t *testing.T) {
				res, body := run(t, who, tc, false)
				if res.StatusCode != want {
					t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, res.StatusCode, want)
				}
				if res.StatusCode >= 500 || strings.Contains(body, "goroutine ") {
					t.Errorf("server error: %s", body)
				}
				if who == "anonymous" && want == http.StatusSeeOther && p != "POST /logout" {
					if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, "/login?next=") {
						t.Errorf("anonymous redirect to %q, want the login page", loc)
					}
					hres, _ := run(t, who, tc, true)
					if hres.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(hres.Header.Get("HX-Redirect"), "/login?next=") {
						t.Errorf("anonymous htmx: %d HX-Redirect %q, want 401 with HX-Redirect to the login page", hres.StatusCode, hres.Header.Get("HX-Redirect"))
					}
				}
				if want == http.StatusForbidden {
					hres, _ := run(t, who, tc, true)
					if hres.StatusCode != http.StatusForbidden {
						t.Errorf("htmx as %s: %d, want 403", who, hres.StatusCode)
					}
				}
			})
		}
	}
}
