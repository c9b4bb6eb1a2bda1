package db

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"gatehouse/db/postgrestest"
)

// heard waits for the feed to announce the change do makes, and to have
// seen its version: an announcement for an earlier change (the feed may
// first hear the writes that set the test up) does not count, and the feed
// may fold two quick changes into one announcement. The bound only keeps a
// broken build from hanging.
func heard(t *testing.T, f *AccessFeed, w *Store, what string, do func()) {
	t.Helper()
	ch := f.Changed()
	do()
	var target int64
	if err := w.DB.QueryRowContext(context.Background(), authzVersionQuery).Scan(&target); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: the feed announced nothing for version %d", what, target)
		}
		f.mu.Lock()
		seen := f.version
		f.mu.Unlock()
		if seen >= target {
			return
		}
		ch = f.Changed()
		f.mu.Lock()
		seen = f.version
		f.mu.Unlock()
		if seen >= target { // announced between the two reads
			return
		}
	}
}

// feedTestStores opens two stores on one database, as two processes or
// instances would, and starts the feed of the second.
func feedTestStores(t *testing.T, open func() *Store) (writer *Store, feed *AccessFeed) {
	t.Helper()
	writer, reader := open(), open()
	return writer, reader.AccessFeed()
}

func testFeedHearsEveryChange(t *testing.T, open func() *Store) {
	ctx := context.Background()
	w, f := feedTestStores(t, open)
	u, err := w.CreateUser(ctx, Actor{}, NewUser{Email: "u@example.com", Name: "U", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := w.CreateGroup(ctx, Actor{}, "team", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		heard(t, f, w, "add member", func() {
			if err := w.AddMember(ctx, Actor{}, g.ID, u.ID, 0); err != nil {
				t.Fatal(i, err)
			}
		})
		heard(t, f, w, "remove member", func() {
			if err := w.RemoveMember(ctx, Actor{}, g.ID, u.ID); err != nil {
				t.Fatal(i, err)
			}
		})
	}
	// An expiry passing is no commit: the feed's timer wakes it.
	if err := w.AddMember(ctx, Actor{}, g.ID, u.ID, 0); err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(300 * time.Millisecond).UnixMilli()
	heard(t, f, w, "a membership expiring", func() {
		if err := w.SetMemberExpiry(ctx, Actor{}, g.ID, u.ID, expires); err != nil {
			t.Fatal(err)
		}
	})
	// The feed announces something at or after the expiry (nothing else
	// changes now). Counting announcements from here would miss one made
	// before this goroutine looked, on a busy machine.
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		at := f.announcedAt
		f.mu.Unlock()
		if at >= expires {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the feed did not wake at the expiry")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAccessFeedSQLite(t *testing.T) {
	dir := t.TempDir()
	testFeedHearsEveryChange(t, func() *Store {
		s, err := Open(context.Background(), Config{DataDir: filepath.Join(dir, "data")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestAccessFeedPostgres: only NOTIFY can wake the feed here (its periodic
// read of the version is pushed out of the test's reach).
func TestAccessFeedPostgres(t *testing.T) {
	dsn := postgrestest.Schema(t)
	net := feedPGNetInterval
	feedPGNetInterval = time.Hour
	t.Cleanup(func() { feedPGNetInterval = net })
	testFeedHearsEveryChange(t, func() *Store {
		s, err := Open(context.Background(), Config{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestFeedAnnouncesAnExpiryThatPassedBeforeItLooked: a membership set to
// expire soon; the feed announces that change, but by the time it looks
// for the next expiry (a busy machine, a slow database: on PostgreSQL
// TestAccessFeedPostgres met it about once in 50 runs) that expiry has
// passed. It woke no decision, so it must be announced at once, not
// skipped as "not ahead any more". The store's clock is played.
func TestFeedAnnouncesAnExpiryThatPassedBeforeItLooked(t *testing.T) {
	s := newSQLiteStore(t)
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	f := newAuthzFixture(t, s)
	if err := s.SetMemberExpiry(f.ctx, f.actr, f.g.ID, f.u.ID, now.Add(300*time.Millisecond).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	feed := &AccessFeed{store: s, changed: make(chan struct{}), announcedAt: s.nowMS()}
	timer := newExpiryTimer()
	defer timer.stop()
	feed.announce() // the change is announced...
	now = now.Add(400 * time.Millisecond)
	feed.scheduleExpiry(f.ctx, timer) // ...and the expiry has passed when the feed looks
	if got := feed.Changes(); got != 2 {
		t.Fatalf("announcements: %d, want 2 (the change, then the expiry that passed before the feed looked)", got)
	}
	if timer.on {
		t.Fatal("a timer was set with no expiry ahead")
	}
	// An expiry still ahead sets the timer and announces nothing yet.
	if err := s.SetMemberExpiry(f.ctx, f.actr, f.g.ID, f.u.ID, now.Add(time.Minute).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	feed.scheduleExpiry(f.ctx, timer)
	if got := feed.Changes(); got != 2 || !timer.on {
		t.Fatalf("an expiry ahead: %d announcements (want 2), timer on %v", got, timer.on)
	}
}
