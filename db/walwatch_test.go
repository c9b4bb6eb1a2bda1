package db

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// watchedStore returns a SQLite store whose WAL watch is on, and fails
// where the platform should have one.
func watchedStore(t *testing.T) *Store {
	t.Helper()
	s := newSQLiteStore(t)
	if s.wal == nil {
		if !mmapPlatform {
			t.Skip("no shared-memory mapping on this platform: every request reads the version")
		}
		t.Fatal("a SQLite store opened without its WAL watch")
	}
	return s
}

// databaseReads is how many version reads went to the database so far.
func databaseReads(s *Store) int64 { return s.authzCache().reads.Load() }

// TestWALWatchSkipsReadsUntilSomethingCommits: while nothing commits, the
// version is answered without a query; any commit from another store (even
// one that changes no access) makes the next caller read, and a change of
// access is seen by the very next snapshot.
func TestWALWatchSkipsReadsUntilSomethingCommits(t *testing.T) {
	s := watchedStore(t)
	f := newAuthzFixture(t, s)
	v := f.version(t)
	before := databaseReads(s)
	for range 100 {
		if got := f.version(t); got != v {
			t.Fatalf("version moved from %d to %d with nothing committed", v, got)
		}
	}
	if n := databaseReads(s) - before; n != 0 {
		t.Fatalf("100 version checks with nothing committed read the database %d times, want 0", n)
	}

	other := openAgain(t, s)
	if err := other.Audit(f.ctx, f.actr, Event{Action: "test.noop"}); err != nil {
		t.Fatal(err)
	}
	before = databaseReads(s)
	if got := f.version(t); got != v {
		t.Fatalf("an audit row moved the version from %d to %d", v, got)
	}
	if n := databaseReads(s) - before; n != 1 {
		t.Fatalf("the first check after another store's commit read the database %d times, want 1", n)
	}

	if !f.member(t, f.snap(t)) {
		t.Fatal("the member is denied before any change")
	}
	if err := other.RemoveMember(f.ctx, f.actr, f.g.ID, f.u.ID); err != nil {
		t.Fatal(err)
	}
	if f.member(t, f.snap(t)) {
		t.Fatal("a membership removed by another store is still granted on the next snapshot")
	}
}

// TestWALWatchSeesOtherProcesses: changes made by other processes, which
// open the database, commit, checkpoint and exit (as the CLI does), are each
// seen on the very next snapshot; in between, checks read nothing.
func TestWALWatchSeesOtherProcesses(t *testing.T) {
	s := watchedStore(t)
	f := newAuthzFixture(t, s)
	path := s.Path

	steps := []struct {
		action string
		member bool
	}{
		{"remove-member", false},
		{"add-member", true},
		{"truncate-wal-and-remove-member", false},
		{"deactivate", false},
		{"add-member", true},
	}
	for _, step := range steps {
		// Warm: the version is remembered and checks stop reading.
		v := f.version(t)
		before := databaseReads(s)
		f.snap(t)
		if n := databaseReads(s) - before; n != 0 {
			t.Fatalf("before %s: a check with nothing committed read the database %d times", step.action, n)
		}

		cmd := exec.Command(os.Args[0], "-test.run=^TestWALWatchHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "GATEHOUSE_WALWATCH_DB="+path, "GATEHOUSE_WALWATCH_ACTION="+step.action)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("helper process %s: %v\n%s", step.action, err, out)
		}

		if got := f.version(t); got <= v {
			t.Fatalf("after another process ran %s: version %d, want more than %d", step.action, got, v)
		}
		if got := f.member(t, f.snap(t)); got != step.member {
			t.Fatalf("after another process ran %s: member = %v, want %v", step.action, got, step.member)
		}
	}
}

