package app

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse/app/conns"
	"gatehouse/app/dashboards"
	"gatehouse/db"
	"gatehouse/db/postgrestest"
)

// sseEvent is one server-sent event as a browser's EventSource sees it.
type sseEvent struct{ name, id, data string }

// eventStream is an open GET /dashboards/{slug}/events.
type eventStream struct {
	res    *http.Response
	events chan sseEvent
	cancel context.CancelFunc
}

// openEvents opens the event stream of dashboard slug as client c, telling
// it the page shows state, and reads its events in the background.
func openEvents(t testing.TB, ta *testApp, c *http.Client, slug, state string) *eventStream {
	t.Helper()
	s := openEventsUntracked(t, ta, c, slug, state)
	t.Cleanup(s.close)
	return s
}

// openEventsUntracked is openEvents for a test that closes the stream
// itself (and counts the heap: it holds no reference in t.Cleanup).
func openEventsUntracked(t testing.TB, ta *testApp, c *http.Client, slug, state string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ta.Server.URL+"/dashboards/"+slug+"/events?state="+state, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	res, err := c.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		res.Body.Close()
		t.Fatalf("GET /dashboards/%s/events: status %d, Content-Type %q", slug, res.StatusCode, res.Header.Get("Content-Type"))
	}
	events := make(chan sseEvent, 16)
	s := &eventStream{res: res, events: events, cancel: cancel}
	go func() {
		defer close(events)
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return s
}

// close closes the stream and drops the response (so a test counting the
// heap does not count its own references).
func (s *eventStream) close() {
	s.cancel()
	if s.res != nil {
		s.res.Body.Close()
		s.res, s.events = nil, nil
	}
}

// next waits for the next event (failing after a generous bound; the
// expected latency is milliseconds, the bound only keeps a broken build
// from hanging).
func (s *eventStream) next(t testing.TB, what string) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatalf("%s: the stream ended", what)
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no event within 10s", what)
	}
	return sseEvent{}
}

// quiet checks that no event arrives while the feed announces another
// change (made by do), which every stream wakes for.
func (s *eventStream) quiet(t testing.TB, ta *testApp, do func()) {
	t.Helper()
	feed := ta.store.AccessFeed()
	before := feed.Changes()
	do()
	deadline := time.Now().Add(10 * time.Second)
	for feed.Changes() == before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// Give the woken stream time to decide (and, wrongly, to send).
	select {
	case ev := <-s.events:
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(300 * time.Millisecond):
	}
}

// ended waits for the stream to end.
func (s *eventStream) ended(t testing.TB) {
	t.Helper()
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return
			}
			t.Fatalf("unexpected event %+v after the end", ev)
		case <-time.After(10 * time.Second):
			t.Fatal("the stream did not end within 10s")
		}
	}
}

var stateRE = regexp.MustCompile(`sse-connect="/dashboards/[a-z0-9-]+/events\?state=([^"]*)"`)

// pageState opens the dashboard page as c and returns the state it was
// rendered with (from its sse-connect address).
func pageState(t testing.TB, ta *testApp, c *http.Client, slug string, status int) string {
	t.Helper()
	res, body := ta.get(t, c, "/dashboards/"+slug, false)
	if res.StatusCode != status {
		t.Fatalf("GET /dashboards/%s = %d, want %d", slug, res.StatusCode, status)
	}
	m := stateRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the page has no event stream: %s", body)
	}
	return strings.ReplaceAll(m[1], "%3A", ":")
}

func TestEventsNeedALogin(t *testing.T) {
	f := newAccessFixture(t)
	for _, htmx := range []bool{false, true} {
		res, body := f.ta.get(t, f.ta.client(), "/dashboards/test/events", htmx)
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous (htmx %v): status %d, want 401: %s", htmx, res.StatusCode, body)
		}
		if strings.Contains(res.Header.Get("Content-Type"), "event-stream") {
			t.Errorf("anonymous (htmx %v): answered with a stream", htmx)
		}
	}
	if res, _ := f.ta.get(t, f.memberC, "/dashboards/nope/events", false); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown dashboard: status %d, want 404", res.StatusCode)
	}
}

