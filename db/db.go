// Package db owns Gatehouse's storage: the bun models, the embedded
// migrations, the queries (Store) and password hashing. Handlers never build
// SQL; they call Store methods and check sentinel errors with errors.Is.
package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

//go:embed migrations
var migrationFiles embed.FS

// Sentinel errors returned by Store methods.
var (
	ErrNotFound           = errors.New("not found")
	ErrDuplicate          = errors.New("already exists")
	ErrInvalidCredentials = errors.New("invalid email or password")
	ErrLastAdmin          = errors.New("this is the last active admin")
	ErrNewerSchema        = errors.New("database schema is newer than this binary")
	ErrMissingMigration   = errors.New("database schema has a gap")
	// ErrUnavailable wraps storage faults a user can act on: a read-only or
	// full disk, a locked or unreachable database.
	ErrUnavailable = errors.New("the database is unavailable")
)

// Dialect names.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Config says where the database lives.
type Config struct {
	// DSN selects the database; "postgres://…" or "postgresql://…" selects
	// PostgreSQL, anything else is a SQLite file path. Empty means
	// DataDir/gatehouse.db.
	DSN string
	// DataDir holds gatehouse.db (0700 directory, 0600 file).
	DataDir string
	// Wait is how long Open keeps retrying while PostgreSQL cannot be
	// reached or is starting up (0: one attempt). SQLite ignores it.
	Wait time.Duration
	// Log, when not nil, is told about each attempt while waiting.
	Log *slog.Logger
}

// Store is Gatehouse's data access layer. It is safe for concurrent use.
type Store struct {
	DB      *bun.DB
	Dialect string
	// Now is the store's clock; tests replace it.
	Now func() time.Time
	// Path is the SQLite file path (empty for PostgreSQL).
	Path string
	// MailEnabled makes changes that someone should hear about (a new
	// access request, a decision) queue their mail in the same transaction.
	MailEnabled bool

	// cache keeps the hot path's facts per authorization version
	// (authz_cache.go); created on first use.
	cacheOnce sync.Once
	cache     *authzCache
	// wal, on SQLite, tells without a query that nothing has committed
	// since the version was last read (walwatch.go); nil elsewhere.
	wal *walWatch
	// file, on SQLite, is this process's entry for the database file
	// (sqlitefiles.go); closed tells Close it has released it.
	file   *sqliteFile
	closed atomic.Bool
	// feed tells open dashboard pages about changes (access_feed.go).
	feedOnce sync.Once
	feed     *AccessFeed
	// stopCheckpoints ends the checkpointer (checkpoint.go), which closes
	// checkpointsDone; both nil on PostgreSQL.
	stopCheckpoints chan struct{}
	checkpointsDone chan struct{}

	// throttle aggregates throttled-login audit rows (throttle_audit.go).
	throttleOnce sync.Once
	throttle     *throttleLog

	// lease, on a PostgreSQL server that listens for changes, answers
	// version checks from what NOTIFY told it (authz_lease.go); nil until
	// the access feed starts it. The counters are for LeaseStats.
	lease                                atomic.Pointer[authzLease]
	settles, settleWaits, settleTimeouts atomic.Int64
}

// Open connects to the configured database. It does not migrate; call Migrate.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if IsPostgresDSN(cfg.DSN) {
		return openPostgres(ctx, cfg)
	}
	return openSQLite(ctx, cfg)
}

// IsPostgresDSN reports whether dsn selects PostgreSQL.
func IsPostgresDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

