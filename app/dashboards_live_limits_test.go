package app

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/a-h/templ"

	"gatehouse/app/conns"
	"gatehouse/app/dashboards"
	"gatehouse/components/charts"
	"gatehouse/db"
)

// TestStreamsPerPageCloseTheOldest: a session opening the same dashboard's
// stream again and again (here a dashboard it cannot see, as in issue 25,
// where one member held 19,980) holds at most StreamsPerPage of them: each
// new one closes the oldest, which is told not to reconnect. Its other
// dashboards' streams are not touched.
func TestStreamsPerPageCloseTheOldest(t *testing.T) {
	f := newAccessFixture(t)
	per := f.ta.cfg.StreamsPerPage
	if per < 1 || per > 8 {
		t.Fatalf("StreamsPerPage = %d: a few per page is the default", per)
	}
	state := pageState(t, f.ta, f.outsiderC, "test", http.StatusForbidden)
	otherState := pageState(t, f.ta, f.outsiderC, dashboards.AccessSlug, http.StatusForbidden)
	other := openEvents(t, f.ta, f.outsiderC, dashboards.AccessSlug, otherState)
	var streams []*eventStream
	for range 3 * per {
		streams = append(streams, openEvents(t, f.ta, f.outsiderC, "test", state))
	}
	for i, s := range streams[:len(streams)-per] {
		// Its connection closes with it, rather than idle for the server's
		// idle timeout: a file and a goroutine per stream opened.
		if !s.res.Close {
			t.Fatalf("stream %d: its connection stays open after the stream (no Connection: close)", i)
		}
		if ev := s.next(t, "an old stream"); ev.name != "close" {
			t.Fatalf("stream %d: %+v, want close", i, ev)
		}
		s.ended(t)
	}
	for i, s := range streams[len(streams)-per:] {
		select {
		case ev, ok := <-s.events:
			t.Fatalf("one of the newest streams (%d) got %+v (open %v)", i, ev, ok)
		default:
		}
	}
	select {
	case ev, ok := <-other.events:
		t.Fatalf("the stream of another dashboard got %+v (open %v)", ev, ok)
	default:
	}
	// Held: the newest per page, the other page's, and the closed ones
	// until their handlers return.
	eventually(t, "closed streams released", func() bool { return f.ta.streams.Open() == per+1 })
}

// TestStreamsPerUserAreRefused: over all their sessions a user holds at
// most StreamsPerUser streams; past it the answer is 429 and nobody's open
// stream is closed. Another user is not affected.
func TestStreamsPerUserAreRefused(t *testing.T) {
	f := newAccessFixture(t)
	f.ta.streams = conns.New(conns.Limits{PerKey: 4, PerSession: 16, PerUser: 5, Total: 100})
	state := pageState(t, f.ta, f.memberC, "test", http.StatusOK)
	second := f.ta.login(t, f.member.Email)
	var streams []*eventStream
	for range 4 {
		streams = append(streams, openEvents(t, f.ta, f.memberC, "test", state))
	}
	streams = append(streams, openEvents(t, f.ta, second, "test", state))
	res := streamAnswer(t, f.ta, second, "test", state)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" || !res.Close {
		t.Fatalf("the user's sixth stream: %d (Retry-After %q, connection closed %v), want 429 and the connection closed", res.StatusCode, res.Header.Get("Retry-After"), res.Close)
	}
	for i, s := range streams {
		select {
		case ev, ok := <-s.events:
			t.Fatalf("stream %d got %+v (open %v) when another was refused", i, ev, ok)
		default:
		}
	}
	openEvents(t, f.ta, f.leadC, "test", pageState(t, f.ta, f.leadC, "test", http.StatusOK))
}

// TestStreamsServerWideAreRefused: past the server's budget every new
// stream gets 503, while ordinary pages and /healthz still answer.
func TestStreamsServerWideAreRefused(t *testing.T) {
	f := newAccessFixture(t)
	f.ta.streams = conns.New(conns.Limits{PerKey: 4, PerSession: 16, PerUser: 32, Total: 3})
	state := pageState(t, f.ta, f.memberC, "test", http.StatusOK)
	for range 3 {
		openEvents(t, f.ta, f.memberC, "test", state)
	}
	res := streamAnswer(t, f.ta, f.leadC, "test", "a:11")
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("a stream past the server's budget: %d (Retry-After %q), want 503", res.StatusCode, res.Header.Get("Retry-After"))
	}
	pageState(t, f.ta, f.leadC, "test", http.StatusOK)
	if res, _ := f.ta.get(t, f.ta.client(), "/healthz", false); res.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %d", res.StatusCode)
	}
}

// eventually waits until cond holds; the bound only keeps a broken build
// from hanging.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
	}
}

// streamAnswer asks for an event stream as c and returns the response's
// status and headers, closing the stream if it was opened.
func streamAnswer(t testing.TB, ta *testApp, c *http.Client, slug, state string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ta.Server.URL+"/dashboards/"+slug+"/events?state="+state, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// TestOneSessionTwoDashboardsEachGetTheirOwnDecision: one session has two
// dashboards open; a change wakes both streams at once, and the decisions
// they share (one per session and dashboard) must not cross: granting the
// second dashboard tells its page, and not the first's, and a later loss
// of the first tells the first page its own state.
func TestOneSessionTwoDashboardsEachGetTheirOwnDecision(t *testing.T) {
	ctx := context.Background()
	cli := db.Actor{Email: "cli"}
	calls := &dataCalls{}
	ta := newTestApp(t, withTestDashboard(calls), func(_ *Config, r *dashboards.Registry) {
		r.MustRegister(&dashboards.Dashboard{Slug: "second", Title: "Second board", Panels: []*dashboards.Panel{
			{ID: "only", Title: "Only panel", Data: func(context.Context, dashboards.Query) (templ.Component, error) {
				return charts.Empty("second data"), nil
			}},
		}})
	})
	team, err := ta.store.CreateGroup(ctx, cli, "team", "")
	if err != nil {
		t.Fatal(err)
	}
	u := ta.createUser(t, "two@example.com", false)
	if err := ta.store.AddMember(ctx, cli, team.ID, u.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := ta.store.AddGrant(ctx, cli, "test", team.ID); err != nil {
		t.Fatal(err)
	}
	c := ta.login(t, u.Email)
	testState := pageState(t, ta, c, "test", http.StatusOK)
	secondState := pageState(t, ta, c, "second", http.StatusForbidden)
	first := openEvents(t, ta, c, "test", testState)
	second := openEvents(t, ta, c, "second", secondState)
	other := otherProcess(t, ta)

	if err := other.AddGrant(ctx, cli, "second", team.ID); err != nil {
		t.Fatal(err)
	}
	if ev := second.next(t, "second granted"); ev.name != "access" || ev.id != "a:1" {
		t.Fatalf("the second page after its grant: %+v, want access a:1", ev)
	}
	if err := other.RemoveGrant(ctx, cli, "test", team.ID); err != nil {
		t.Fatal(err)
	}
	want := pageState(t, ta, c, "test", http.StatusForbidden)
	if ev := first.next(t, "test's grant removed"); ev.name != "access" || ev.id != want {
		t.Fatalf("the first page's next event: %+v, want access %s (nothing for the second's grant)", ev, want)
	}
}