func TestDashboardPageShowsOneDenialAndPanelDenials(t *testing.T) {
	f := newAccessFixture(t)
	// An outsider: one denial, one request form, no panels (and nothing polls).
	res, body := f.ta.get(t, f.outsiderC, "/dashboards/test", false)
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("outsider: status %d", res.StatusCode)
	}
	for what, n := range map[string]int{denied: 1, `action="/dashboards/test/request"`: 1, `class="panel `: 0, `class="panel"`: 0, "hx-get=\"/dashboards/test/panels/": 0, `role="alert"`: 0} {
		if got := strings.Count(body, what); got != n {
			t.Errorf("outsider's page has %d × %q, want %d", got, what, n)
		}
	}
	if !strings.Contains(body, "<h1>Test board</h1>") || !strings.Contains(body, "<h2>You cannot view this dashboard</h2>") {
		t.Errorf("outsider's page: want the h1 title and an h2 denial: %s", body)
	}
	// A member: the open panel polls, the leads panel is shown denied and does not poll.
	res, body = f.ta.get(t, f.memberC, "/dashboards/test", false)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("member: status %d", res.StatusCode)
	}
	for what, n := range map[string]int{
		`hx-get="/dashboards/test/panels/open"`:             1,
		`hx-get="/dashboards/test/panels/leads"`:            0,
		"You cannot view this dashboard panel":              1,
		`this panel is only for members of &#34;leads&#34;`: 1,
		`action="/dashboards/test/request"`:                 0,
		`aria-live`:                                         0,
		`<h2 id="panel-title-open">Open panel</h2>`:         1,
		`<h3>You cannot view this dashboard panel</h3>`:     1,
	} {
		if got := strings.Count(body, what); got != n {
			t.Errorf("member's page has %d × %q, want %d", got, what, n)
		}
	}
	if f.calls.leads.Load() != 0 {
		t.Error("the leads panel's data was read for a member")
	}
	// A panel request for a lost dashboard tells the page to fetch itself.
	res, _ = f.ta.get(t, f.outsiderC, "/dashboards/test/panels/open", true)
	if res.StatusCode != http.StatusForbidden || res.Header.Get("HX-Trigger") != "access-changed" {
		t.Errorf("outsider's htmx panel: status %d, HX-Trigger %q; want 403 and access-changed", res.StatusCode, res.Header.Get("HX-Trigger"))
	}
	res, _ = f.ta.get(t, f.memberC, "/dashboards/test/panels/leads", true)
	if res.StatusCode != http.StatusForbidden || res.Header.Get("HX-Trigger") != "" {
		t.Errorf("member's htmx leads panel: status %d, HX-Trigger %q; want 403 and none", res.StatusCode, res.Header.Get("HX-Trigger"))
	}
}

// TestEventsFollowAccess opens the member's stream and makes each change
// from a second store on the same file, as the CLI would in another
// process: the stream tells the page at once, once per change.
func TestEventsFollowAccess(t *testing.T) {
	ctx := context.Background()
	cli := db.Actor{Email: "cli"}
	f := newAccessFixture(t)
	other := otherProcess(t, f.ta)

	state := pageState(t, f.ta, f.memberC, "test", http.StatusOK)
	if state != "a:10" {
		t.Fatalf("member's page state = %q, want a:10", state)
	}
	s := openEvents(t, f.ta, f.memberC, "test", state)

	// A change that does not concern the member sends nothing.
	s.quiet(t, f.ta, func() {
		if _, err := other.CreateGroup(ctx, cli, "unrelated", ""); err != nil {
			t.Fatal(err)
		}
	})

	if err := other.RemoveMember(ctx, cli, f.team.ID, f.member.ID); err != nil {
		t.Fatal(err)
	}
	ev := s.next(t, "membership removed")
	if ev.name != "access" || ev.id != "x:not-member" || !strings.Contains(ev.data, "you can no longer view this dashboard") {
		t.Fatalf("after removal: %+v", ev)
	}
	// The page then fetches itself and gets the single denial.
	if got := pageState(t, f.ta, f.memberC, "test", http.StatusForbidden); got != "x:not-member" {
		t.Errorf("page state after removal = %q", got)
	}

	if err := other.AddMember(ctx, cli, f.team.ID, f.member.ID, 0); err != nil {
		t.Fatal(err)
	}
	if ev := s.next(t, "membership restored"); ev.id != "a:10" || !strings.Contains(ev.data, "you can now view this dashboard") {
		t.Fatalf("after restoring: %+v", ev)
	}
}