// TestWALWatchHelperProcess is the other process of
// TestWALWatchSeesOtherProcesses.
func TestWALWatchHelperProcess(t *testing.T) {
	path := os.Getenv("GATEHOUSE_WALWATCH_DB")
	if path == "" {
		t.Skip("runs only as TestWALWatchSeesOtherProcesses' helper process")
	}
	ctx, a := context.Background(), Actor{Email: "helper"}
	s, err := Open(ctx, Config{DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.UserByEmail(ctx, "u@example.com")
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.GroupByName(ctx, "team")
	if err != nil {
		t.Fatal(err)
	}
	switch action := os.Getenv("GATEHOUSE_WALWATCH_ACTION"); action {
	case "remove-member":
		err = s.RemoveMember(ctx, a, g.ID, u.ID)
	case "add-member":
		err = s.AddMember(ctx, a, g.ID, u.ID, 0)
	case "truncate-wal-and-remove-member":
		// A truncated WAL starts again with new salts and frame 0.
		if _, err = s.DB.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err == nil {
			err = s.RemoveMember(ctx, a, g.ID, u.ID)
		}
	case "deactivate":
		err = s.SetActive(ctx, a, u.ID, false)
	default:
		err = fmt.Errorf("unknown action %q", action)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestWALWatchFollowsSymlinks: a database reached through a symbolic link
// (SQLite keeps its -shm file beside the real file) is watched too, and a
// change made through the real path is seen on the next snapshot.
func TestWALWatchFollowsSymlinks(t *testing.T) {
	if !mmapPlatform {
		t.Skip("no shared-memory mapping on this platform")
	}
	ctx := context.Background()
	dir := t.TempDir()
	real := filepath.Join(dir, "real", "gatehouse.db")
	if err := os.MkdirAll(filepath.Dir(real), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.db")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, Config{DSN: link})
	if err != nil {
		t.Fatal(err)
	}
	s = migrated(t, s, link)
	if s.wal == nil {
		t.Fatal("a database opened through a symbolic link has no WAL watch")
	}
	f := newAuthzFixture(t, s)
	if !f.member(t, f.snap(t)) {
		t.Fatal("the member is denied before any change")
	}
	other, err := Open(ctx, Config{DSN: real})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.RemoveMember(ctx, f.actr, f.g.ID, f.u.ID); err != nil {
		t.Fatal(err)
	}
	if f.member(t, f.snap(t)) {
		t.Fatal("a membership removed through the real path is still granted through the link")
	}
}

// TestSharedLoadsFollowOtherProcesses: while readers keep the cache busy,
// other processes change the membership (as the CLI does); right after
// each change, requests that miss the cache together (and share their
// loads) all see it.
func TestSharedLoadsFollowOtherProcesses(t *testing.T) {
	s := watchedStore(t)
	f := newAuthzFixture(t, s)
	path := s.Path

	stop := make(chan struct{})
	var busy sync.WaitGroup
	errs := make(chan error, 64)
	for range 6 {
		busy.Add(1)
		go func() {
			defer busy.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, err := s.Snapshot(context.Background())
				if err == nil {
					_, err = s.GrantingGroups(ctx, f.u.ID, "board")
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	defer func() {
		close(stop)
		busy.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}()

	for i, step := range []struct {
		action string
		member bool
	}{
		{"remove-member", false},
		{"add-member", true},
		{"remove-member", false},
		{"add-member", true},
		{"deactivate", true}, // the membership stays; deactivation is the user's, not the group's
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWALWatchHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "GATEHOUSE_WALWATCH_DB="+path, "GATEHOUSE_WALWATCH_ACTION="+step.action)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("helper process %s: %v\n%s", step.action, err, out)
		}
		const n = 16
		got := make(chan bool, n)
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, err := s.Snapshot(context.Background())
				if err != nil {
					errs <- err
					return
				}
				gs, err := s.GrantingGroups(ctx, f.u.ID, "board")
				if err != nil {
					errs <- err
					return
				}
				got <- len(gs) == 1 && gs[0].Member
			}()
		}
		wg.Wait()
		close(got)
		for member := range got {
			if member != step.member {
				t.Fatalf("step %d: after another process ran %s, a request saw member = %v, want %v", i, step.action, member, step.member)
			}
		}
	}
}
