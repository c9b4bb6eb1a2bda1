package app

import (
	"context"
	"errors"
	"html"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"gatehouse/app/conns"
	"gatehouse/app/dashboards"
	"gatehouse/db"
)

// access is a viewer's decisions for a dashboard and each of its panels.
type access struct {
	dashboard dashboards.Decision
	panels    []dashboards.Decision // in the dashboard's panel order; empty when the dashboard is denied
}

// dashboardAccess decides the dashboard and, when it is allowed, each of
// its panels, through the one decision function.
func (a *App) dashboardAccess(ctx context.Context, v dashboards.Viewer, d *dashboards.Dashboard) (access, error) {
	dec, err := dashboards.Check(ctx, a.store, v, d, nil)
	if err != nil || !dec.Allowed {
		return access{dashboard: dec}, err
	}
	acc := access{dashboard: dec, panels: make([]dashboards.Decision, len(d.Panels))}
	for i, p := range d.Panels {
		acc.panels[i] = dec
		if p.RequireGroup == "" {
			continue
		}
		if acc.panels[i], err = dashboards.Check(ctx, a.store, v, d, p); err != nil {
			return acc, err
		}
	}
	return acc, nil
}

// state names what a page of d rendered with this access shows: "x:" and
// the denial's code when the dashboard is denied, else "a:" and one
// character per panel, "1" shown or "0" denied, then, for a dashboard
// loaded from a file, "@" and the file's version. Two pages with the same
// state look the same apart from their data.
func (acc access) state(d *dashboards.Dashboard) string {
	if !acc.dashboard.Allowed {
		return "x:" + acc.dashboard.Code
	}
	b := make([]byte, 0, 2+len(acc.panels)+1+len(d.Version))
	b = append(b, "a:"...)
	for _, p := range acc.panels {
		if p.Allowed {
			b = append(b, '1')
		} else {
			b = append(b, '0')
		}
	}
	if d.Version != "" {
		b = append(b, '@')
		b = append(b, d.Version...)
	}
	return string(b)
}

// dashboardUpdatedNews is announced when a dashboard's file changed.
const dashboardUpdatedNews = "This dashboard has been updated."

// dashboardRemovedNews is announced when a dashboard's file is gone.
const dashboardRemovedNews = "This dashboard has been removed."

