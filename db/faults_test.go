package db

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrentReadersAndWritersSeeNoBusy runs 50 goroutines reading and
// writing at once: IMMEDIATE transactions plus busy_timeout must queue
// writers instead of failing with SQLITE_BUSY.
func TestConcurrentReadersAndWritersSeeNoBusy(t *testing.T) {
	ctx := context.Background()
	s := testStore(t)
	u := testUser(t, s, "ann@example.com")
	var wg sync.WaitGroup
	var failures atomic.Int64
	var firstErr atomic.Value
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				var err error
				switch i % 4 {
				case 0:
					var g Group
					g, err = s.CreateGroup(ctx, Actor{}, fmt.Sprintf("g-%d-%d", i, j), "")
					if err == nil {
						err = s.AddMember(ctx, Actor{}, g.ID, u.ID, 0)
					}
				case 1:
					err = s.Audit(ctx, Actor{Email: "x"}, Event{Action: "test.write", Target: fmt.Sprint(i, j)})
				case 2:
					_, _, err = s.ListUsers(ctx, UserFilter{Search: "ann"})
				case 3:
					_, err = s.GrantingGroups(ctx, u.ID, "d")
				}
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d operations failed; first: %v", n, firstErr.Load())
	}
	groups, _, _ := s.ListGroups(ctx, GroupFilter{})
	if len(groups) != 13*20 {
		t.Errorf("%d groups, want %d", len(groups), 13*20)
	}
}

// TestBackupDuringWrites copies the database while writers run; the copy
// passes integrity_check and holds every row committed before it began.
func TestBackupDuringWrites(t *testing.T) {
	ctx := context.Background()
	s := testStore(t)
	stop := make(chan struct{})
	var committed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := s.Audit(ctx, Actor{}, Event{Action: "test.write"}); err != nil {
					t.Error(err)
					return
				}
				committed.Add(1)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	before := committed.Load()
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := s.Backup(ctx, path); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()

	copyStore, err := Open(ctx, Config{DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	defer copyStore.Close()
	var check string
	if err := copyStore.DB.NewRaw("PRAGMA integrity_check").Scan(ctx, &check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
	n, err := copyStore.DB.NewSelect().Model((*AuditEvent)(nil)).Where("action = 'test.write'").Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int64(n) < before || int64(n) > committed.Load() {
		t.Errorf("backup holds %d rows; %d were committed before it began and %d in all", n, before, committed.Load())
	}
	t.Logf("backup taken during writes: %d rows (>= %d committed before, <= %d total)", n, before, committed.Load())
}

// singleConn pins the store to one connection so a per-connection pragma
// applies to every query.
func singleConn(t *testing.T, s *Store, pragma string) {
	t.Helper()
	s.DB.SetMaxOpenConns(1)
	if _, err := s.DB.Exec(pragma); err != nil {
		t.Fatal(err)
	}
}

func TestFullDiskGivesClearErrorAndNoCorruption(t *testing.T) {
	ctx := context.Background()
	s := testStore(t)
	var pages int
	if err := s.DB.NewRaw("PRAGMA page_count").Scan(ctx, &pages); err != nil {
		t.Fatal(err)
	}
	singleConn(t, s, fmt.Sprintf("PRAGMA max_page_count = %d", pages+2))
	// Each group is a row plus its audit row, in one transaction; create
	// them until the "disk" is full.
	var err error
	var created int
	for ; created < 1000; created++ {
		if _, err = s.CreateGroup(ctx, Actor{}, fmt.Sprintf("group-%d", created), fmt.Sprintf("%0450d", created)); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrUnavailable) || err.Error() != "the database is unavailable: the disk is full" {
		t.Fatalf("after %d groups: error = %v, want ErrUnavailable (disk full)", created, err)
	}
	// The failed transaction left nothing behind: no group without its audit row.
	if _, err := s.GroupByName(ctx, fmt.Sprintf("group-%d", created)); !errors.Is(err, ErrNotFound) {
		t.Errorf("the failed group exists: %v", err)
	}
	audits, _ := s.DB.NewSelect().Model((*AuditEvent)(nil)).Where("action = ?", ActionGroupCreate).Count(ctx)
	if int(audits) != created {
		t.Errorf("%d groups but %d audit rows", created, audits)
	}
	var check string
	if err := s.DB.NewRaw("PRAGMA integrity_check").Scan(ctx, &check); err != nil || check != "ok" {
		t.Errorf("integrity_check = %q, %v", check, err)
	}
}

func TestReadOnlyDatabaseGivesClearError(t *testing.T) {
	ctx := context.Background()
	s := testStore(t)
	singleConn(t, s, "PRAGMA query_only = 1")
	_, err := s.CreateGroup(ctx, Actor{}, "ops", "")
	if !errors.Is(err, ErrUnavailable) || err.Error() != "the database is unavailable: the database file is read-only" {
		t.Fatalf("error = %v", err)
	}
	if _, _, err := s.ListGroups(ctx, GroupFilter{}); err != nil {
		t.Errorf("reads fail on a read-only database: %v", err)
	}
}
