package apps

import (
	"context"
	"errors"
	"sync"
)

// errAccessEnded is why a tracked connection is cut.
var errAccessEnded = errors.New("the viewer's access to the app ended")

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
}

// sessionConns are the open connections of one session to one app.
type sessionConns struct {
	// cookie is the session cookie value the app cookie carries: enough
	// to decide again.
	cookie string
	open   map[*context.CancelCauseFunc]struct{}
}

func newTracker(h *Handler) *tracker {
	return &tracker{h: h, m: map[connKey]*sessionConns{}}
}

// add tracks a connection of key's session to key's app. decided is the
// access feed's channel taken before the request was decided: when a
// change has come since, the connection is decided again at once (the
// watcher may have rechecked before it was tracked). It returns the
// context to serve it with (cancelled, with errAccessEnded as the cause,
// when access ends) and the function that ends tracking.
func (t *tracker) add(parent context.Context, key connKey, cookie string, decided <-chan struct{}) (context.Context, func()) {
	t.watchOnce.Do(func() { go t.watch() })
	ctx, cancel := context.WithCancelCause(parent)
	t.mu.Lock()
	sc := t.m[key]
	if sc == nil {
		sc = &sessionConns{cookie: cookie, open: map[*context.CancelCauseFunc]struct{}{}}
		t.m[key] = sc
	}
	sc.open[&cancel] = struct{}{}
	t.mu.Unlock()
	select {
	case <-decided:
		go t.recheck(map[connKey]string{key: cookie})
	default:
	}
	return ctx, func() {
		t.mu.Lock()
		if sc := t.m[key]; sc != nil {
			delete(sc.open, &cancel)
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
		for c := range sc.open {
			(*c)(cause)
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
// store's access feed announces, until the handler closes.
func (t *tracker) watch() {
	feed := t.h.cfg.Store.AccessFeed()
	for {
		changed := feed.Changed()
		t.mu.Lock()
		keys := make(map[connKey]string, len(t.m))
		for k, sc := range t.m {
			keys[k] = sc.cookie
		}
		t.mu.Unlock()
		t.recheck(keys)
		select {
		case <-changed:
		case <-t.h.stop:
			return
		}
	}
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
		allowed, err := t.h.allowed(ctx, k, cookie)
		if err != nil {
			t.h.cfg.Log.Warn("app connections: deciding again failed", "app", k.app, "err", err)
			continue
		}
		if !allowed {
			t.cut(k, errAccessEnded)
		}
	}
}
