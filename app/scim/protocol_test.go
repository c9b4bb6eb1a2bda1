package scim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"gatehouse/app/scim"
	"gatehouse/db"
)

// wantError checks a SCIM error answer: status, scimType, and words of
// its detail.
func wantError(t *testing.T, what string, status int, got map[string]any, gotStatus int, scimType, words string) {
	t.Helper()
	if gotStatus != status {
		t.Errorf("%s: status %d, want %d: %v", what, gotStatus, status, got)
		return
	}
	if got["status"] != fmt.Sprint(status) || got["schemas"].([]any)[0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
		t.Errorf("%s: not a SCIM error: %v", what, got)
	}
	if st, _ := got["scimType"].(string); st != scimType {
		t.Errorf("%s: scimType %q, want %q", what, st, scimType)
	}
	if d, _ := got["detail"].(string); !strings.Contains(d, words) {
		t.Errorf("%s: detail %q does not say %q", what, d, words)
	}
}

// Only a valid bearer token gets in: none, another scheme, a wrong or a
// revoked token get 401 in SCIM JSON with WWW-Authenticate.
func TestSCIMNeedsBearerToken(t *testing.T) {
	e := newEnv(t, "", db.SSOPolicy{})
	other, err := e.store.CreateSCIMToken(context.Background(), admin, "entra")
	if err != nil {
		t.Fatal(err)
	}
	if status, got, _ := e.doWith("GET", "/Users", nil, "Bearer "+other); status != 200 {
		t.Fatalf("second token: %d %v", status, got)
	}
	if err := e.store.RevokeSCIMToken(context.Background(), admin, "entra"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, auth string }{
		{"no header", ""},
		{"basic", "Basic b2t0YTpwYXNz"},
		{"empty bearer", "Bearer "},
		{"wrong token", "Bearer scim_nottherighttoken"},
		{"token with a letter changed", "Bearer " + e.token[:len(e.token)-1] + "x"},
		{"revoked token", "Bearer " + other},
	} {
		status, got, h := e.doWith("GET", "/Users", nil, c.auth)
		wantError(t, c.name, 401, got, status, "", "token")
		if h.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", c.name)
		}
	}
	// A write with a bad token changes nothing.
	status, _, _ := e.doWith("POST", "/Users", `{"userName":"eve@example.com"}`, "Bearer nope")
	if status != 401 {
		t.Fatalf("POST with a bad token: %d", status)
	}
	if _, err := e.store.UserByEmail(context.Background(), "eve@example.com"); err == nil {
		t.Error("a request with a bad token created a user")
	}
	if status, _, _ := e.do("GET", "/Users", nil); status != 200 {
		t.Errorf("the valid token: %d", status)
	}
}

