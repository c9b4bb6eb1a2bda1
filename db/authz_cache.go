package db

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// The hot path (every panel a dashboard refreshes) needs the same few facts
// on every request: the session and its user, the groups granted the
// dashboard with the viewer's memberships, and the viewer's access requests.
// Reading them costs a handful of queries; keeping them in memory costs one:
//
//   - Triggers (migration 0004) bump the one-row table authz_version on
//     every change to users, groups, memberships, grants, access requests
//     and sessions (other than a new session or a last-seen touch), from
//     any process: this server, the CLI, another instance.
//   - A request reads that version once (Snapshot) before anything else.
//   - Facts loaded under version V are kept tagged with V and answered from
//     memory only to requests whose snapshot is also V. Any change anywhere
//     moves the version on, so the next request reloads from the database:
//     a removed membership or a deactivated user is denied on the very next
//     request, never after a timeout.
//
// Reads made without a snapshot in their context (the CLI, tests, the
// admin pages' own queries) always go to the database.

// authzVersionQuery reads the counter; it is prepared once per connection.
const authzVersionQuery = "SELECT version FROM authz_version WHERE id = 1"

// maxCacheEntries bounds each of the cache's maps; a full map is emptied
// (the next requests reload what they need).
const maxCacheEntries = 50_000

// snapshot is a request's view of the authorization version.
type snapshot struct {
	version int64
	// wrote is set when the request itself writes through the store: its
	// later reads go to the database, so it reads its own writes.
	wrote atomic.Bool
}

type snapshotKey struct{}

func snapshotFrom(ctx context.Context) *snapshot {
	s, _ := ctx.Value(snapshotKey{}).(*snapshot)
	return s
}

// markWrite records that ctx's request wrote: its cached reads stop.
func markWrite(ctx context.Context) {
	if s := snapshotFrom(ctx); s != nil {
		s.wrote.Store(true)
	}
}

// Snapshot reads the authorization version (one row, one prepared
// statement) and returns a context carrying it. Session, user and access
// reads made with that context may be answered from memory while the
// version is unchanged; see authz_cache.go. A context that already carries
// a snapshot is returned as it is.
func (s *Store) Snapshot(ctx context.Context) (context.Context, error) {
	if snapshotFrom(ctx) != nil {
		return ctx, nil
	}
	v, err := s.AuthzVersion(ctx)
	if err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, snapshotKey{}, &snapshot{version: v}), nil
}

// FreshSnapshot is Snapshot for a long-lived request (an event stream)
// that decides again after each change: it reads the version anew even
// when ctx already carries a snapshot, and replaces it.
func (s *Store) FreshSnapshot(ctx context.Context) (context.Context, error) {
	v, err := s.AuthzVersion(ctx)
	if err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, snapshotKey{}, &snapshot{version: v}), nil
}

// AuthzVersion returns the current authorization version: a counter that
// grows with every change to who may see what.
//
// Concurrent callers share reads: a caller waits for the next read that
// starts after it called (never one already running, which might miss a
// change committed just before the call), so each caller still sees every
// change committed before it asked, while a busy server runs one read per
// batch of requests instead of one per request.
//
// On SQLite a read is skipped altogether while the wal-index header shows
// that nothing has committed since the last read began (walwatch.go); on
// PostgreSQL while the server's lease on the version NOTIFY told it of
// holds (authz_lease.go).
func (s *Store) AuthzVersion(ctx context.Context) (int64, error) {
	c := s.authzCache()
	if v, ok := s.lease.Load().current(); ok { // PostgreSQL: authz_lease.go
		c.skipped.Add(1)
		return v, nil
	}
	stamp, watched := s.wal.stamp()
	if watched {
		if known := c.walKnown.Load(); known != nil && known.stamp == stamp {
			c.skipped.Add(1)
			return known.version, nil
		}
	}
	v, err := s.readVersionShared(ctx)
	if err == nil && watched {
		// The read began after stamp was taken, so v is current for as
		// long as the header still equals stamp.
		c.walKnown.Store(&walVersion{stamp: stamp, version: v})
	}
	return v, err
}