func TestEventsPanelLevelLossAndRegain(t *testing.T) {
	ctx := context.Background()
	cli := db.Actor{Email: "cli"}
	f := newAccessFixture(t)
	other := otherProcess(t, f.ta)
	state := pageState(t, f.ta, f.leadC, "test", http.StatusOK)
	if state != "a:11" {
		t.Fatalf("lead's page state = %q, want a:11", state)
	}
	s := openEvents(t, f.ta, f.leadC, "test", state)
	if err := other.RemoveMember(ctx, cli, f.leads.ID, f.lead.ID); err != nil {
		t.Fatal(err)
	}
	ev := s.next(t, "leads membership removed")
	if ev.id != "a:10" || ev.data != `Your access has changed: you can no longer view the panel &#34;Leads panel&#34;.` {
		t.Fatalf("after removal: %+v", ev)
	}
	if err := other.AddMember(ctx, cli, f.leads.ID, f.lead.ID, 0); err != nil {
		t.Fatal(err)
	}
	if ev := s.next(t, "leads membership restored"); ev.id != "a:11" || !strings.Contains(ev.data, "you can now view the panel") {
		t.Fatalf("after restoring: %+v", ev)
	}
}

// TestEventsCatchUpOnConnect: a page rendered before a change, whose stream
// opens after it, is told at once.
func TestEventsCatchUpOnConnect(t *testing.T) {
	f := newAccessFixture(t)
	state := pageState(t, f.ta, f.memberC, "test", http.StatusOK)
	if err := f.ta.store.RemoveMember(context.Background(), db.Actor{Email: "cli"}, f.team.ID, f.member.ID); err != nil {
		t.Fatal(err)
	}
	s := openEvents(t, f.ta, f.memberC, "test", state)
	if ev := s.next(t, "connect after a change"); ev.id != "x:not-member" {
		t.Fatalf("got %+v", ev)
	}
}

func TestEventsEndWithTheSession(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, f *accessFixture, other *db.Store)
	}{
		{"revoked by another process", func(t *testing.T, f *accessFixture, other *db.Store) {
			if err := other.RevokeUserSessions(ctx, f.member.ID, ""); err != nil {
				t.Fatal(err)
			}
		}},
		{"logout", func(t *testing.T, f *accessFixture, other *db.Store) {
			if res, _ := f.ta.post(t, f.memberC, "/logout", nil); res.StatusCode != http.StatusSeeOther {
				t.Fatalf("logout: %d", res.StatusCode)
			}
		}},
		{"deactivated", func(t *testing.T, f *accessFixture, other *db.Store) {
			if err := other.SetActive(ctx, db.Actor{Email: "cli"}, f.member.ID, false); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newAccessFixture(t)
			s := openEvents(t, f.ta, f.memberC, "test", "a:10")
			tc.end(t, f, otherProcess(t, f.ta))
			if ev := s.next(t, "session ended"); ev.name != "access" || ev.data != sessionEndedNews {
				t.Fatalf("got %+v, want the session-ended news", ev)
			}
			if ev := s.next(t, "close"); ev.name != "close" {
				t.Fatalf("got %+v, want close", ev)
			}
			s.ended(t)
		})
	}
}