// Bad requests get a SCIM error with the right status and scimType, and
// change nothing.
func TestSCIMBadRequests(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, db.SSOPolicy{})
		ann := e.pushUser("ann@example.com", map[string]any{"name": map[string]any{"givenName": "Ann"}})
		bob := e.pushUser("bob@example.com", nil)
		grp := e.pushGroup("Sales", ann)

		for _, c := range []struct {
			name, method, path string
			body               any
			status             int
			scimType, words    string
		}{
			{"malformed JSON", "POST", "/Users", `{"userName": "x@example.com",`, 400, "invalidSyntax", "not valid JSON"},
			{"not an object", "POST", "/Users", `["x"]`, 400, "invalidSyntax", "JSON object"},
			{"two values", "POST", "/Users", `{"userName":"x@example.com"} {}`, 400, "invalidSyntax", "more than one"},
			{"empty body", "POST", "/Groups", ``, 400, "invalidSyntax", "ends too early"},
			{"no userName", "POST", "/Users", map[string]any{"active": true}, 400, "invalidValue", "userName is required"},
			{"no email anywhere", "POST", "/Users", map[string]any{"userName": "carol"}, 400, "invalidValue", "email address"},
			{"active not a boolean", "POST", "/Users", map[string]any{"userName": "c@example.com", "active": "maybe"}, 400, "invalidValue", "active"},
			{"control characters", "POST", "/Users", map[string]any{"userName": "c@example.com", "displayName": "a\u0007b"}, 400, "invalidValue", "control"},
			{"userName taken (case ignored)", "POST", "/Users", map[string]any{"userName": "ANN@example.com"}, 409, "uniqueness", "taken"},
			{"email taken by a provisioned user", "POST", "/Users", map[string]any{"userName": "ann2", "emails": []any{map[string]any{"value": "ann@example.com"}}}, 409, "uniqueness", "already provisioned"},
			{"group name taken (case ignored)", "POST", "/Groups", map[string]any{"displayName": "sales"}, 409, "uniqueness", "exists"},
			{"unknown member", "POST", "/Groups", map[string]any{"displayName": "X", "members": []any{map[string]any{"value": "999"}}}, 400, "invalidValue", "no such user"},
			{"member not an id", "POST", "/Groups", map[string]any{"displayName": "X", "members": []any{map[string]any{"value": "ann@example.com"}}}, 400, "invalidValue", "no such user"},
			{"PATCH without PatchOp schema", "PATCH", "/Users/" + ann, map[string]any{"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": false}}}, 400, "invalidSyntax", "PatchOp"},
			{"PATCH without operations", "PATCH", "/Users/" + ann, patch(), 400, "invalidSyntax", "Operations"},
			{"unknown op", "PATCH", "/Users/" + ann, patch(map[string]any{"op": "move", "path": "active", "value": false}), 400, "invalidValue", "add, replace or remove"},
			{"remove without path", "PATCH", "/Users/" + ann, patch(map[string]any{"op": "remove"}), 400, "noTarget", "needs a path"},
			{"bad path", "PATCH", "/Users/" + ann, patch(map[string]any{"op": "replace", "path": "emails[type eq", "value": "x"}), 400, "invalidPath", "not a SCIM attribute path"},
			{"replace without value", "PATCH", "/Users/" + ann, patch(map[string]any{"op": "replace", "path": "displayName"}), 400, "invalidValue", "needs a value"},
			{"path-less value not an object", "PATCH", "/Users/" + ann, patch(map[string]any{"op": "replace", "value": false}), 400, "invalidValue", "object"},
			{"PATCH to a taken userName", "PATCH", "/Users/" + bob, patch(map[string]any{"op": "replace", "path": "userName", "value": "Ann@Example.com"}), 409, "uniqueness", "taken"},
			{"PATCH to a taken email", "PATCH", "/Users/" + bob, patch(map[string]any{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "ann@example.com"}), 409, "uniqueness", "email"},
			{"bad filter", "GET", "/Users?filter=userName%20eq", nil, 400, "invalidFilter", "not a SCIM filter"},
			{"bad startIndex", "GET", "/Users?startIndex=one", nil, 400, "invalidValue", "startIndex"},
			{"unknown user", "GET", "/Users/4242", nil, 404, "", "No such resource"},
			{"id not a number", "GET", "/Users/abc", nil, 404, "", "No such resource"},
			{"unknown group", "PATCH", "/Groups/4242", patch(map[string]any{"op": "replace", "path": "displayName", "value": "x"}), 404, "", "No such resource"},
			{"unknown resource", "GET", "/Bulk", nil, 404, "", "no SCIM resource"},
			{"another method", "POST", "/Users/" + ann, map[string]any{}, 404, "", "no SCIM resource"},
		} {
			status, got, _ := e.do(c.method, c.path, c.body)
			wantError(t, c.name, c.status, got, status, c.scimType, c.words)
		}

		// Never half-applied: a valid operation before a failing one is
		// not kept.
		status, got, _ := e.do("PATCH", "/Users/"+ann, patch(
			map[string]any{"op": "replace", "path": "displayName", "value": "Changed"},
			map[string]any{"op": "replace", "path": "active", "value": "perhaps"}))
		wantError(t, "second op fails", 400, got, status, "invalidValue", "active")
		status, got, _ = e.do("PATCH", "/Groups/"+grp, patch(
			map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": bob}}},
			map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": "4242"}}}))
		wantError(t, "second member unknown", 400, got, status, "invalidValue", "no such user")
		if _, u, _ := e.do("GET", "/Users/"+ann, nil); u["displayName"] != "Ann" || u["active"] != true {
			t.Errorf("ann after failed PATCHes: %v", u)
		}
		if _, g, _ := e.do("GET", "/Groups/"+grp, nil); len(g["members"].([]any)) != 1 {
			t.Errorf("group after a failed PATCH: %v", g["members"])
		}
		if n := e.audited("scim:okta", db.ActionUserUpdate, "ann@example.com"); n != 0 {
			t.Errorf("%d user.update rows for failed requests", n)
		}

		// The token's last request and last error are kept for the admin page.
		toks, err := e.store.ListSCIMTokens(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(toks) != 1 || toks[0].LastUsedAt == 0 || !strings.Contains(toks[0].LastError, "no such user") {
			t.Errorf("token after errors: %+v", toks)
		}
	})
}

