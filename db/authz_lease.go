package db

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"
)

// On PostgreSQL every request used to read authz_version (shared by the
// requests waiting at that moment, authz_cache.go): a query per batch of
// requests on every instance, the largest part of what a polled panel cost
// there. A server that listens for the trigger's NOTIFY (0010) already
// hears of every change; what it cannot tell from NOTIFY alone is whether a
// change has been committed that it has not heard of yet. A lease closes
// that gap, so that the very next request after a change, on any instance,
// is still decided on the new state:
//
//   - The listening server sends itself a heartbeat every beatInterval: one
//     statement that renews its row in authz_listeners (0011) and NOTIFYs
//     "beat <id> <n>" on the same channel. PostgreSQL delivers a session's
//     notifications in commit order, so when the server receives its own
//     beat n it has received every change committed before beat n was
//     sent. It then trusts the version it knows until leaseFor after it
//     sent beat n, and answers version checks from memory until then.
//   - When it hears a new version it updates what it knows at once and
//     writes the version into its row (seen): the acknowledgement.
//   - A writer (this server, another instance, the CLI) waits after each
//     commit until every row whose lease_until has not passed has seen the
//     version, which takes a millisecond or two. A server that has not
//     acknowledged within leaseFor (and a margin) cannot be trusting any
//     more: its newest beat was sent before the commit, so its lease ran
//     out, and it reads the table again. So a change is never missed, and
//     one dead or cut-off server costs writers at most leaseFor once.
//   - A broken LISTEN connection ends the trust at once; after
//     reconnecting, the server reads the version once it hears its own beat
//     (which proves LISTEN is in force again) and only then trusts again.
//
// Without LISTEN (a connection pooler in transaction mode, say) no beat
// comes back and every request reads the version, as before.
const (
	// leaseFor is long enough that a beat delayed by a machine whose cores
	// are all busy (up to about a second was seen with two instances,
	// their load generators and PostgreSQL on two cores) does not let the
	// lease lapse, and short enough that a write kept waiting by a server
	// that does not answer is not held up for long.
	leaseFor     = 2 * time.Second
	beatInterval = 250 * time.Millisecond
	// leaseRowSlack is added to lease_until in the database: the writer
	// compares it with the database's clock, the server its trust with its
	// own monotonic clock, and the two run at rates that differ slightly.
	leaseRowSlack = "1.5 seconds"
	// settleMargin is added to leaseFor when a writer gives up waiting for
	// an acknowledgement.
	settleMargin = 100 * time.Millisecond
	// settlePoll is how often a waiting writer looks at the rows again.
	settlePoll = time.Millisecond
)

// beatsKept is how many of the latest beats' send times are kept: a beat
// that comes back later than that (16 s at beatInterval) grants nothing.
const beatsKept = 64

// leaseTestDelay holds up each change notification this long before the listener
// acts on it: tests use it to play a slow or cut-off server. Always 0 in
// production.
var leaseTestDelay atomic.Int64

// authzLease is a server's trust in the version it heard of (see above).
type authzLease struct {
	id    string
	start time.Time // the monotonic base of trustUntil and sent

	known      atomic.Int64 // the newest version heard of or read
	trustUntil atomic.Int64 // nanoseconds after start; 0 when not trusted

	mu   sync.Mutex
	seq  int64            // the last beat sent
	sent [beatsKept]int64 // nanoseconds after start when beat n was sent, at n % beatsKept

	synced bool // only the receiving goroutine uses it
	acks   chan struct{}

	// clock, when set (tests), replaces the monotonic time since start.
	clock func() time.Duration
}

func newAuthzLease() *authzLease {
	var b [8]byte
	_, _ = rand.Read(b[:])
	l := &authzLease{id: hex.EncodeToString(b[:]), start: time.Now(), acks: make(chan struct{}, 1)}
	l.known.Store(-1)
	return l
}

func (l *authzLease) now() int64 {
	if l.clock != nil {
		return int64(l.clock())
	}
	return int64(time.Since(l.start))
}

// current returns the version and true while the lease holds.
func (l *authzLease) current() (int64, bool) {
	if l == nil {
		return 0, false
	}
	if until := l.trustUntil.Load(); until == 0 || l.now() >= until {
		return 0, false
	}
	return l.known.Load(), true
}