// accessNews is the one sentence a page announces when its access moves
// from state from to state to (for dashboard d).
func accessNews(d *dashboards.Dashboard, from, to string) string {
	from, fromVersion, _ := strings.Cut(from, "@")
	to, toVersion, _ := strings.Cut(to, "@")
	if fromVersion != toVersion && strings.HasPrefix(from, "a:") && strings.HasPrefix(to, "a:") {
		// The file changed (its panels may have come or gone with it).
		return dashboardUpdatedNews
	}
	wasAllowed, isAllowed := strings.HasPrefix(from, "a:"), strings.HasPrefix(to, "a:")
	switch {
	case !isAllowed && wasAllowed:
		return "Your access has changed: you can no longer view this dashboard."
	case !isAllowed:
		return "Your access has changed: you still cannot view this dashboard."
	case !wasAllowed:
		return "Your access has changed: you can now view this dashboard."
	}
	var lost, gained []string
	was, is := from[2:], to[2:]
	for i, p := range d.Panels {
		if i >= len(is) {
			break
		}
		before := i < len(was) && was[i] == '1'
		switch now := is[i] == '1'; {
		case before && !now:
			lost = append(lost, strconv.Quote(p.Title))
		case !before && now:
			gained = append(gained, strconv.Quote(p.Title))
		}
	}
	var parts []string
	if len(lost) > 0 {
		parts = append(parts, "you can no longer view the "+plural(len(lost), "panel")+" "+strings.Join(lost, ", "))
	}
	if len(gained) > 0 {
		parts = append(parts, "you can now view the "+plural(len(gained), "panel")+" "+strings.Join(gained, ", "))
	}
	if len(parts) == 0 {
		return "Your access has changed."
	}
	return "Your access has changed: " + strings.Join(parts, "; ") + "."
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// sessionEndedNews is announced when the stream ends with the session.
const sessionEndedNews = "Your session has ended. Log in again to keep viewing this dashboard."

// dashboardEvents serves GET /dashboards/{slug}/events: a text/event-stream
// that tells one open dashboard page when the viewer's access to it, or to
// one of its panels, changes, whichever process or instance changed it.
//
// The page passes the state it was rendered with (?state=, or the last
// event's id on a reconnection). Whenever the store's access feed reports a
// change, the stream decides again (from the authorization cache, so
// thousands of streams cost a handful of queries) and, when the state
// differs from the page's, sends one "access" event: its id is the new
// state and its data the sentence the page announces; the page then fetches
// itself again. While nothing changes a stream costs a parked goroutine and
// its connection, nothing per second.
//
// The stream ends when the session does (logout, revocation, expiry,
// deactivation): it sends "access" (the page's refetch then leads to the
// login page) and "close" (the page stops reconnecting). Anonymous: 401.
//
// Streams are bounded per page, session, user and server (a.streams, see
// app/conns): a session's oldest stream for the page is sent "close" when a
// newer one would exceed the bound; past the user's bound 429, past the
// server's 503.
func (a *App) dashboardEvents(w http.ResponseWriter, r *http.Request) {
	v := viewerFrom(r.Context())
	cookie, err := r.Cookie(a.sessions.CookieName())
	if v == nil || err != nil {
		a.errorPage(w, r, http.StatusUnauthorized, "Log in required", "Log in to follow this dashboard.")
		return
	}
	d := a.registry.Get(r.PathValue("slug"))
	if d == nil {
		a.notFound(w, r)
		return
	}
	if v.User.MustChangePassword {
		a.forbidden(w, r, "Change your temporary password first.")
		return
	}
	// Each stream holds a connection for as long as the page is open: within
	// the session's, the user's and the server's budget (app/conns). A new
	// stream for a page closes the session's oldest one past the budget;
	// past the user's or the server's budget it is refused, which also
	// stops the page's reconnecting for a while.
	//
	// Over HTTP/1.1 the connection closes with the stream (or the refusal)
	// instead of idling for the next request: a client that opens stream
	// after stream would otherwise keep each one's connection, a file and a
	// goroutine, for the server's idle timeout.
	w.Header().Set("Connection", "close")
	conn, err := a.streams.Acquire(conns.Claim{Session: sessionHash(v), User: v.User.ID, Key: "dashboard:" + d.Slug})
	if err != nil {
		a.metrics.throttled("event-stream")
		w.Header().Set("Retry-After", "60")
		if errors.Is(err, conns.ErrUserFull) {
			a.log.WarnContext(r.Context(), "event stream refused: too many open for this user", "user", v.User.Email, "limit", a.streams.Limits().PerUser)
			a.errorPage(w, r, http.StatusTooManyRequests, "Too many open pages", "Close some of your open dashboards and try again.")
			return
		}
		a.log.WarnContext(r.Context(), "event stream refused: the server holds as many as it may", "limit", a.streams.Limits().Total)
		a.errorPage(w, r, http.StatusServiceUnavailable, "Busy", "The server is busy. Try again in a minute.")
		return
	}
	defer conn.Release()
	shown := r.Header.Get("Last-Event-ID")
	if shown == "" {
		shown = r.URL.Query().Get("state")
	}

	// The stream outlives the server's read and write timeouts, which are
	// meant for ordinary requests; a client that goes away still cancels
	// the request's context.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events on at once
	w.WriteHeader(http.StatusOK)
	a.metrics.streamOpened()
	defer a.metrics.streamClosed()
	// retry: how long a browser waits before reconnecting after a drop.
	if _, err := writeString(w, "retry: 2000\n\n"); err != nil || rc.Flush() != nil {
		return
	}

	// The stream's own context: it ends with the request or the server.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	stopOnDone := context.AfterFunc(r.Context(), cancel)
	defer stopOnDone()
	feed := a.store.AccessFeed()
	ended := time.NewTimer(time.Hour)
	defer ended.Stop()
	woke := false // by the session's deadline rather than a change
	idle := false // woken by a change to another dashboard's file
	slug := d.Slug
	for {
		changed := feed.Changed()
		// A file dashboard may change or go: the page then fetches itself
		// again (the new version, or the 404).
		filesChanged := a.registry.FilesChanged()
		if d = a.registry.Get(slug); d == nil {
			_ = writeEvent(w, "access", "", dashboardRemovedNews)
			_ = writeEvent(w, "close", "", "")
			_ = rc.Flush()
			return
		}
		if idle {
			// Another file changed: nothing to decide again.
			idle = false
		} else {
			var res liveResult
			if woke {
				res = a.liveState(ctx, cookie.Value, v.User.ID, d)
			} else {
				res = a.sharedLiveState(ctx, changed, cookie.Value, v.User.ID, d)
			}
			state, deadline, live, err := res.state, res.deadline, res.live, res.err
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				// A storage fault: keep the page as it is and try again at the
				// next change, or in a few seconds.
				a.log.WarnContext(r.Context(), "live access check failed", "dashboard", d.Slug, "err", err)
				deadline = a.now().Add(5 * time.Second)
			case !live:
				_ = writeEvent(w, "access", "", sessionEndedNews)
				_ = writeEvent(w, "close", "", "")
				_ = rc.Flush()
				return
			case state != shown:
				if writeEvent(w, "access", state, accessNews(d, shown, state)) != nil || rc.Flush() != nil {
					return
				}
				shown = state
			}
			ended.Reset(max(deadline.Sub(a.now()), time.Millisecond))
		}
		woke = false
		select {
		case <-changed:
		case <-filesChanged:
			// Decide afresh when this dashboard's file changed; an edit of
			// another file (same *Dashboard) wakes nothing more.
			if a.registry.Get(slug) == d {
				idle = true
			} else {
				woke = true
			}
		case <-ended.C:
			woke = true
		case <-ctx.Done():
			return
		case <-a.streamsDone:
			return
		case <-conn.Closed():
			// The same session opened this page again more often than its
			// budget allows: this stream, the oldest, gives way, and tells
			// its page not to reconnect.
			_ = writeEvent(w, "close", "", "")
			_ = rc.Flush()
			return
		}
	}
}

