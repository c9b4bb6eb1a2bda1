package apps

import (
	"context"
	"errors"
	"testing"
	"time"

	"gatehouse/db"
)

// expiringGate knows sessions by cookie value (the cookie is also the
// session's hash): each is live until its deadline.
type expiringGate map[string]time.Time

func (g expiringGate) Viewer(_ context.Context, cookie string) (Viewer, bool, error) {
	ends, ok := g[cookie]
	admin := db.User{ID: 1, Email: "root@example.com", IsAdmin: true, IsActive: true}
	return Viewer{User: admin, SessionHash: cookie, Ends: ends}, ok && time.Now().Before(ends), nil
}

// TestTrackerWakesForAnEarlierDeadline: while the watcher waits for a
// session that ends in an hour, a connection whose session ends sooner
// wakes it, and is cut when that session ends (an expiry is no change the
// access feed announces, so nothing else would cut it).
func TestTrackerWakesForAnEarlierDeadline(t *testing.T) {
	h, s := newTestHandler(t, time.Second)
	if _, err := s.CreateApp(context.Background(), db.Actor{Email: "test"}, db.App{Slug: "sales", Upstream: "http://127.0.0.1:9", Title: "Sales"}); err != nil {
		t.Fatal(err)
	}
	later, soon := time.Now().Add(time.Hour), time.Now().Add(300*time.Millisecond)
	h.cfg.Gate = expiringGate{"long": later, "short": soon}
	never := make(chan struct{})

	longCtx, _, release := h.conns.add(context.Background(), connKey{session: "long", app: "sales"}, "long", later, never)
	defer release()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		h.conns.mu.Lock()
		waiting := h.conns.until.Equal(later)
		h.conns.mu.Unlock()
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watcher never came to wait for the hour-long session")
		}
	}

	shortCtx, _, release2 := h.conns.add(context.Background(), connKey{session: "short", app: "sales"}, "short", soon, never)
	defer release2()
	select {
	case <-shortCtx.Done():
		if !errors.Is(context.Cause(shortCtx), errAccessEnded) {
			t.Errorf("the expired session's connection ended with %v", context.Cause(shortCtx))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a connection outlived its session by seconds: the watcher slept on")
	}
	if longCtx.Err() != nil {
		t.Error("the live session's connection was cut too")
	}
}
