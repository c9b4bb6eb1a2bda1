package db

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// throttleRows returns the login.throttled rows' attempts by IP.
func throttleRows(t *testing.T, s *Store) []map[string]string {
	t.Helper()
	var rows []AuditEvent
	if err := s.DB.NewSelect().Model(&rows).Where("action = ?", ActionLoginThrottled).Order("id").Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, r := range rows {
		var raw map[string]any
		if err := json.Unmarshal([]byte(r.Detail), &raw); err != nil {
			t.Fatalf("detail %q: %v", r.Detail, err)
		}
		d := map[string]string{}
		for k, v := range raw {
			d[k] = fmt.Sprint(v)
		}
		d["ip"], d["target"] = r.IP, r.Target
		out = append(out, d)
	}
	return out
}

// TestThrottledLoginsAreCountedNotLogged: a flood of throttled logins adds
// one row per target and IP per window, whose count is written in place at
// most once a second, when the window ends, and at Close.
func TestThrottledLoginsAreCountedNotLogged(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		s.Now = func() time.Time { return now }
		window := 5 * time.Minute
		attempt := func(ip string) {
			t.Helper()
			if err := s.AuditThrottled(ctx, Actor{Email: "ann@example.com", IP: ip}, "ann@example.com", window); err != nil {
				t.Fatal(err)
			}
		}
		for range 1000 {
			attempt("192.0.2.1")
		}
		rows := throttleRows(t, s)
		if len(rows) != 1 || rows[0]["attempts"] != "1" || rows[0]["window"] != "5m0s" {
			t.Fatalf("after 1000 attempts within a second: %v, want one row saying 1 (the count is written a second later)", rows)
		}
		now = now.Add(1500 * time.Millisecond)
		attempt("192.0.2.1")
		attempt("198.51.100.7") // another address: its own row
		if rows := throttleRows(t, s); len(rows) != 2 || rows[0]["attempts"] != "1001" || rows[1]["attempts"] != "1" || rows[1]["ip"] != "198.51.100.7" {
			t.Fatalf("a second later: %v, want 1001 and 1", rows)
		}
		attempt("192.0.2.1")
		now = now.Add(window) // the next window: the old row gets its last count, a new row starts
		attempt("192.0.2.1")
		rows = throttleRows(t, s)
		if len(rows) != 3 || rows[0]["attempts"] != "1002" || rows[2]["attempts"] != "1" {
			t.Fatalf("in the next window: %v, want 1002, 1, 1", rows)
		}
		attempt("192.0.2.1")
		if err := s.FlushThrottled(ctx); err != nil {
			t.Fatal(err)
		}
		if rows := throttleRows(t, s); rows[2]["attempts"] != "2" {
			t.Errorf("after a flush: %v, want the new row at 2", rows)
		}
	})
}
