package db

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"
)

// AccessFeed tells long-lived readers (open dashboard pages) that who may
// see what may have changed, whichever process or instance changed it, and
// when a membership's expiry has passed.
//
// One watcher goroutine per store does the watching, however many readers
// wait; a reader costs nothing while nothing changes (it blocks on a
// channel). The watcher notices a change
//
//   - on SQLite, from the wal-index header the hot path already watches
//     (walwatch.go): a commit by any process changes it; only then is the
//     authorization version read (one row) to see whether the commit was
//     one that matters. Without a mapped header it reads the version once a
//     second instead.
//   - on PostgreSQL, from a NOTIFY the authz_version trigger sends on a
//     channel named after the schema (migration 0010), received on one
//     LISTEN connection, with the version read every few seconds as a net
//     for a dropped connection.
//   - at the next membership expiry, with a timer (expiry is not a commit).
type AccessFeed struct {
	store *Store
	log   *slog.Logger

	mu      sync.Mutex
	changed chan struct{} // closed at the next change, then replaced
	version int64         // the authorization version last seen
	changes int64         // changes announced (for tests and benchmarks)
	// announcedAt is the store's time (Unix ms) of the latest announcement:
	// the decisions it woke saw every expiry up to it.
	announcedAt int64

	startOnce sync.Once
	running   atomic.Bool
	stopOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// Tuning of the watcher; variables so tests can shorten them.
var (
	// feedWALInterval is how often the SQLite watcher looks at the
	// wal-index header (a memory read, no query).
	feedWALInterval = 20 * time.Millisecond
	// feedPollInterval is how often the version is read when there is no
	// header to look at (SQLite without a mapping) and, on PostgreSQL, how
	// often it is read as a net for missed notifications.
	feedPollInterval  = time.Second
	feedPGNetInterval = 5 * time.Second
)

// AccessFeed returns the store's feed, starting its watcher on first use.
// The watcher stops when the store is closed.
func (s *Store) AccessFeed() *AccessFeed {
	s.feedOnce.Do(func() {
		s.feed = &AccessFeed{store: s, log: slog.Default(), changed: make(chan struct{}),
			version: -1, announcedAt: s.nowMS(), stop: make(chan struct{}), done: make(chan struct{})}
	})
	f := s.feed
	f.startOnce.Do(func() {
		if v, err := s.AuthzVersion(context.Background()); err == nil {
			f.version = v
		}
		f.running.Store(true)
		go f.run()
	})
	return f
}

// Changed returns a channel that is closed at the next change. Take it
// before reading the state it guards, so a change in between is not missed.
func (f *AccessFeed) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// Changes counts the changes announced so far.
func (f *AccessFeed) Changes() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changes
}

// announce wakes every reader waiting on Changed.
func (f *AccessFeed) announce() {
	now := f.store.nowMS()
	f.mu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.changes++
	f.announcedAt = now
	f.mu.Unlock()
}

// check reads the authorization version and announces a change when it
// moved; it reports whether it did.
func (f *AccessFeed) check(ctx context.Context) bool {
	v, err := f.store.AuthzVersion(ctx)
	if err != nil {
		return false
	}
	f.mu.Lock()
	moved := v != f.version
	f.version = v
	f.mu.Unlock()
	if moved {
		f.announce()
	}
	return moved
}

// close stops the watcher and waits for it.
func (f *AccessFeed) close() {
	if f == nil {
		return
	}
	f.stopOnce.Do(func() { close(f.stop) })
	if f.running.Load() {
		select {
		case <-f.done:
		case <-time.After(5 * time.Second):
		}
	}
}

