package apps

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// errAccessEnded is why a tracked connection is cut.
var errAccessEnded = errors.New("the viewer's access to the app ended")

// errReplaced ends a socket whose place in the connection budget a newer
// socket of the same session and app took (app/conns).
var errReplaced = errors.New("a newer connection of the session took this one's place")

// connKey names the connections of one session to one app.
type connKey struct{ session, app string }

// tracker holds every proxied request in flight (streaming responses and
// upgraded WebSockets included), grouped by session and app, so that when a
// viewer's access to an app ends (a grant or membership removed, the
// session ended, the user deactivated, the app removed; by any process or
// instance) all of them are cut at once.
//
// add is the one place a connection starts: a budget of long-lived
// connections per session, user and server (app/conns) can be charged
// there and released by the function it returns.
type tracker struct {
	h         *Handler
	watchOnce sync.Once

	mu sync.Mutex
	m  map[connKey]*sessionConns
	// woken tells the watcher a connection with an earlier session
	// deadline than it waits for has come.
	woken chan struct{}
	// until is the deadline the watcher waits for (set by nextEnd): a
	// connection ending later needs no wake-up. Without it every request
	// of a keep-alive client (tracked, then untracked) woke the watcher.
	until time.Time
}

// sessionConns are the open connections of one session to one app.
type sessionConns struct {
	// cookie is the session cookie value the app cookie carries: enough
	// to decide again.
	cookie string
	// ends is when the session ends unless used: decided again then.
	ends time.Time
	open map[*trackedConn]struct{}
}

// trackedConn is one request in flight.
type trackedConn struct {
	cancel context.CancelCauseFunc
	// ws is the client side once the request upgraded to a WebSocket.
	ws atomic.Pointer[frameConn]
}

func newTracker(h *Handler) *tracker {
	return &tracker{h: h, m: map[connKey]*sessionConns{}, woken: make(chan struct{}, 1)}
}

// wake makes the watcher look at the session deadlines again.
func (t *tracker) wake() {
	select {
	case t.woken <- struct{}{}:
	default:
	}
}

// nextEnd returns how long until the earliest session deadline of the
// tracked connections (an hour when there are none), and makes it the one
// the watcher waits for.
func (t *tracker) nextEnd() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var first time.Time
	for _, sc := range t.m {
		if !sc.ends.IsZero() && (first.IsZero() || sc.ends.Before(first)) {
			first = sc.ends
		}
	}
	now := t.h.cfg.Store.Now()
	if first.IsZero() {
		t.until = now.Add(time.Hour)
		return time.Hour
	}
	t.until = first
	return max(first.Sub(now), 10*time.Millisecond)
}

// add tracks a connection of key's session to key's app. decided is the
// access feed's channel taken before the request was decided: when a
// change has come since, the connection is decided again at once (the
// watcher may have rechecked before it was tracked). It returns the
// context to serve it with (cancelled, with errAccessEnded as the cause,
// when access ends), the connection, and the function that ends tracking.
func (t *tracker) add(parent context.Context, key connKey, cookie string, ends time.Time, decided <-chan struct{}) (context.Context, *trackedConn, func()) {
	t.watchOnce.Do(func() { go t.watch() })
	ctx, cancel := context.WithCancelCause(parent)
	tc := &trackedConn{cancel: cancel}
	t.mu.Lock()
	sc := t.m[key]
	if sc == nil {
		sc = &sessionConns{cookie: cookie, open: map[*trackedConn]struct{}{}}
		t.m[key] = sc
	}
	earlier := !ends.IsZero() && ends.Before(t.until)
	if ends.After(sc.ends) {
		sc.ends = ends // used again just now
	}
	sc.open[tc] = struct{}{}
	t.mu.Unlock()
	if earlier {
		t.wake()
	}
	select {
	case <-decided:
		go t.recheck(map[connKey]string{key: cookie})
	default:
	}
	return ctx, tc, func() {
		t.mu.Lock()
		if sc := t.m[key]; sc != nil {
			delete(sc.open, tc)
			if len(sc.open) == 0 {
				delete(t.m, key)
			}
		}
		t.mu.Unlock()
		cancel(nil)
	}
}

// Open counts the connections in flight.
func (t *tracker) Open() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, sc := range t.m {
		n += len(sc.open)
	}
	return n
}

// cut cancels every connection of key.
func (t *tracker) cut(key connKey, cause error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if sc := t.m[key]; sc != nil {
		for tc := range sc.open {
			if ws := tc.ws.Load(); ws != nil && errors.Is(cause, errAccessEnded) {
				ws.revoke() // the close frame first, while the connection is open
			}
			tc.cancel(cause)
		}
	}
}

func (t *tracker) cutAll() {
	t.mu.Lock()
	keys := make([]connKey, 0, len(t.m))
	for k := range t.m {
		keys = append(keys, k)
	}
	t.mu.Unlock()
	for _, k := range keys {
		t.cut(k, context.Canceled)
	}
}

// watch decides every tracked session and app again at each change the
// store's access feed announces, and when the earliest session deadline
// passes (a session that expires is no change to the feed), until the
// handler closes.
func (t *tracker) watch() {
	feed := t.h.cfg.Store.AccessFeed()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	changed := feed.Changed() // taken before deciding, so no change is missed
	t.recheckAll()
	for {
		timer.Reset(t.nextEnd())
		select {
		case <-changed:
		case <-timer.C:
		case <-t.woken:
			continue // only the deadline to wait for has moved
		case <-t.h.stop:
			return
		}
		changed = feed.Changed()
		t.recheckAll()
	}
}

// recheckAll decides every tracked session and app again.
func (t *tracker) recheckAll() {
	t.mu.Lock()
	keys := make(map[connKey]string, len(t.m))
	for k, sc := range t.m {
		keys[k] = sc.cookie
	}
	t.mu.Unlock()
	t.recheck(keys)
}

// recheck decides each key again under a fresh snapshot and cuts those no
// longer allowed. A storage fault leaves connections open (the next change
// decides again).
func (t *tracker) recheck(keys map[connKey]string) {
	if len(keys) == 0 {
		return
	}
	ctx, err := t.h.cfg.Store.FreshSnapshot(context.Background())
	if err != nil {
		t.h.cfg.Log.Warn("app connections: reading access failed", "err", err)
		return
	}
	for k, cookie := range keys {
		allowed, ends, err := t.h.allowed(ctx, k, cookie)
		if err != nil {
			t.h.cfg.Log.Warn("app connections: deciding again failed", "app", k.app, "err", err)
			continue
		}
		if !allowed {
			t.cut(k, errAccessEnded)
			continue
		}
		t.mu.Lock()
		if sc := t.m[k]; sc != nil && ends.After(sc.ends) {
			sc.ends = ends
		}
		t.mu.Unlock()
	}
}