func openSQLite(ctx context.Context, cfg Config) (*Store, error) {
	path := cfg.DSN
	if path == "" {
		dir := cfg.DataDir
		if dir == "" {
			dir = "data"
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("cannot create data directory %s: %w", dir, errors.Unwrap(err))
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("cannot set permissions on data directory %s: %w", dir, errors.Unwrap(err))
		}
		path = filepath.Join(dir, "gatehouse.db")
	}
	path = strings.TrimPrefix(path, "file:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	file, err := acquireFile(path, func() error { return prepareFile(path) })
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		file.release()
		return nil, fmt.Errorf("cannot set permissions on %s: %w", path, errors.Unwrap(err))
	}
	// Pragmas live in the DSN so that every pooled connection has them;
	// _txlock=immediate makes every transaction take the write lock up front,
	// so writers queue on busy_timeout instead of failing with SQLITE_BUSY.
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate" +
		"&_pragma=journal_size_limit(" + strconv.Itoa(walSizeLimit) + ")" // see checkpoint.go
	sqldb, err := sql.Open("sqlite", dsn)
	if err != nil {
		file.release()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	sqldb.SetMaxOpenConns(8)
	sqldb.SetMaxIdleConns(8)
	sqldb.SetConnMaxIdleTime(0)
	s := &Store{DB: bun.NewDB(sqldb, sqlitedialect.New()), Dialect: SQLite, Now: time.Now, Path: path, file: file}
	if err := s.Ping(ctx); err != nil {
		sqldb.Close()
		file.release()
		return nil, fmt.Errorf("cannot use database %s: %w", path, err)
	}
	s.wal = openWALWatch(ctx, dsn, path, file)
	s.stopCheckpoints, s.checkpointsDone = make(chan struct{}), make(chan struct{})
	go s.checkpointer(walPathOf(path), walCheckEvery, s.stopCheckpoints, s.checkpointsDone)
	return s, nil
}

// prepareFile creates the database file (owner-only) if it does not exist,
// and checks that it can be opened for reading and writing, so that a bad
// path or permission gets a plain message. It opens and closes the file: call
// it only when no connection of this process has it (see sqlitefiles.go).
func prepareFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("cannot open database file %s: %w", path, pe.Err)
		}
		return fmt.Errorf("cannot open database file %s: %w", path, err)
	}
	return f.Close()
}

// Close closes the database. On SQLite the store's files are released only
// after every one of its connections has closed (see sqlitefiles.go).
func (s *Store) Close() error {
	s.feed.close()
	first := s.closed.CompareAndSwap(false, true)
	if first && s.stopCheckpoints != nil {
		close(s.stopCheckpoints)
		<-s.checkpointsDone
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = s.FlushThrottled(ctx)
	cancel()
	s.wal.close()
	err := s.DB.Close()
	if first {
		s.file.release()
	}
	return err
}

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.DB.NewRaw("SELECT 1").Scan(ctx, &one); err != nil {
		return storageErr(err)
	}
	return nil
}

func (s *Store) nowMS() int64 { return s.Now().UnixMilli() }

// tx runs fn in a write transaction (BEGIN IMMEDIATE on SQLite).
func (s *Store) tx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	markWrite(ctx)
	err := s.DB.RunInTx(withoutSettle(ctx), nil, fn)
	if err == nil && s.Dialect == Postgres {
		s.settle(ctx) // once, after the commit (authz_lease.go)
	}
	return storageErr(err)
}

// storageErr maps driver errors an operator can act on to ErrUnavailable
// with a plain explanation, and unique violations to ErrDuplicate.
func storageErr(err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrDuplicate) ||
		errors.Is(err, ErrLastAdmin) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrChallengesFull) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if pgUniqueViolation(err) {
		return ErrDuplicate
	}
	if reason, ok := pgUnavailable(err); ok {
		return fmt.Errorf("%w: %s", ErrUnavailable, reason)
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "UNIQUE constraint failed"):
		return ErrDuplicate
	case strings.Contains(msg, "readonly database"), strings.Contains(msg, "SQLITE_READONLY"):
		return fmt.Errorf("%w: the database file is read-only", ErrUnavailable)
	case strings.Contains(msg, "database or disk is full"), strings.Contains(msg, "SQLITE_FULL"),
		strings.Contains(msg, "could not extend file"), strings.Contains(msg, "No space left"):
		return fmt.Errorf("%w: the disk is full", ErrUnavailable)
	case strings.Contains(msg, "database is locked"), strings.Contains(msg, "SQLITE_BUSY"):
		return fmt.Errorf("%w: the database is locked by another process", ErrUnavailable)
	case strings.Contains(msg, "disk I/O error"), strings.Contains(msg, "unable to open database"):
		return fmt.Errorf("%w: disk I/O error", ErrUnavailable)
	}
	return err
}

type migration struct {
	version int
	name    string
	sql     string
}

