package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gatehouse/db"
)

// decodeAuditLines parses JSON lines, failing on any line that is not one object.
func decodeAuditLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON object: %q: %v", line, err)
		}
		recs = append(recs, m)
	}
	return recs
}

func TestCLIAuditListJSON(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("", "migrate")
	e.ok("", "groups", "create", "sales", "--description", "Sales \"team\"")
	e.ok(testPassword+"\n", "users", "create", "ana@example.com", "--password-stdin", "--name", "Ana")
	out := e.ok("", "audit", "list", "--json")
	recs := decodeAuditLines(t, out)
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

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAuditTailWritesEachEventOnce follows the table the way PostgreSQL can
// fill it: ids committed out of order, and an id that never commits.
func TestAuditTailWritesEachEventOnce(t *testing.T) {
	ctx := context.Background()
	ta := newTestApp(t)
	var out bytes.Buffer
	tail := newAuditTail(ta.store, &out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tail.now = func() time.Time { return now }
	ta.store.Audit(ctx, db.Actor{Email: "old@example.com"}, db.Event{Action: "before.start"})
	if err := tail.start(ctx); err != nil {
		t.Fatal(err)
	}
	base := tail.next
	insert := func(id int64, action string) {
		t.Helper()
		if _, err := ta.store.DB.NewInsert().Model(&db.AuditEvent{ID: id, At: now.UnixMilli(), ActorEmail: "x@example.com", Action: action}).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	actions := func() []string {
		var got []string
		for _, r := range decodeAuditLines(t, out.String()) {
			got = append(got, r["action"].(string))
		}
		return got
	}
	poll := func() {
		t.Helper()
		if err := tail.poll(ctx); err != nil {
			t.Fatal(err)
		}
	}

	insert(base, "a")
	insert(base+2, "c") // base+1 is still in flight
	poll()
	insert(base+1, "b") // commits late
	poll()
	poll()
	if got := strings.Join(actions(), ","); got != "a,c,b" {
		t.Fatalf("written %q, want a,c,b (each once, none from before the start)", got)
	}
	// base+3 never commits; once it is given up, later ids still flow and
	// nothing is written again.
	insert(base+4, "e")
	poll()
	now = now.Add(tail.gapWait + time.Second)
	poll()
	if tail.next != base+5 {
		t.Fatalf("tail waits at id %d, want %d after giving up the gap", tail.next, base+5)
	}
	insert(base+5, "f")
	poll()
	if got := strings.Join(actions(), ","); got != "a,c,b,e,f" {
		t.Fatalf("written %q, want a,c,b,e,f", got)
	}
}

// TestServeStreamsAuditLog runs serve with --audit-log and checks that
// events from its own requests and from a CLI command reach the file.
func TestServeStreamsAuditLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	logFile := filepath.Join(t.TempDir(), "audit.jsonl")
	e := &cliEnv{t: t, data: dir}
	e.ok("", "migrate")
	e.ok(testPassword+"\n", "users", "create", "ana@example.com", "--password-stdin")

	var logs bytes.Buffer
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	c := &CLI{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &lockedBuffer{b: &logs},
		Getenv: func(string) string { return "" }, Ready: func(addr string) { ready <- addr }}
	go func() {
		done <- c.Run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data", dir, "--audit-log", logFile})
	}()
	var addr string
	select {
	case addr = <-ready:
	case code := <-done:
		t.Fatalf("serve exited with %d: %s", code, logs.String())
	case <-time.After(20 * time.Second):
		t.Fatal("server did not start")
	}
	res, err := http.PostForm("http://"+addr+"/login", url.Values{"email": {"ana@example.com"}, "password": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	e.ok("", "groups", "create", "from-cli")
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exit %d: %s", code, logs.String())
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	recs := decodeAuditLines(t, string(b))
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

func TestCLIHealthcheck(t *testing.T) {
	ta := newTestApp(t)
	e := newCLIEnv(t)
	addr := strings.TrimPrefix(ta.Server.URL, "http://")
	if out := e.ok("", "healthcheck", "--addr", addr); !strings.Contains(out, "/healthz: ok") {
		t.Errorf("healthcheck output %q", out)
	}
	e.ok("", "healthcheck", "--url", ta.Server.URL+"/readyz")
	e.fails(1, "answered 404 Not Found", "", "healthcheck", "--url", ta.Server.URL+"/nope")
	ta.Server.Close()
	e.fails(1, "did not answer", "", "healthcheck", "--addr", addr)
	e.fails(2, "not host:port", "", "healthcheck", "--addr", "nonsense")
}
