// Package conns bounds the long-lived connections a server holds open for
// its viewers: dashboard event streams now, proxied WebSockets next. Each
// one is a file descriptor, two goroutines and their buffers for as long as
// it lasts, so without a bound one session can hold the server's whole file
// limit and leave nothing for ordinary requests and health checks.
//
// A Budget guarantees, at every moment:
//
//   - per session and key (one page: a dashboard's stream, an app's
//     socket) at most Limits.PerKey connections: a new one closes the
//     oldest (a browser's stale tab), so a session never exceeds it and a
//     user opening one more tab is never refused;
//   - per session, over all its keys, at most Limits.PerSession: again the
//     session's oldest closes;
//   - per user, over all their sessions, at most Limits.PerUser: past it a
//     new connection is refused (ErrUserFull, answered 429), so one session
//     cannot close another's;
//   - server-wide at most Limits.Total held, counting a connection until
//     it is released, even one that was told to close: past it new ones
//     are refused (ErrFull, answered 503). Total is meant to stay well
//     below the process's open-file limit (see DefaultTotal).
//
// The interface is narrow so that any handler holding a connection open can
// use it: Acquire with a Claim, watch Conn.Closed, Release when done.
package conns

import (
	"errors"
	"sync"
)

// Limits are a Budget's bounds; a value of zero or less means one.
type Limits struct {
	PerKey     int // per session and key; the oldest closes
	PerSession int // per session; the oldest closes
	PerUser    int // per user; refused past it
	Total      int // server-wide; refused past it
}

// Claim names who holds a connection and what it is for.
type Claim struct {
	Session string // the session's id, or a hash of it
	User    int64
	Key     string // e.g. "dashboard:sales"
}

var (
	// ErrUserFull refuses a connection: the user holds Limits.PerUser.
	ErrUserFull = errors.New("conns: too many open connections for this user")
	// ErrFull refuses a connection: the server holds Limits.Total.
	ErrFull = errors.New("conns: too many open connections on this server")
)

// Budget hands out connections within its Limits. Its methods are safe for
// concurrent use.
type Budget struct {
	limits Limits

	mu       sync.Mutex
	total    int                // held, including those told to close
	users    map[int64]int      // counted, per user
	sessions map[string][]*Conn // counted, per session, oldest first
}

// New returns a Budget with the given limits.
func New(l Limits) *Budget {
	l.PerKey, l.PerSession, l.PerUser, l.Total = max(l.PerKey, 1), max(l.PerSession, 1), max(l.PerUser, 1), max(l.Total, 1)
	return &Budget{limits: l, users: map[int64]int{}, sessions: map[string][]*Conn{}}
}

// Limits returns the budget's bounds.
func (b *Budget) Limits() Limits { return b.limits }

// Conn is one held connection.
type Conn struct {
	b       *Budget
	claim   Claim
	closed  chan struct{}
	counted bool // in users and sessions (false once told to close)
	held    bool // in total (false once released)
}

// Acquire takes a connection for c, closing the oldest of c's session (see
// the package comment) when c would exceed PerKey or PerSession, or
// refuses with ErrUserFull or ErrFull. The caller must Release the Conn.
func (b *Budget) Acquire(c Claim) (*Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.total >= b.limits.Total {
		return nil, ErrFull
	}
	own := b.sessions[c.Session]
	var victim *Conn
	sameKey := 0
	for _, o := range own {
		if o.claim.Key == c.Key {
			if sameKey == 0 {
				victim = o // the oldest with this key
			}
			sameKey++
		}
	}
	switch {
	case sameKey >= b.limits.PerKey:
	case len(own) >= b.limits.PerSession:
		victim = own[0]
	default:
		victim = nil
		if b.users[c.User] >= b.limits.PerUser {
			return nil, ErrUserFull
		}
	}
	if victim != nil {
		b.uncount(victim)
		close(victim.closed)
	}
	conn := &Conn{b: b, claim: c, closed: make(chan struct{}), counted: true, held: true}
	b.sessions[c.Session] = append(b.sessions[c.Session], conn)
	b.users[c.User]++
	b.total++
	return conn, nil
}

// uncount removes c from the per-user and per-session counts.
func (b *Budget) uncount(c *Conn) {
	if !c.counted {
		return
	}
	c.counted = false
	own := b.sessions[c.claim.Session]
	for i, o := range own {
		if o == c {
			own = append(own[:i:i], own[i+1:]...)
			break
		}
	}
	if len(own) == 0 {
		delete(b.sessions, c.claim.Session)
	} else {
		b.sessions[c.claim.Session] = own
	}
	if b.users[c.claim.User]--; b.users[c.claim.User] <= 0 {
		delete(b.users, c.claim.User)
	}
}

// Closed is closed when a newer connection of the same session took this
// one's place: the holder should end the connection (telling the client
// not to come back, where the protocol can) and Release it.
func (c *Conn) Closed() <-chan struct{} { return c.closed }

// Release gives the connection back. It may be called more than once.
func (c *Conn) Release() {
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if !c.held {
		return
	}
	c.held = false
	b.uncount(c)
	b.total--
}

// Open returns how many connections are held server-wide.
func (b *Budget) Open() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// DefaultTotal is the server-wide budget for a process allowed fileLimit
// open files: half of them, leaving the other half for ordinary requests,
// health checks, the database and logs, and at most MaxDefaultTotal (about
// 400 MB at the 30-40 KB an idle stream takes). A zero fileLimit (not
// known) gives 512, half the most common default.
func DefaultTotal(fileLimit uint64) int {
	if fileLimit == 0 {
		return 512
	}
	return int(min(max(fileLimit/2, 1), MaxDefaultTotal))
}

// MaxDefaultTotal caps DefaultTotal; a larger budget is set explicitly.
const MaxDefaultTotal = 10_000