// A body larger than MaxBody gets 413 in SCIM JSON, whether it says its
// length or not, and changes nothing.
func TestSCIMOversizeBody(t *testing.T) {
	e := newEnv(t, "", db.SSOPolicy{})
	big := `{"userName":"big@example.com","displayName":"` + strings.Repeat("a", 70<<10) + `"}`
	status, got, _ := e.do("POST", "/Users", big)
	wantError(t, "with Content-Length", 413, got, status, "", "larger than")

	// Chunked: no Content-Length, the limit trips while reading.
	req, _ := http.NewRequest("POST", e.srv.URL+"/scim/v2/Users", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.ContentLength = -1
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 || res.Header.Get("Content-Type") != "application/scim+json" {
		t.Errorf("chunked: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if _, err := e.store.UserByEmail(context.Background(), "big@example.com"); err == nil {
		t.Error("an oversize body created a user")
	}
}

// Lists page with startIndex and count, and say how many match in all.
func TestSCIMPagination(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, db.SSOPolicy{})
		var ids []string
		for i := range 7 {
			ids = append(ids, e.pushUser(fmt.Sprintf("u%d@example.com", i), map[string]any{"displayName": "Team " + itoa(i%2)}))
		}
		for _, c := range []struct {
			query       string
			total, from int
			ids         []string
		}{
			{"startIndex=1&count=2", 7, 1, ids[0:2]},
			{"startIndex=3&count=2", 7, 3, ids[2:4]},
			{"startIndex=6&count=5", 7, 6, ids[5:7]},
			{"startIndex=8&count=5", 7, 8, nil},
			{"startIndex=0&count=1", 7, 1, ids[0:1]},
			{"count=0", 7, 1, nil},
			{"count=-3", 7, 1, nil},
			{"", 7, 1, ids},
			// Filters the store cannot answer alone page the same way.
			{`filter=displayName eq "Team 1"&startIndex=2&count=2`, 3, 2, []string{ids[3], ids[5]}},
			{`filter=userName sw "u" and not (displayName eq "Team 0")&count=1`, 3, 1, []string{ids[1]}},
		} {
			status, got, _ := e.do("GET", "/Users?"+strings.ReplaceAll(c.query, " ", "%20"), nil)
			if status != 200 {
				t.Fatalf("%s: %d %v", c.query, status, got)
			}
			res := got["Resources"].([]any)
			var gotIDs []string
			for _, r := range res {
				gotIDs = append(gotIDs, r.(map[string]any)["id"].(string))
			}
			if got["totalResults"] != float64(c.total) || got["startIndex"] != float64(c.from) || got["itemsPerPage"] != float64(len(c.ids)) ||
				fmt.Sprint(gotIDs) != fmt.Sprint(c.ids) {
				t.Errorf("%s: total %v start %v items %v ids %v; want %d %d %d %v", c.query, got["totalResults"], got["startIndex"], got["itemsPerPage"], gotIDs, c.total, c.from, len(c.ids), c.ids)
			}
		}
	})
}