func (s *Store) migrations() ([]migration, error) {
	dir := "migrations/" + s.Dialect
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		v, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number", name)
		}
		body, err := fs.ReadFile(migrationFiles, dir+"/"+name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// SchemaVersion returns the newest migration this binary knows.
func (s *Store) SchemaVersion() int {
	ms, _ := s.migrations()
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// Migrate applies the embedded migrations that the database has not seen,
// each in its own transaction. It is forward-only and refuses a database
// written by a newer Gatehouse. On PostgreSQL an advisory lock makes
// concurrent starts of several instances safe.
func (s *Store) Migrate(ctx context.Context) (applied []string, err error) {
	ctx = withoutSettle(ctx) // DDL in a transaction: nothing to wait for, and nothing may wait on it
	ms, err := s.migrations()
	if err != nil {
		return nil, err
	}
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return nil, storageErr(err)
	}
	defer conn.Close()
	if s.Dialect == Postgres {
		unlock, err := lockMigrations(ctx, conn)
		if err != nil {
			return nil, storageErr(err)
		}
		defer unlock()
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return nil, storageErr(err)
	}
	var current int
	if err := conn.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return nil, storageErr(err)
	}
	if latest := s.SchemaVersion(); current > latest {
		return nil, fmt.Errorf("%w: the database is at version %d but this gatehouse knows only up to %d; run a newer gatehouse", ErrNewerSchema, current, latest)
	}
	if gap, err := missingMigration(ctx, conn, ms, current); err != nil {
		return nil, storageErr(err)
	} else if gap != "" {
		return nil, fmt.Errorf("%w: %s was never applied to this database, but later migrations were; it was migrated by a different build of gatehouse", ErrMissingMigration, gap)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		skipped := false
		err := conn.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			// Another process may have applied it since we looked: on SQLite
			// this transaction holds the write lock, so check again here.
			var done int
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", m.version).Scan(&done); err != nil {
				return err
			}
			if skipped = done > 0; skipped {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				m.version, m.name, s.nowMS())
			return err
		})
		if err != nil {
			return applied, storageErr(err)
		}
		if !skipped {
			applied = append(applied, m.name)
		}
	}
	return applied, nil
}

// missingMigration returns the name of the first embedded migration at or
// below current that schema_migrations does not list ("" when none is
// missing). Applying it now, after later ones, could leave a schema no build
// has seen, so Migrate refuses instead.
func missingMigration(ctx context.Context, conn bun.Conn, ms []migration, current int) (string, error) {
	rows, err := conn.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return "", err
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	for _, m := range ms {
		if m.version <= current && !applied[m.version] {
			return m.name, nil
		}
	}
	return "", nil
}

// Backup writes a consistent copy of a live SQLite database to path (which
// must not exist) with VACUUM INTO; concurrent writers keep working. The
// file is created owner-only before anything is written to it, and removed
// again if the copy fails.
func (s *Store) Backup(ctx context.Context, path string) error {
	if s.Dialect != SQLite {
		return errors.New("backup copies SQLite databases; for PostgreSQL use pg_dump")
	}
	// A new, empty file: no connection of this process can have it open,
	// so closing this descriptor drops no lock (see sqlitefiles.go).
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists; choose a new file name", path)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("cannot create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return err
	}
	if p, _ := ctx.Value(progressKey{}).(Progress); p != nil {
		// VACUUM INTO says nothing until it is done: watch the copy grow
		// towards the database's used pages.
		var pages, free, size int64
		_ = s.DB.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages)
		_ = s.DB.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&free)
		_ = s.DB.QueryRowContext(ctx, "PRAGMA page_size").Scan(&size)
		total := (pages - free) * size
		p(0, total, "bytes")
		defer func() { // runs last: the final size, once the watch has stopped
			if st, err := os.Stat(path); err == nil {
				p(st.Size(), max(total, st.Size()), "bytes")
			}
		}()
		stop := make(chan struct{})
		watched := make(chan struct{})
		go func() { defer close(watched); watchFileGrowth(path, total, p, 200*time.Millisecond, stop) }()
		defer func() {
			close(stop)
			<-watched
		}()
	}
	if _, err := s.DB.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		_ = os.Remove(path)
		return storageErr(err)
	}
	return nil
}