func (f *AccessFeed) run() {
	defer close(f.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-f.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	expiry := newExpiryTimer()
	defer expiry.stop()
	f.scheduleExpiry(ctx, expiry)

	if f.store.Dialect == Postgres {
		f.runPostgres(ctx, expiry)
		return
	}
	interval := feedWALInterval
	if f.store.wal == nil {
		interval = feedPollInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last walStamp
	for {
		select {
		case <-ctx.Done():
			return
		case <-expiry.c():
			f.announce()
			f.scheduleExpiry(ctx, expiry)
		case <-tick.C:
			if stamp, ok := f.store.wal.stamp(); ok {
				if stamp == last {
					continue
				}
				last = stamp
			}
			if f.check(ctx) {
				f.scheduleExpiry(ctx, expiry)
			}
		}
	}
}

// runPostgres waits for notifications on the schema's channel. A
// notification, a reconnection or the periodic net reads the version.
func (f *AccessFeed) runPostgres(ctx context.Context, expiry *expiryTimer) {
	var channel string
	for channel == "" {
		if err := f.store.DB.NewRaw("SELECT "+AuthzChannelExpr).Scan(ctx, &channel); err != nil {
			f.log.Warn("live access: cannot name the notification channel; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(feedPGNetInterval):
			}
		}
	}
	ln := pgdriver.NewListener(f.store.DB)
	defer ln.Close()
	lease := newAuthzLease()
	f.store.lease.Store(lease)
	leaseDone := make(chan struct{})
	go func() {
		defer close(leaseDone)
		lease.run(ctx, f.store)
	}()
	defer func() { <-leaseDone }()
	notes := make(chan struct{}, 1)
	go func() {
		listening := false
		for ctx.Err() == nil {
			if !listening {
				if err := ln.Listen(ctx, channel); err != nil {
					lease.lost()
					if ctx.Err() == nil {
						f.log.Warn("live access: LISTEN failed; retrying", "channel", channel, "err", err)
					}
					select {
					case <-ctx.Done():
					case <-time.After(time.Second):
					}
					continue
				}
				listening = true
				// Changes may have been missed while not listening; the
				// first beat back looks again, once LISTEN is surely in
				// force.
				select {
				case notes <- struct{}{}:
				default:
				}
			}
			_, payload, err := ln.ReceiveTimeout(ctx, feedPGNetInterval)
			var timeout interface{ Timeout() bool }
			switch {
			case err == nil:
				if id, n, ok := parseBeat(payload); ok {
					if id == lease.id {
						wasSynced := lease.synced
						lease.gotBeat(ctx, f.store, n)
						if !wasSynced && lease.synced {
							// The first own beat back proves LISTEN is in
							// force (pgdriver's Listen returns once the
							// command is sent, not once it is done): a
							// change committed in between notified nobody,
							// so look at the version now.
							select {
							case notes <- struct{}{}:
							default:
							}
						}
					}
					continue // a heartbeat, not a change
				}
				if v, err := strconv.ParseInt(payload, 10, 64); err == nil {
					if d := leaseTestDelay.Load(); d > 0 {
						time.Sleep(time.Duration(d)) // a slow listener, for tests
					}
					lease.heard(v)
				}
			case errors.As(err, &timeout) && timeout.Timeout():
			default:
				// Notifications may have been lost with the connection:
				// stop trusting what was heard until a beat comes back on
				// the new one. The listener reconnects and listens again on
				// its own; treat it as a fresh start.
				lease.lost()
				if ctx.Err() == nil {
					select {
					case <-ctx.Done():
					case <-time.After(200 * time.Millisecond):
					}
				}
			}
			select {
			case notes <- struct{}{}:
			default:
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-expiry.c():
			f.announce()
			f.scheduleExpiry(ctx, expiry)
		case <-notes:
			if f.check(ctx) {
				f.scheduleExpiry(ctx, expiry)
			}
		}
	}
}

// AuthzChannelExpr is the SQL expression naming the PostgreSQL channel on
// which the authz_version trigger notifies, for the schema the store's
// tables live in (a channel name is at most 63 bytes).
const AuthzChannelExpr = "'gatehouse_authz_' || left(current_schema(), 47)"

// scheduleExpiry sets the timer to the next membership expiry still ahead.
// An expiry that passed after the latest announcement, while the change
// that led here was being read (a busy machine, a slow database), woke no
// decision: it is announced now rather than lost.
func (f *AccessFeed) scheduleExpiry(ctx context.Context, t *expiryTimer) {
	for {
		now := f.store.nowMS()
		f.mu.Lock()
		since := min(f.announcedAt, now)
		f.mu.Unlock()
		next, err := f.store.nextMembershipExpiryAfter(ctx, since)
		if err != nil {
			t.set(time.Minute) // look again later
			return
		}
		if next == 0 {
			t.set(0)
			return
		}
		// Wake just after the instant Decide compares with (expires <= now).
		if wait := next - now + 1; wait > 0 {
			t.set(time.Duration(wait) * time.Millisecond)
			return
		}
		f.announce()
	}
}

// NextMembershipExpiry returns the earliest membership expiry (Unix ms)
// still in the future, or 0 when none is.
func (s *Store) NextMembershipExpiry(ctx context.Context) (int64, error) {
	return s.nextMembershipExpiryAfter(ctx, s.nowMS())
}

// nextMembershipExpiryAfter returns the earliest membership expiry (Unix
// ms) after the instant after, or 0 when none is.
func (s *Store) nextMembershipExpiryAfter(ctx context.Context, after int64) (int64, error) {
	var next *int64
	err := s.DB.NewSelect().Model((*Membership)(nil)).ColumnExpr("MIN(expires_at)").
		Where("expires_at > ?", after).Scan(ctx, &next)
	if err != nil {
		return 0, storageErr(err)
	}
	if next == nil {
		return 0, nil
	}
	return *next, nil
}

// expiryTimer is a timer that may be unset.
type expiryTimer struct {
	t  *time.Timer
	on bool
}

func newExpiryTimer() *expiryTimer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &expiryTimer{t: t}
}

// set fires the timer after d; d <= 0 unsets it.
func (e *expiryTimer) set(d time.Duration) {
	e.t.Stop()
	e.on = d > 0
	if e.on {
		e.t.Reset(d)
	}
}

// c is the timer's channel, or nil (never ready) when unset.
func (e *expiryTimer) c() <-chan time.Time {
	if !e.on {
		return nil
	}
	return e.t.C
}

func (e *expiryTimer) stop() { e.t.Stop() }