// readVersionShared reads the version from the database, sharing the read
// with concurrent callers.
func (s *Store) readVersionShared(ctx context.Context) (int64, error) {
	c := s.authzCache()
	c.versionMu.Lock()
	call := c.nextRead
	leader := call == nil
	if leader {
		call = &versionRead{done: make(chan struct{})}
		c.nextRead = call
	}
	c.versionMu.Unlock()
	if !leader {
		select {
		case <-call.done:
			return call.version, call.err
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	// Wait for the read in flight, then close this batch: whoever asks from
	// now on waits for the next read, which starts after they asked.
	c.readMu.Lock()
	c.versionMu.Lock()
	c.nextRead = nil
	c.versionMu.Unlock()
	c.reads.Add(1)
	call.version, call.err = c.readVersion(context.WithoutCancel(ctx), s.DB.DB)
	c.readMu.Unlock()
	close(call.done)
	return call.version, call.err
}

// versionRead is one read of authz_version shared by a batch of callers.
type versionRead struct {
	done    chan struct{}
	version int64
	err     error
}

func (c *authzCache) readVersion(ctx context.Context, db *sql.DB) (int64, error) {
	stmt, err := c.versionStmt(ctx, db)
	if err != nil {
		return 0, storageErr(err)
	}
	var v int64
	if err := stmt.QueryRowContext(ctx).Scan(&v); err != nil {
		return 0, storageErr(err)
	}
	return v, nil
}

// authzCache holds facts loaded under one authorization version.
type authzCache struct {
	stmtMu sync.Mutex
	stmt   *sql.Stmt

	// versionMu guards nextRead, the batch of AuthzVersion callers waiting
	// for a read that has not started; readMu lets one read run at a time.
	versionMu sync.Mutex
	nextRead  *versionRead
	readMu    sync.Mutex
	// reads counts version reads that went to the database; skipped
	// counts version checks answered from the wal-index header alone.
	reads   atomic.Int64
	skipped atomic.Int64
	// walKnown is the last version read with the wal-index stamp taken
	// before it (SQLite only).
	walKnown atomic.Pointer[walVersion]

	mu      sync.RWMutex
	version int64
	t       *cacheTables

	// flights are the loads running for the cache, by table, key and
	// version (shareLoad).
	flightMu sync.Mutex
	flights  map[any]*flight

	denialsMu sync.Mutex
	denials   map[denialKey]int64
}

// cacheTables are the cached facts, by what they are looked up by.
type cacheTables struct {
	sessions    map[string]sessionEntry // by session id
	granting    map[grantingKey][]GrantingGroup
	memberships map[membershipKey]membershipFact
	requests    map[int64]map[string]AccessRequest // by user id
	managed     map[int64][]GroupOption            // by manager's user id
	deciding    map[string][]string                // by dashboard slug
}

type grantingKey struct {
	userID    int64
	dashboard string
}

type membershipKey struct {
	userID int64
	group  string // lower-cased
}

// membershipFact is MembershipIn's answer, including "not a member".
type membershipFact struct {
	m     Membership
	found bool
}

func newCacheTables() *cacheTables {
	return &cacheTables{
		sessions:    map[string]sessionEntry{},
		granting:    map[grantingKey][]GrantingGroup{},
		memberships: map[membershipKey]membershipFact{},
		requests:    map[int64]map[string]AccessRequest{},
		managed:     map[int64][]GroupOption{},
		deciding:    map[string][]string{},
	}
}

// authzCache returns the store's cache, creating it on first use.
// AuthzStats counts the store's authorization version checks since it
// opened: those answered without a query (the wal-index header showed no
// commit, SQLite only) and those that read the database.
type AuthzStats struct {
	Skipped, Reads int64
}

// AuthzStats reports how the hot path's version checks were answered.
func (s *Store) AuthzStats() AuthzStats {
	c := s.authzCache()
	return AuthzStats{Skipped: c.skipped.Load(), Reads: c.reads.Load()}
}

func (s *Store) authzCache() *authzCache {
	s.cacheOnce.Do(func() {
		s.cache = &authzCache{version: -1, t: newCacheTables(), denials: map[denialKey]int64{}, flights: map[any]*flight{}}
	})
	return s.cache
}

func (c *authzCache) versionStmt(ctx context.Context, db *sql.DB) (*sql.Stmt, error) {
	c.stmtMu.Lock()
	defer c.stmtMu.Unlock()
	if c.stmt == nil {
		stmt, err := db.PrepareContext(ctx, authzVersionQuery)
		if err != nil {
			return nil, err
		}
		c.stmt = stmt
	}
	return c.stmt, nil
}

// cacheGet returns the entry for key in the table table selects, when
// ctx's snapshot is the version the cache holds.
func cacheGet[K comparable, V any](ctx context.Context, s *Store, table func(*cacheTables) map[K]V, key K) (V, bool) {
	var zero V
	snap := snapshotFrom(ctx)
	if snap == nil || snap.wrote.Load() {
		return zero, false
	}
	c := s.authzCache()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.version != snap.version {
		return zero, false
	}
	v, ok := table(c.t)[key]
	return v, ok
}

// cachePut keeps v for key under ctx's snapshot version: v must have been
// read from the database after that snapshot was taken. A snapshot newer
// (or older) than the cache's empties the cache first.
func cachePut[K comparable, V any](ctx context.Context, s *Store, table func(*cacheTables) map[K]V, key K, v V) {
	snap := snapshotFrom(ctx)
	if snap == nil || snap.wrote.Load() {
		return
	}
	c := s.authzCache()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != snap.version {
		c.version, c.t = snap.version, newCacheTables()
	}
	m := table(c.t)
	if len(m) >= maxCacheEntries {
		clear(m)
	}
	m[key] = v
}

// remember answers key from the cache or, failing that, from load, keeping
// what load returns.
func remember[K comparable, V any](ctx context.Context, s *Store, table func(*cacheTables) map[K]V, key K, load func() (V, error)) (V, error) {
	if v, ok := cacheGet(ctx, s, table, key); ok {
		return v, nil
	}
	v, err := shareLoad(ctx, s, key, load)
	if err != nil {
		return v, err
	}
	cachePut(ctx, s, table, key, v)
	return v, nil
}

// flightKey names one load: what is loaded (K and V tell the tables apart),
// for which key, under which authorization version.
type flightKey[K comparable, V any] struct {
	key     K
	version int64
}

// flight is one load shared by the requests that need it.
type flight struct {
	done    chan struct{}
	v       any
	err     error
	waiters atomic.Int32
}

// shareLoad runs load once for the concurrent requests that need the same
// facts under the same snapshot version, and gives each its answer. After
// a change every open dashboard misses the cache at once; without sharing,
// each of them would run the same queries (on PostgreSQL, a burst that
// queued behind the pool and put the p99 at 20 ms while access changed ten
// times a second).
//
// Sharing is as safe as the cache itself: the load ran after a snapshot of
// the same version, and any change committed since would have moved the
// version. A request that wrote (read-your-writes) or has no snapshot loads
// alone. When the shared load fails (its request may have been cancelled),
// each waiter loads for itself.
func shareLoad[K comparable, V any](ctx context.Context, s *Store, key K, load func() (V, error)) (V, error) {
	snap := snapshotFrom(ctx)
	if snap == nil || snap.wrote.Load() {
		return load()
	}
	c := s.authzCache()
	fk := flightKey[K, V]{key, snap.version}
	c.flightMu.Lock()
	if f, ok := c.flights[fk]; ok {
		f.waiters.Add(1)
		c.flightMu.Unlock()
		select {
		case <-f.done:
			if f.err != nil {
				return load()
			}
			return f.v.(V), nil
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	c.flights[fk] = f
	c.flightMu.Unlock()
	v, err := load()
	f.v, f.err = v, err
	c.flightMu.Lock()
	delete(c.flights, fk)
	c.flightMu.Unlock()
	close(f.done)
	return v, err
}

func sessionTable(t *cacheTables) map[string]sessionEntry             { return t.sessions }
func grantingTable(t *cacheTables) map[grantingKey][]GrantingGroup    { return t.granting }
func membershipTable(t *cacheTables) map[membershipKey]membershipFact { return t.memberships }
func requestTable(t *cacheTables) map[int64]map[string]AccessRequest  { return t.requests }
func managedTable(t *cacheTables) map[int64][]GroupOption             { return t.managed }
func decidingTable(t *cacheTables) map[string][]string                { return t.deciding }

// denialKey names a (viewer, target) pair whose denial was audited.
type denialKey struct{ actor, target string }

// deniedSince reports whether a denial of target for actor is known to be
// in the audit log at or after sinceMS. Audit rows are never changed, so a
// row seen once stays seen: this needs no version check.
func (c *authzCache) deniedSince(k denialKey, sinceMS int64) bool {
	c.denialsMu.Lock()
	defer c.denialsMu.Unlock()
	at, ok := c.denials[k]
	return ok && at > sinceMS
}

// sawDenial records that the audit log holds a denial for k at atMS.
func (c *authzCache) sawDenial(k denialKey, atMS int64) {
	c.denialsMu.Lock()
	defer c.denialsMu.Unlock()
	if len(c.denials) >= maxCacheEntries {
		clear(c.denials)
	}
	if atMS > c.denials[k] {
		c.denials[k] = atMS
	}
}