// TestEventsEndAtTheSessionDeadline: a session left idle (nothing polls)
// ends at its idle limit, and the stream with it, woken by its own timer.
func TestEventsEndAtTheSessionDeadline(t *testing.T) {
	ta := newTestApp(t, withTestDashboard(&dataCalls{}), func(cfg *Config, _ *dashboards.Registry) {
		cfg.SessionIdle = 2 * time.Second
	})
	ctx := context.Background()
	g, err := ta.store.CreateGroup(ctx, db.Actor{Email: "test"}, "team", "")
	if err != nil {
		t.Fatal(err)
	}
	u := ta.createUser(t, "member@example.com", false)
	if err := ta.store.AddMember(ctx, db.Actor{Email: "test"}, g.ID, u.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := ta.store.AddGrant(ctx, db.Actor{Email: "test"}, "test", g.ID); err != nil {
		t.Fatal(err)
	}
	c := ta.login(t, "member@example.com")
	ta.Clock.Run()
	s := openEvents(t, ta, c, "test", "a:10")
	if ev := s.next(t, "session idle"); ev.data != sessionEndedNews {
		t.Fatalf("got %+v, want the session-ended news", ev)
	}
	if ev := s.next(t, "close"); ev.name != "close" {
		t.Fatalf("got %+v, want close", ev)
	}
	s.ended(t)
}

// TestEventsAtMembershipExpiry: a membership expiring while the page is
// open denies it at the expiry time; no commit happens then, the feed's
// timer wakes the streams.
func TestEventsAtMembershipExpiry(t *testing.T) {
	ctx := context.Background()
	f := newAccessFixture(t)
	f.ta.Clock.Run() // the expiry must pass by itself
	s := openEvents(t, f.ta, f.memberC, "test", "a:10")
	expires := f.ta.Clock.Now().Add(700 * time.Millisecond).UnixMilli()
	if err := f.ta.store.SetMemberExpiry(ctx, db.Actor{Email: "cli"}, f.team.ID, f.member.ID, expires); err != nil {
		t.Fatal(err)
	}
	ev := s.next(t, "membership expired")
	if ev.id != "x:expired" {
		t.Fatalf("got %+v, want the expired state", ev)
	}
	if now := f.ta.Clock.Now().UnixMilli(); now < expires {
		t.Errorf("denied %d ms before the expiry", expires-now)
	}
}

// TestOpenStreamsAreCounted: gatehouse_event_streams_open follows the
// streams (with --metrics-addr).
func TestOpenStreamsAreCounted(t *testing.T) {
	calls := &dataCalls{}
	ta := newTestApp(t, withTestDashboard(calls), func(c *Config, _ *dashboards.Registry) { c.MetricsAddr = "127.0.0.1:0" })
	ctx := context.Background()
	g, err := ta.store.CreateGroup(ctx, db.Actor{Email: "test"}, "team", "")
	if err != nil {
		t.Fatal(err)
	}
	u := ta.createUser(t, "member@example.com", false)
	if err := ta.store.AddMember(ctx, db.Actor{Email: "test"}, g.ID, u.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := ta.store.AddGrant(ctx, db.Actor{Email: "test"}, "test", g.ID); err != nil {
		t.Fatal(err)
	}
	c := ta.login(t, "member@example.com")
	open := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(scrape(t, ta.App), "\ngatehouse_event_streams_open "+want+"\n") {
			if time.Now().After(deadline) {
				t.Fatalf("gatehouse_event_streams_open is not %s", want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	a := openEvents(t, ta, c, "test", "a:10")
	b := openEvents(t, ta, c, "test", "a:10")
	open("2")
	a.close()
	b.close()
	open("0")
}

// TestManyStreamsLeaveNothingBehind opens many streams, wakes them all,
// closes them, and checks that goroutines come back to where they were,
// that the heap gives back what the streams took, and that it does not
// grow from one round to the next.
func TestManyStreamsLeaveNothingBehind(t *testing.T) {
	f := newAccessFixture(t)
	state := pageState(t, f.ta, f.memberC, "test", http.StatusOK)
	f.ta.store.AccessFeed() // the one watcher is not per stream
	f.memberC.CloseIdleConnections()
	const n = 300
	// One session holds them all here: what is measured is a stream's cost,
	// not the budget (TestStreamsPerSessionAreBounded).
	f.ta.streams = conns.New(conns.Limits{PerKey: n, PerSession: n, PerUser: n, Total: n})
	settle := func() (int, uint64) {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC() // a second cycle empties sync.Pool's victim cache
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapAlloc
	}
	time.Sleep(100 * time.Millisecond)
	g0, h0 := settle()
	var afterRound []uint64
	for round := range 4 {
		var streams []*eventStream
		for range n {
			streams = append(streams, openEventsUntracked(t, f.ta, f.memberC, "test", state))
		}
		g1, h1 := settle()
		if g1-g0 < n {
			t.Fatalf("%d streams added only %d goroutines: were they open?", n, g1-g0)
		}
		// Every stream wakes for a change, and goes back to sleep.
		if _, err := f.ta.store.CreateGroup(context.Background(), db.Actor{Email: "cli"}, fmt.Sprintf("round-%d", round), ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		for _, s := range streams {
			s.close()
		}
		streams = nil
		f.memberC.CloseIdleConnections()
		deadline := time.Now().Add(10 * time.Second)
		for {
			g2, h2 := settle()
			if g2 <= g0+2 {
				t.Logf("round %d: %d streams: %+d goroutines, heap %+d KiB; closed: %d goroutines (baseline %d), heap %+d KiB",
					round, n, g1-g0, (int64(h1)-int64(h0))/1024, g2, g0, (int64(h2)-int64(h0))/1024)
				afterRound = append(afterRound, h2)
				// What the open streams took is given back (what stays is
				// caches and pools the size of a few streams, not of 200).
				if kept, took := int64(h2)-int64(h0), int64(h1)-int64(h0); kept > took/3 {
					t.Errorf("round %d: %d KiB of the %d KiB the streams took are still in use after closing them", round, kept/1024, took/1024)
				}
				break
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("after closing %d streams: %d goroutines (baseline %d)\n%s", n, g2, g0, buf)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// A leak grows every round; a one-off (a cache filled, a pool grown:
	// round 0 is the warm-up) does not.
	if grew := int64(min(afterRound[2], afterRound[3])) - int64(afterRound[1]); grew > 2<<20 {
		t.Errorf("the heap grew by %d KiB over two more rounds of %d streams: something is kept per stream", grew/1024, n)
	}
}

// TestEventsAcrossInstancesOnPostgres: a change made through instance A's
// admin panel reaches a page open on instance B, through LISTEN/NOTIFY.
func TestEventsAcrossInstancesOnPostgres(t *testing.T) {
	dsn := postgrestest.Schema(t)
	a := newTestAppOn(t, dsn)
	b := newTestAppOn(t, dsn)
	ctx := context.Background()
	actor := db.Actor{Email: "test"}
	g, err := a.store.CreateGroup(ctx, actor, "sales", "")
	if err != nil {
		t.Fatal(err)
	}
	a.createUser(t, "admin@example.com", true)
	u := a.createUser(t, "viewer@example.com", false)
	if err := a.store.AddMember(ctx, actor, g.ID, u.ID, 0); err != nil {
		t.Fatal(err)
	}
	slug := a.registry.All()[0].Slug
	if err := a.store.AddGrant(ctx, actor, slug, g.ID); err != nil {
		t.Fatal(err)
	}
	viewer := b.login(t, "viewer@example.com")
	state := pageState(t, b, viewer, slug, http.StatusOK)
	s := openEvents(t, b, viewer, slug, state)

	admin := a.login(t, "admin@example.com")
	start := time.Now()
	res, body := a.post(t, admin, fmt.Sprintf("/admin/groups/%d/members/%d/remove", g.ID, u.ID), nil)
	if res.StatusCode >= 400 {
		t.Fatalf("remove through A: %d %s", res.StatusCode, body)
	}
	ev := s.next(t, "change through instance A")
	t.Logf("instance B's stream heard of A's change after %s", time.Since(start).Round(time.Millisecond))
	if ev.id != "x:not-member" {
		t.Fatalf("got %+v", ev)
	}
	// And back, and again: every change is heard.
	for i := range 3 {
		res, body = a.post(t, admin, fmt.Sprintf("/admin/groups/%d/members", g.ID), url.Values{"user_id": {strconv.FormatInt(u.ID, 10)}})
		if res.StatusCode >= 400 {
			t.Fatalf("add through A: %d %s", res.StatusCode, body)
		}
		if ev := s.next(t, "re-added through instance A"); !strings.HasPrefix(ev.id, "a:") {
			t.Fatalf("round %d: got %+v", i, ev)
		}
		res, body = a.post(t, admin, fmt.Sprintf("/admin/groups/%d/members/%d/remove", g.ID, u.ID), nil)
		if res.StatusCode >= 400 {
			t.Fatalf("remove through A: %d %s", res.StatusCode, body)
		}
		if ev := s.next(t, "removed through instance A"); ev.id != "x:not-member" {
			t.Fatalf("round %d: got %+v", i, ev)
		}
	}
}
