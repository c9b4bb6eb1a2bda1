package db

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"gatehouse/db/postgrestest"
)

// forEachStore runs fn twice, as the subtests "sqlite" and "postgres", each
// with a fresh, migrated store: the store's suite is one set of tests that
// both dialects must pass. The PostgreSQL half uses a schema of its own on
// the server in GATEHOUSE_TEST_POSTGRES; without it, it skips (and fails
// under CI=true).
func forEachStore(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Helper()
	t.Run(SQLite, func(t *testing.T) { fn(t, newSQLiteStore(t)) })
	t.Run(Postgres, func(t *testing.T) { fn(t, newPostgresStore(t)) })
}

// storeDSNs remembers the DSN each test store was opened with, so that a
// test can open a second Store on the same database (another instance).
var storeDSNs sync.Map // *Store -> string

func newSQLiteStore(t testing.TB) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "gatehouse.db")
	s, err := Open(context.Background(), Config{DataDir: filepath.Dir(path)})
	if err != nil {
		t.Fatal(err)
	}
	return migrated(t, s, path)
}

func newPostgresStore(t testing.TB) *Store {
	t.Helper()
	dsn := postgrestest.Schema(t)
	s, err := Open(context.Background(), Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	return migrated(t, s, dsn)
}

func migrated(t testing.TB, s *Store, dsn string) *Store {
	t.Helper()
	t.Cleanup(func() {
		s.Close()
		storeDSNs.Delete(s)
	})
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	storeDSNs.Store(s, dsn)
	return s
}

// openAgain opens a second Store on s's database, as another Gatehouse
// instance (or a CLI command) would, without migrating.
func openAgain(t testing.TB, s *Store) *Store {
	t.Helper()
	dsn, ok := storeDSNs.Load(s)
	if !ok {
		t.Fatal("openAgain: not a test store")
	}
	s2, err := Open(context.Background(), Config{DSN: dsn.(string)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	return s2
}

// freshStoreLike returns a new, empty store of s's dialect.
func freshStoreLike(t testing.TB, s *Store) *Store {
	t.Helper()
	if s.Dialect == Postgres {
		return newPostgresStore(t)
	}
	return newSQLiteStore(t)
}