// heard records version v (from a notification or a read) and asks for an
// acknowledgement.
func (l *authzLease) heard(v int64) {
	for {
		old := l.known.Load()
		if v <= old || l.known.CompareAndSwap(old, v) {
			break
		}
	}
	select {
	case l.acks <- struct{}{}:
	default:
	}
}

// lost ends the trust at once (the LISTEN connection broke).
func (l *authzLease) lost() {
	l.trustUntil.Store(0)
	l.synced = false
}

// beatPayload is the NOTIFY payload of beat n; parseBeat reads one back.
func (l *authzLease) beatPayload(n int64) string {
	return "beat " + l.id + " " + strconv.FormatInt(n, 10)
}

func parseBeat(payload string) (id string, n int64, ok bool) {
	rest, ok := strings.CutPrefix(payload, "beat ")
	if !ok {
		return "", 0, false
	}
	id, num, ok := strings.Cut(rest, " ")
	if !ok {
		return "", 0, false
	}
	n, err := strconv.ParseInt(num, 10, 64)
	return id, n, err == nil
}

// gotBeat extends the trust to leaseFor after beat n was sent. The first
// beat after (re)connecting first reads the version: it proves LISTEN is in
// force, so the read and the notifications from then on miss nothing.
func (l *authzLease) gotBeat(ctx context.Context, s *Store, n int64) {
	l.mu.Lock()
	known := n <= l.seq && n > l.seq-beatsKept // older ones no longer count
	sentAt := l.sent[n%beatsKept]
	l.mu.Unlock()
	if !known {
		return
	}
	if !l.synced {
		v, err := s.authzCache().readVersion(ctx, s.DB.DB)
		if err != nil {
			return
		}
		l.heard(v)
		l.synced = true
	}
	if until := sentAt + int64(leaseFor); until > l.trustUntil.Load() {
		l.trustUntil.Store(until)
	}
}

type settleKey struct{}

// withoutSettle marks ctx so that its writes do not wait for
// acknowledgements (the lease's own rows, writes inside a transaction).
func withoutSettle(ctx context.Context) context.Context {
	return context.WithValue(ctx, settleKey{}, true)
}

// beat renews the row and sends the next beat.
func (l *authzLease) beat(ctx context.Context, s *Store) error {
	l.mu.Lock()
	l.seq++
	n := l.seq
	l.sent[n%beatsKept] = l.now()
	l.mu.Unlock()
	_, err := s.DB.ExecContext(withoutSettle(ctx), `WITH `+noFlush+`, up AS (
		INSERT INTO authz_listeners (id, seen, lease_until) VALUES (?, ?, now() + interval '`+leaseRowSlack+`' + ?::interval)
		ON CONFLICT (id) DO UPDATE SET seen = GREATEST(authz_listeners.seen, EXCLUDED.seen), lease_until = EXCLUDED.lease_until
		RETURNING 1)
		SELECT pg_notify(`+AuthzChannelExpr+`, ?) FROM up, no_flush`,
		l.id, l.known.Load(), leaseFor.String(), l.beatPayload(n))
	return err
}

// noFlush is a common table expression that makes the statement's commit
// return without waiting for its WAL to reach the disk (synchronous_commit
// off, for this transaction only). Beats and acknowledgements are written
// four times a second per server; waiting for an fsync, which takes up to
// a second on a busy disk, made leases lapse. Their rows matter only while
// PostgreSQL runs: a crash ends every LISTEN connection, and with it every
// lease, before a lost row could mislead a writer.
const noFlush = "no_flush AS (SELECT set_config('synchronous_commit', 'off', true))"

// ack writes the newest version heard into the row.
func (l *authzLease) ack(ctx context.Context, s *Store, v int64) error {
	_, err := s.DB.ExecContext(withoutSettle(ctx), "WITH "+noFlush+
		" UPDATE authz_listeners SET seen = ? FROM no_flush WHERE id = ? AND seen < ?", v, l.id, v)
	return err
}

