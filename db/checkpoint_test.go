package db

import (
	"context"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWALStaysBoundedUnderLoad: with readers always in flight, SQLite's
// own checkpoints never reach the WAL's end and the WAL grows with every
// write (to about 20 MB here); the checkpointer's step, run every 50 writes
// here instead of every second, keeps it near walSizeLimit.
func TestWALStaysBoundedUnderLoad(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	walPath := walPathOf(s.Path)

	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 { // readers, each always inside a read transaction
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := s.DB.DB.Conn(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			for !stop.Load() {
				var n int
				if _, err := conn.ExecContext(ctx, "BEGIN DEFERRED"); err != nil {
					t.Error(err)
					return
				}
				_ = conn.QueryRowContext(ctx, "SELECT count(*) FROM audit_events").Scan(&n)
				time.Sleep(time.Millisecond)
				_, _ = conn.ExecContext(ctx, "COMMIT")
			}
		}()
	}
	var maxWAL atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if st, err := os.Stat(walPath); err == nil && st.Size() > maxWAL.Load() {
				maxWAL.Store(st.Size())
			}
			time.Sleep(time.Millisecond)
		}
	}()
	pad := strings.Repeat("x", 1000)
	const writes = 4000
	for i := range writes {
		if err := s.Audit(ctx, Actor{Email: "load@example.com"}, Event{Action: "test.load", Detail: pad}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if i%50 == 0 {
			if _, err := s.checkpointIfLarge(ctx, walPath); err != nil {
				t.Fatalf("checkpoint: %v", err)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d writes of ~1 kB under 4 readers: largest WAL %.1f MB (limit %d MB)", writes, float64(maxWAL.Load())/(1<<20), walSizeLimit>>20)
	if maxWAL.Load() > 2*walSizeLimit {
		t.Errorf("the WAL grew to %d bytes, want at most %d", maxWAL.Load(), 2*walSizeLimit)
	}
}
