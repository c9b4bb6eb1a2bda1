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
	store, err := db.Open(ctx, db.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
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
