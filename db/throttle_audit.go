package db

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// A throttled login is answered with a cheap 429, so an attacker can send
// thousands a second; one audit row each made the log (and the disk) grow
// without bound (issue 12). AuditThrottled records them at bounded cost:
//
//   - the first throttled attempt for a (target, IP) in a window inserts one
//     row at once, detail {"attempts": 1, "window": "5m0s"};
//   - later attempts in the window are counted in memory, and the count is
//     written into that row in place at most once per throttleFlushEvery
//     (and when the window ends, on the next sweep, and at Close);
//   - so a flood adds one row per (target, IP) per window per process, and
//     at most one small write per second per key, whatever its rate.
//
// The count is "at least": up to a second of attempts may be unwritten when
// a process dies. A process tracks at most maxThrottleKeys keys; beyond
// that, attempts from further addresses are counted against the target
// with an empty IP ("many addresses"), so a flood from a botnet is bounded
// too.

const (
	throttleFlushEvery = time.Second
	maxThrottleKeys    = 10_000
)

type throttleKey struct{ target, ip string }

// throttleRow is the row recording one key's throttled attempts in one window.
type throttleRow struct {
	id       int64 // 0 while the row is being inserted
	end      int64 // the window's end (ms)
	count    int64 // attempts so far
	written  int64 // attempts the row says
	lastSave int64 // when the count was last written (ms)
	saving   bool  // a write of the count is under way
	window   string
}

// throttleLog holds the throttled-login rows of the current windows.
type throttleLog struct {
	mu        sync.Mutex
	rows      map[throttleKey]*throttleRow
	lastSweep int64
}

// throttleSave is a count to write into a row.
type throttleSave struct {
	row    *throttleRow
	id     int64
	count  int64
	window string
}

// throttleDetail is a throttled-login row's detail.
func throttleDetail(attempts int64, window string) string {
	b, _ := json.Marshal(map[string]any{"attempts": attempts, "window": window})
	return string(b)
}

func (s *Store) throttles() *throttleLog {
	s.throttleOnce.Do(func() { s.throttle = &throttleLog{rows: map[throttleKey]*throttleRow{}} })
	return s.throttle
}

// AuditThrottled records a throttled login attempt on target by a, at
// bounded cost: one audit row (action login.throttled) per target and IP
// per window, whose detail counts the attempts it stands for. See above.
func (s *Store) AuditThrottled(ctx context.Context, a Actor, target string, window time.Duration) error {
	now := s.nowMS()
	tl := s.throttles()
	tl.mu.Lock()
	key := throttleKey{target, a.IP}
	if _, known := tl.rows[key]; !known && len(tl.rows) >= maxThrottleKeys {
		key.ip, a.IP = "", ""
	}
	var saves []throttleSave
	r := tl.rows[key]
	insert := r == nil || now >= r.end
	if insert {
		if r != nil {
			saves = r.take(saves, now, true) // the old window's last count
		}
		r = &throttleRow{end: now + window.Milliseconds(), count: 1, written: 1, lastSave: now, window: window.String()}
		tl.rows[key] = r
	} else {
		r.count++
		saves = r.take(saves, now, false)
	}
	if now-tl.lastSweep >= throttleFlushEvery.Milliseconds() {
		tl.lastSweep = now
		saves = tl.sweep(saves, now, false)
	}
	tl.mu.Unlock()

	var err error
	if insert {
		row := &AuditEvent{At: now, ActorID: a.ID, ActorEmail: a.Email, Action: ActionLoginThrottled,
			Target: target, Detail: throttleDetail(1, r.window), IP: a.IP}
		_, err = s.DB.NewInsert().Model(row).Returning("id").Exec(ctx)
		tl.mu.Lock()
		if err != nil {
			if tl.rows[key] == r {
				delete(tl.rows, key) // the next attempt inserts again
			}
		} else {
			r.id = row.ID
		}
		tl.mu.Unlock()
	}
	if serr := s.saveThrottles(ctx, saves); err == nil {
		err = serr
	}
	return storageErr(err)
}

// take adds r's unwritten count to saves when it is due (or when final),
// marking it as being written.
func (r *throttleRow) take(saves []throttleSave, now int64, final bool) []throttleSave {
	if r.id == 0 || r.saving || r.count == r.written || (!final && now-r.lastSave < throttleFlushEvery.Milliseconds()) {
		return saves
	}
	r.saving = true
	r.lastSave = now
	return append(saves, throttleSave{row: r, id: r.id, count: r.count, window: r.window})
}

// sweep takes every due count (every unwritten one when all) and forgets
// the rows of windows that have ended and are fully written. Call with
// tl.mu held.
func (tl *throttleLog) sweep(saves []throttleSave, now int64, all bool) []throttleSave {
	for k, r := range tl.rows {
		saves = r.take(saves, now, all || now >= r.end)
		if now >= r.end && r.id != 0 && !r.saving && r.count == r.written {
			delete(tl.rows, k)
		}
	}
	return saves
}

// saveThrottles writes counts into their rows.
func (s *Store) saveThrottles(ctx context.Context, saves []throttleSave) error {
	var first error
	for _, sv := range saves {
		_, err := s.DB.NewUpdate().Model((*AuditEvent)(nil)).Set("detail = ?", throttleDetail(sv.count, sv.window)).
			Where("id = ?", sv.id).Exec(ctx)
		tl := s.throttles()
		tl.mu.Lock()
		sv.row.saving = false
		if err == nil && sv.count > sv.row.written {
			sv.row.written = sv.count
		}
		tl.mu.Unlock()
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// FlushThrottled writes every throttled-login count not yet in its row.
// Close calls it; a server may call it periodically.
func (s *Store) FlushThrottled(ctx context.Context) error {
	tl := s.throttles()
	tl.mu.Lock()
	saves := tl.sweep(nil, s.nowMS(), true)
	tl.mu.Unlock()
	return storageErr(s.saveThrottles(ctx, saves))
}