// Filters: the forms Okta and Entra send, and the rest of the grammar
// evaluated on what SCIM shows.
func TestSCIMFilters(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, db.SSOPolicy{})
		ann := e.pushUser("Ann.Lee@example.com", map[string]any{"externalId": "ExtA", "displayName": "Ann Lee"})
		bob := e.pushUser("bob", map[string]any{"externalId": "extb", "displayName": "Bob Ray",
			"emails": []any{map[string]any{"value": "Bob.Ray@Example.com", "type": "work", "primary": true}}})
		sales := e.pushGroup("Sales", ann, bob)
		ops := e.pushGroup("Ops", bob)
		if status, _, _ := e.do("PATCH", "/Users/"+bob, patch(map[string]any{"op": "replace", "value": map[string]any{"active": false}})); status != 200 {
			t.Fatal(status)
		}
		for _, c := range []struct {
			kind, filter string
			want         []string
		}{
			{"Users", `userName eq "ann.lee@example.com"`, []string{ann}},
			{"Users", `userName eq "ANN.LEE@EXAMPLE.COM"`, []string{ann}},
			{"Users", `userName Eq "bob"`, []string{bob}},
			{"Users", `userName eq "nobody"`, nil},
			{"Users", `externalId eq "ExtA"`, []string{ann}},
			{"Users", `externalId eq "exta"`, nil}, // caseExact
			{"Users", `displayName eq "bob ray"`, []string{bob}},
			{"Users", `emails[type eq "work"].value eq "bob.ray@example.com"`, []string{bob}},
			{"Users", `emails[type eq "home"].value eq "bob.ray@example.com"`, nil},
			{"Users", `emails.value eq "ann.lee@example.com"`, []string{ann}},
			{"Users", `emails eq "ann.lee@example.com"`, []string{ann}},
			{"Users", `id eq "` + bob + `"`, []string{bob}},
			{"Users", `id eq "x"`, nil},
			{"Users", `userName eq "bob" and externalId eq "extb"`, []string{bob}},
			{"Users", `userName eq "bob" and externalId eq "other"`, nil},
			{"Users", `userName eq "bob" or displayName co "lee"`, []string{ann, bob}},
			{"Users", `active eq false`, []string{bob}},
			{"Users", `userName sw "ANN"`, []string{ann}},
			{"Users", `displayName ew "ray"`, []string{bob}},
			{"Users", `externalId pr`, []string{ann, bob}},
			{"Users", `name.givenName pr`, nil},
			{"Users", `groups.value eq "` + ops + `"`, []string{bob}},
			{"Users", `urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob"`, []string{bob}},
			{"Groups", `displayName eq "sales"`, []string{sales}},
			{"Groups", `displayName eq "Ops"`, []string{ops}},
			{"Groups", `members.value eq "` + ann + `"`, []string{sales}},
			{"Groups", `members[value eq "` + bob + `"]`, []string{sales, ops}},
			{"Groups", `displayName sw "S"`, []string{sales}},
		} {
			q := strings.NewReplacer(" ", "%20", `"`, "%22", "[", "%5B", "]", "%5D").Replace(c.filter)
			status, got, _ := e.do("GET", "/"+c.kind+"?filter="+q, nil)
			if status != 200 {
				t.Errorf("%s %s: %d %v", c.kind, c.filter, status, got)
				continue
			}
			var ids []string
			for _, r := range got["Resources"].([]any) {
				ids = append(ids, r.(map[string]any)["id"].(string))
			}
			if fmt.Sprint(ids) != fmt.Sprint(c.want) || got["totalResults"] != float64(len(c.want)) {
				t.Errorf("%s %s: %v (total %v), want %v", c.kind, c.filter, ids, got["totalResults"], c.want)
			}
		}
	})
}

