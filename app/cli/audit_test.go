package cli

import (
	"encoding/json"
	"gatehouse/internal/testutil"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestCLIAuditListJSON(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("", "migrate")
	e.ok("", "groups", "create", "sales", "--description", "Sales \"team\"")
	e.ok(testPassword+"\n", "users", "create", "ana@example.com", "--password-stdin", "--name", "Ana")
	out := e.ok("", "audit", "list", "--json")
	recs := testutil.JSONLines(t, out)
	if len(recs) != 2 {
		t.Fatalf("want 2 events, got %d:\n%s", len(recs), out)
	}
	// Newest first, with stable field names.
	first, second := recs[0], recs[1]
	if first["action"] != "user.create" || first["target"] != "ana@example.com" || second["action"] != "group.create" {
		t.Fatalf("events: %v", recs)
	}
	for _, field := range []string{"id", "time", "actor_email", "action", "target"} {
		if _, ok := first[field]; !ok {
			t.Errorf("field %q missing from %v", field, first)
		}
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(first["time"].(string)) {
		t.Errorf("time %q is not RFC 3339 UTC with milliseconds", first["time"])
	}
	// The detail is an object, not a string of escaped JSON.
	detail, ok := second["detail"].(map[string]any)
	if !ok {
		t.Fatalf("detail is %T, want an object: %v", second["detail"], second["detail"])
	}
	if !strings.Contains(mustJSON(t, detail), `Sales \"team\"`) {
		t.Errorf("detail does not carry the description: %v", detail)
	}
}

func TestCLIHealthcheck(t *testing.T) {
	e := newCLIEnv(t)
	srv := serve(t, "--data", e.data)
	addr := strings.TrimPrefix(srv.URL, "http://")
	if out := e.ok("", "healthcheck", "--addr", addr); !strings.Contains(out, "/healthz: ok") {
		t.Errorf("healthcheck output %q", out)
	}
	e.ok("", "healthcheck", "--url", srv.URL+"/readyz")
	e.fails(1, "answered 404 Not Found", "", "healthcheck", "--url", srv.URL+"/nope")
	srv.stop()
	e.fails(1, "did not answer", "", "healthcheck", "--addr", addr)
	e.fails(2, "not host:port", "", "healthcheck", "--addr", "nonsense")
}

// TestServeStreamsAuditLog runs serve with --audit-log and checks that
// events from its own requests and from a CLI command reach the file.
func TestServeStreamsAuditLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	logFile := filepath.Join(t.TempDir(), "audit.jsonl")
	e := &cliEnv{t: t, data: dir}
	e.ok("", "migrate")
	e.ok(testPassword+"\n", "users", "create", "ana@example.com", "--password-stdin")

	srv := serve(t, "--data", dir, "--audit-log", logFile)
	res, err := http.PostForm(srv.URL+"/login", url.Values{"email": {"ana@example.com"}, "password": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	e.ok("", "groups", "create", "from-cli")
	if code := srv.stop(); code != 0 {
		t.Fatalf("serve exit %d: %s", code, srv.logs.String())
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	recs := testutil.JSONLines(t, string(b))
	var got []string
	for _, r := range recs {
		got = append(got, r["action"].(string)+" "+r["target"].(string))
	}
	want := "login.failed ana@example.com,group.create from-cli"
	if strings.Join(got, ",") != want {
		t.Fatalf("audit log file holds %q, want %q (user.create came before the start)", strings.Join(got, ","), want)
	}
	if st, err := os.Stat(logFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v, want 0600", st.Mode().Perm())
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