// liveResult is what liveState decides.
type liveResult struct {
	state    string
	deadline time.Time // when the session ends unless used
	live     bool      // false: the session has ended
	err      error
}

// liveState decides the state of dashboard d for the session named by a
// cookie value, under a fresh snapshot. live is false when the session has
// ended or belongs to someone else now.
func (a *App) liveState(ctx context.Context, cookie string, userID int64, d *dashboards.Dashboard) liveResult {
	ctx, err := a.store.FreshSnapshot(ctx)
	if err != nil {
		return liveResult{err: err}
	}
	sess, u, err := a.sessions.LoadCookie(ctx, cookie)
	if err != nil {
		return liveResult{err: err}
	}
	if sess.IsNew || !u.IsActive || u.ID != userID {
		return liveResult{}
	}
	// A session that must now give or set up a second factor (promoted
	// under --require-mfa) may do nothing until it has: its stream ends.
	if pending, err := a.pendingMethod(ctx, &Viewer{User: u, Session: sess, Method: sessionMethod(sess)}); err != nil {
		return liveResult{err: err}
	} else if pending != "" {
		return liveResult{}
	}
	deadline, err := a.sessions.Deadline(ctx, cookie)
	if errors.Is(err, db.ErrNotFound) {
		return liveResult{}
	} else if err != nil {
		return liveResult{err: err}
	}
	acc, err := a.dashboardAccess(ctx, dashboards.ViewerOf(u), d)
	if err != nil {
		return liveResult{err: err}
	}
	return liveResult{state: acc.state(d), deadline: deadline, live: true}
}

// liveCalls lets the streams of one session on one dashboard (a user's
// open tabs) decide once per change. A change wakes every stream at the
// same instant; without this, each of a user's streams would miss the
// authorization cache at once and run the same queries side by side.
type liveCalls struct {
	mu      sync.Mutex
	m       map[liveKey]*liveCall
	sweepAt int // sweep stale calls when the map grows past this
}

type liveKey struct{ cookie, slug string }

// liveCall is one decision, shared by the streams that woke for the same
// change (the feed's Changed channel identifies it).
type liveCall struct {
	after <-chan struct{}
	done  chan struct{}
	res   liveResult
}

// sharedLiveState is liveState, computed once for all the streams of a
// session and dashboard that woke for the change changed stands for.
func (a *App) sharedLiveState(ctx context.Context, changed <-chan struct{}, cookie string, userID int64, d *dashboards.Dashboard) liveResult {
	key := liveKey{cookie, d.Slug}
	lc := &a.liveCalls
	lc.mu.Lock()
	if c := lc.m[key]; c != nil && c.after == changed {
		lc.mu.Unlock()
		select {
		case <-c.done:
			return c.res
		case <-ctx.Done():
			return liveResult{err: ctx.Err()}
		}
	}
	if lc.m == nil {
		lc.m = map[liveKey]*liveCall{}
	}
	if len(lc.m) > lc.sweepAt {
		for k, c := range lc.m {
			if c.after != changed {
				delete(lc.m, k) // decided before the latest change: no stream waits for it
			}
		}
		lc.sweepAt = 2*len(lc.m) + 1024
	}
	c := &liveCall{after: changed, done: make(chan struct{})}
	lc.m[key] = c
	lc.mu.Unlock()
	// Finish even if this stream's client leaves: others may be waiting.
	c.res = a.liveState(context.WithoutCancel(ctx), cookie, userID, d)
	close(c.done)
	return c.res
}

// writeEvent writes one server-sent event. data is text: it is escaped for
// the HTML the page swaps it into, and has no newlines.
func writeEvent(w http.ResponseWriter, event, id, data string) error {
	var b strings.Builder
	b.WriteString("event: ")
	b.WriteString(event)
	b.WriteByte('\n')
	if id != "" {
		b.WriteString("id: ")
		b.WriteString(id)
		b.WriteByte('\n')
	}
	b.WriteString("data: ")
	b.WriteString(strings.ReplaceAll(html.EscapeString(data), "\n", " "))
	b.WriteString("\n\n")
	_, err := writeString(w, b.String())
	return err
}

func writeString(w http.ResponseWriter, s string) (int, error) { return w.Write([]byte(s)) }