// attributes and excludedAttributes shape what is returned; id, schemas
// and meta always are.
func TestSCIMAttributes(t *testing.T) {
	e := newEnv(t, "", db.SSOPolicy{})
	ann := e.pushUser("ann@example.com", map[string]any{"externalId": "a1", "name": map[string]any{"givenName": "Ann", "familyName": "Lee"}})
	grp := e.pushGroup("Sales", ann)
	keys := func(m map[string]any) string {
		var out []string
		for _, k := range []string{"id", "schemas", "meta", "userName", "externalId", "name", "displayName", "active", "emails", "groups", "members"} {
			if _, ok := m[k]; ok {
				out = append(out, k)
			}
		}
		return strings.Join(out, ",")
	}
	for _, c := range []struct{ path, want string }{
		{"/Users/" + ann + "?attributes=userName", "id,schemas,meta,userName"},
		{"/Users/" + ann + "?attributes=USERNAME,externalId", "id,schemas,meta,userName,externalId"},
		{"/Users/" + ann + "?attributes=urn:ietf:params:scim:schemas:core:2.0:User:active", "id,schemas,meta,active"},
		{"/Users/" + ann + "?excludedAttributes=emails,groups,name", "id,schemas,meta,userName,externalId,displayName,active"},
		{"/Users/" + ann + "?excludedAttributes=id", "id,schemas,meta,userName,externalId,name,displayName,active,emails,groups"},
		{"/Groups/" + grp + "?excludedAttributes=members", "id,schemas,meta,displayName"},
		{"/Groups/" + grp + "?attributes=displayName", "id,schemas,meta,displayName"},
		{"/Groups/" + grp + "?attributes=members", "id,schemas,meta,members"},
		{"/Groups/" + grp, "id,schemas,meta,displayName,members"},
	} {
		status, got, _ := e.do("GET", c.path, nil)
		if status != 200 {
			t.Fatalf("%s: %d", c.path, status)
		}
		if k := keys(got); k != c.want {
			t.Errorf("%s: %s, want %s", c.path, k, c.want)
		}
	}
	_, got, _ := e.do("GET", "/Users/"+ann+"?attributes=name.givenName", nil)
	if name := got["name"].(map[string]any); name["givenName"] != "Ann" || name["familyName"] != nil {
		t.Errorf("attributes=name.givenName: %v", name)
	}
	_, got, _ = e.do("GET", "/Users?attributes=userName&filter=userName%20eq%20%22ann@example.com%22", nil)
	if r := got["Resources"].([]any)[0].(map[string]any); keys(r) != "id,schemas,meta,userName" {
		t.Errorf("list with attributes: %v", r)
	}
}

// The discovery endpoints answer what IdPs read before provisioning.
func TestSCIMDiscovery(t *testing.T) {
	e := newEnv(t, "", db.SSOPolicy{})
	status, spc, _ := e.do("GET", "/ServiceProviderConfig", nil)
	if status != 200 || spc["patch"].(map[string]any)["supported"] != true || spc["bulk"].(map[string]any)["supported"] != false ||
		spc["authenticationSchemes"].([]any)[0].(map[string]any)["type"] != "oauthbearertoken" {
		t.Errorf("ServiceProviderConfig: %d %v", status, spc)
	}
	status, rts, _ := e.do("GET", "/ResourceTypes", nil)
	if status != 200 || rts["totalResults"] != float64(2) {
		t.Errorf("ResourceTypes: %d %v", status, rts)
	}
	if status, rt, _ := e.do("GET", "/ResourceTypes/Group", nil); status != 200 || rt["endpoint"] != "/Groups" {
		t.Errorf("ResourceTypes/Group: %d %v", status, rt)
	}
	status, sch, _ := e.do("GET", "/Schemas", nil)
	if status != 200 || sch["totalResults"] != float64(2) {
		t.Errorf("Schemas: %d %v", status, sch)
	}
	if status, s, _ := e.do("GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", nil); status != 200 || s["name"] != "User" {
		t.Errorf("Schemas/User: %d %v", status, s)
	}
	if status, _, _ := e.do("GET", "/Schemas/urn:nope", nil); status != 404 {
		t.Errorf("unknown schema: %d", status)
	}
}

// A path the mux would redirect (//, ., ..) is answered in SCIM JSON too,
// never with Go's HTML redirect page.
func TestSCIMUncleanPathIsSCIMError(t *testing.T) {
	e := newEnv(t, "", db.SSOPolicy{})
	id := e.pushUser("ann@example.com", nil)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"//Users", "/./Users", "/Users/" + id + "/../" + id, "/Users//" + id} {
		for _, m := range []string{"GET", "PATCH", "DELETE"} {
			req, err := http.NewRequest(m, e.srv.URL+scim.Prefix+p, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+e.token)
			res, err := noFollow.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			err = json.NewDecoder(res.Body).Decode(&got)
			res.Body.Close()
			if ct := res.Header.Get("Content-Type"); ct != "application/scim+json" || err != nil {
				t.Errorf("%s %s: %d, Content-Type %q, %v", m, p, res.StatusCode, ct, err)
				continue
			}
			wantError(t, m+" "+p, 404, got, res.StatusCode, "", "no SCIM resource")
		}
	}
}
