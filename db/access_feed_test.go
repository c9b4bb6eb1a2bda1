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
	heard(t, f, w, "a membership expiring", func() {
		if err := w.SetMemberExpiry(ctx, Actor{}, g.ID, u.ID, time.Now().Add(300*time.Millisecond).UnixMilli()); err != nil {
			t.Fatal(err)
		}
	})
	before := f.Changes()
	deadline := time.Now().Add(10 * time.Second)
	for f.Changes() == before {
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
