package auditlog

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gatehouse/db"
	"gatehouse/internal/testutil"
)

// TestAuditTailWritesEachEventOnce follows the table the way PostgreSQL can
// fill it: ids committed out of order, and an id that never commits.
func TestAuditTailWritesEachEventOnce(t *testing.T) {
	ctx := context.Background()
	store := testStore(t)
	var out bytes.Buffer
	tail := newAuditTail(store, &out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tail.now = func() time.Time { return now }
	store.Audit(ctx, db.Actor{Email: "old@example.com"}, db.Event{Action: "before.start"})
	if err := tail.start(ctx); err != nil {
		t.Fatal(err)
	}
	base := tail.next
	insert := func(id int64, action string) {
		t.Helper()
		if _, err := store.DB.NewInsert().Model(&db.AuditEvent{ID: id, At: now.UnixMilli(), ActorEmail: "x@example.com", Action: action}).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	actions := func() []string {
		var got []string
		for _, r := range testutil.JSONLines(t, out.String()) {
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

// testStore opens a migrated SQLite store in a temporary directory.
func testStore(t *testing.T) *db.Store {
	t.Helper()
	store, err := db.Open(context.Background(), db.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return store
}

// TestTailEscapesBidiAndC1Controls: --audit-log writes a right-to-left
// override (U+202E) and a C1 control (U+009B) as JSON escapes, never raw,
// and the line still decodes to the same values.
func TestTailEscapesBidiAndC1Controls(t *testing.T) {
	const desc = "Sales \u202eevil\u009b[31m red"
	store := testStore(t)
	var log bytes.Buffer
	tail := newAuditTail(store, &log, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := tail.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateGroup(context.Background(), db.Actor{Email: "x@example.com"}, "ops", desc); err != nil {
		t.Fatal(err)
	}
	if err := tail.poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(log.String(), "\u202e\u009b") {
		t.Errorf("--audit-log carries a raw U+202E or U+009B:\n%q", log.String())
	}
	recs := testutil.JSONLines(t, log.String())
	if len(recs) != 1 || recs[0]["detail"].(map[string]any)["after"].(map[string]any)["description"] != desc {
		t.Errorf("--audit-log records: %v", recs)
	}
}