// run beats and acknowledges until ctx ends, then removes the row so that
// writers stop waiting for this server.
func (l *authzLease) run(ctx context.Context, s *Store) {
	cleanup, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, _ = s.DB.ExecContext(withoutSettle(cleanup),
		"DELETE FROM authz_listeners WHERE lease_until < now() - interval '1 minute'")
	cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // acknowledgements
		defer wg.Done()
		acked := int64(-1)
		for {
			select {
			case <-ctx.Done():
				return
			case <-l.acks:
			}
			if v := l.known.Load(); v > acked {
				if l.ack(ctx, s, v) == nil {
					acked = v
				}
			}
		}
	}()
	tick := time.NewTicker(beatInterval)
	defer tick.Stop()
	for {
		_ = l.beat(ctx, s)
		select {
		case <-ctx.Done():
			wg.Wait()
			l.trustUntil.Store(0)
			bye, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_, _ = s.DB.ExecContext(withoutSettle(bye), "DELETE FROM authz_listeners WHERE id = ?", l.id)
			cancel()
			return
		case <-tick.C:
		}
	}
}

// settleHook makes every write on PostgreSQL wait, after it commits, until
// the servers trusting a version they were told of have heard of it (see
// the top of this file). It runs after a COMMIT and after a write made
// outside a transaction; writes inside Store.tx wait at its COMMIT.
type settleHook struct{ s *Store }

func (settleHook) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (h settleHook) AfterQuery(ctx context.Context, e *bun.QueryEvent) {
	if e.Err != nil || ctx.Value(settleKey{}) != nil {
		return
	}
	if writes(e.Query) {
		h.s.settle(ctx)
	}
}

// writes reports whether query is a COMMIT or a statement that may write.
// It looks at the SQL itself: bun names every raw query's operation SELECT.
func writes(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n(")
	word, _, _ := strings.Cut(q, " ")
	switch strings.ToUpper(word) {
	case "COMMIT", "END", "INSERT", "UPDATE", "DELETE", "MERGE":
		return true
	case "WITH": // a data-modifying common table expression
		u := strings.ToUpper(q)
		return strings.Contains(u, "INSERT ") || strings.Contains(u, "UPDATE ") || strings.Contains(u, "DELETE ")
	}
	return false
}

// settleQuery reads the version and how many trusting servers have not
// acknowledged it.
const settleQuery = `SELECT a.version, (SELECT count(*) FROM authz_listeners l
	WHERE l.seen < a.version AND l.lease_until > now()) FROM authz_version a WHERE a.id = 1`

// settle waits until every server with a running lease has acknowledged
// the current version, or until leaseFor (and a margin) has passed, after
// which none that has not can still be trusting. Usually it is one query.
func (s *Store) settle(ctx context.Context) {
	deadline := time.Now().Add(leaseFor + settleMargin)
	// Not cancelled with the request: the change has committed, and those
	// who act on the writer's answer must find every server told of it.
	ctx = withoutSettle(context.WithoutCancel(ctx))
	s.settles.Add(1)
	var v, waiting int64
	err := s.DB.QueryRowContext(ctx, settleQuery).Scan(&v, &waiting)
	if err == nil && waiting == 0 {
		return
	}
	if err != nil && pgUndefinedTable(err) {
		return // a schema from before 0011: nobody can be trusting
	}
	s.settleWaits.Add(1)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			s.settleTimeouts.Add(1)
			return
		}
		time.Sleep(min(settlePoll, left))
		if err != nil { // the version is unknown: wait for the leases
			continue
		}
		if qerr := s.DB.QueryRowContext(ctx, `SELECT count(*) FROM authz_listeners
			WHERE seen < ? AND lease_until > now()`, v).Scan(&waiting); qerr == nil && waiting == 0 {
			return
		}
	}
}

// pgUndefinedTable reports PostgreSQL's undefined_table error.
func pgUndefinedTable(err error) bool {
	var pe pgdriver.Error
	return errors.As(err, &pe) && pe.Field('C') == "42P01"
}

// LeaseStats counts the writers' waits for acknowledgements (settle) and
// the version checks answered under the lease.
type LeaseStats struct {
	Settles, Waits, Timeouts int64
	Trusted                  bool
}

// LeaseStats reports how writes settled and whether this store trusts the
// version it was told of right now.
func (s *Store) LeaseStats() LeaseStats {
	_, trusted := s.lease.Load().current()
	return LeaseStats{Settles: s.settles.Load(), Waits: s.settleWaits.Load(),
		Timeouts: s.settleTimeouts.Load(), Trusted: trusted}
}
