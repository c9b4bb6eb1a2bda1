package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/db"
)

// TestThrottledFloodAddsOneAuditRow: a flood of throttled logins (each a
// cheap 429) adds one audit row for the account and address, which counts
// every attempt, instead of a row per attempt (issue 12: 20 s added 16.7k
// rows and 58 MB).
func TestThrottledFloodAddsOneAuditRow(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "ann@example.com", false)
	bad := url.Values{"email": {"ann@example.com"}, "password": {"wrong wrong wrong"}}
	for i := 0; i < ta.cfg.AccountFailures; i++ {
		if res, _ := ta.post(t, ta.client(), "/login", bad); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i+1, res.StatusCode)
		}
	}
	const flood = 300
	for i := range flood {
		if res, _ := ta.post(t, ta.client(), "/login", bad); res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("flooded attempt %d: %d, want 429", i, res.StatusCode)
		}
	}
	if n := ta.countAudit(t, db.ActionLoginThrottled, "ann@example.com"); n != 1 {
		t.Fatalf("%d throttled attempts wrote %d audit rows, want 1", flood, n)
	}
	ta.Clock.Advance(2 * time.Second) // the count is written at most once a second
	if res, _ := ta.post(t, ta.client(), "/login", bad); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("one more attempt: %d", res.StatusCode)
	}
	var detail string
	if err := ta.store.DB.NewSelect().Model((*db.AuditEvent)(nil)).Column("detail").
		Where("action = ?", db.ActionLoginThrottled).Scan(context.Background(), &detail); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(detail, `"attempts":301`) {
		t.Errorf("the row's detail is %s, want 301 attempts", detail)
	}
	// The audit page shows the count.
	ta.createUser(t, "root@example.com", true)
	if _, body := ta.get(t, ta.login(t, "root@example.com"), "/admin/audit?action=login.throttled", false); !strings.Contains(body, "attempts: 301") {
		t.Errorf("the audit page does not show the count")
	}
}
