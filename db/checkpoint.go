package db

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// The WAL's checkpoint policy (issue 12). SQLite's automatic checkpoint
// (PASSIVE, after any commit that leaves more than 1000 pages in the WAL)
// copies what it can without waiting for readers. Under steady reads and
// writes it never reaches the WAL's end, so the WAL never starts over and
// grows without bound: an 8 s login flood left a 244 MB WAL. So on SQLite:
//
//   - journal_size_limit: whenever the WAL starts over, SQLite truncates
//     the file to walSizeLimit;
//   - each store runs a checkpointer that looks at the WAL's size every
//     walCheckEvery and, above walSizeLimit, runs wal_checkpoint(TRUNCATE):
//     it waits (up to busy_timeout) for readers to move on, copies every
//     frame and empties the file. Writers wait meanwhile, for as long as
//     the longest read in flight takes: milliseconds.
//
// The WAL therefore stays near walSizeLimit plus what writers add in one
// interval, whatever the load (TestWALStaysBoundedUnderLoad).
const walSizeLimit = 8 << 20

// walCheckEvery is how often the checkpointer looks.
const walCheckEvery = time.Second

// checkpointer looks at the WAL at walPath every interval until stop is
// closed, then closes done.
func (s *Store) checkpointer(walPath string, every time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			_, _ = s.checkpointIfLarge(context.Background(), walPath)
		}
	}
}

// checkpointIfLarge empties the WAL at walPath when it is over walSizeLimit,
// and reports whether it tried.
func (s *Store) checkpointIfLarge(ctx context.Context, walPath string) (bool, error) {
	// By path: opening the -wal to look would drop this process's locks on
	// it when closed (see sqlitefiles.go).
	if st, err := os.Stat(walPath); err != nil || st.Size() <= walSizeLimit {
		return false, nil
	}
	return true, s.Checkpoint(ctx)
}

// Checkpoint copies every frame of the WAL into the database and empties
// the WAL, waiting up to busy_timeout for readers to move on. It does
// nothing on PostgreSQL.
func (s *Store) Checkpoint(ctx context.Context) error {
	if s.Dialect != SQLite {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// Another connection's checkpoint (SQLite runs a PASSIVE one after
	// commits while the WAL is long) makes this one give up at once
	// (busy); try again shortly.
	for attempt := 0; ; attempt++ {
		var busy, logFrames, checkpointed int
		err := s.DB.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &checkpointed)
		if err != nil || busy == 0 || attempt == 20 {
			return storageErr(err)
		}
		select {
		case <-ctx.Done():
			return storageErr(ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// walPathOf is where SQLite keeps the WAL of the database at path: beside
// the real file, symbolic links resolved.
func walPathOf(path string) string {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	return path + "-wal"
}
