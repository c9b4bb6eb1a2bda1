package app

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

// TestSoakAStreamFloodAndAPasskeyFloodStarveNoOne: while one session
// opens event streams to a dashboard it cannot see, one after another
// without closing any (as in issue 25), and another client floods passkey
// begins, a third person keeps logging in, opening the dashboard, its
// panel and its event stream, and asking /healthz: every one of their
// requests answers as it should. The flooding session holds only
// StreamsPerPage streams at the end, and once everyone has gone the
// goroutines are back where they were. Bounded in count (the floods stop
// when the third person is done, or at their caps), not in time.
func TestSoakAStreamFloodAndAPasskeyFloodStarveNoOne(t *testing.T) {
	if testing.Short() {
		t.Skip("a soak")
	}
	ctx := context.Background()
	calls := &dataCalls{}
	ta := newPasskeyApp(t, withTestDashboard(calls), func(c *Config, _ *dashboards.Registry) { c.TrustProxy = true })
	team, err := ta.store.CreateGroup(ctx, db.Actor{Email: "test"}, "team", "")
	if err != nil {
		t.Fatal(err)
	}
	third := ta.createUser(t, "third@example.com", false)
	if err := ta.store.AddMember(ctx, db.Actor{Email: "test"}, team.ID, third.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := ta.store.AddGrant(ctx, db.Actor{Email: "test"}, "test", team.ID); err != nil {
		t.Fatal(err)
	}
	ta.createUser(t, "flood@example.com", false)
	abuser := forwardedFor(ta.login(t, "flood@example.com"), "192.0.2.66")
	deniedState := pageState(t, ta, abuser, "test", http.StatusForbidden)
	ta.store.AccessFeed()

	settle := func() int {
		runtime.GC()
		return runtime.NumGoroutine()
	}
	g0 := settle()

	stop := make(chan struct{})
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	var floods sync.WaitGroup
	var streamsOpened, streamsRefused, begins, beginsFailed atomic.Int64
	var mu sync.Mutex
	var cancels []context.CancelFunc
	var readers sync.WaitGroup
	closeStreams := func() {
		mu.Lock()
		for _, cancel := range cancels {
			cancel()
		}
		mu.Unlock()
		readers.Wait()
	}
	t.Cleanup(closeStreams) // before the server closes, should the test fail
	const maxStreams, maxBegins = 2000, 3000
	for range 4 { // the stream flood: opens and never closes
		floods.Add(1)
		go func() {
			defer floods.Done()
			for !stopped() && streamsOpened.Load()+streamsRefused.Load() < maxStreams {
				sctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(sctx, http.MethodGet, ta.Server.URL+"/dashboards/test/events?state="+deniedState, nil)
				res, err := abuser.Do(req)
				if err != nil || res.StatusCode != http.StatusOK {
					streamsRefused.Add(1)
					if err == nil {
						res.Body.Close()
					}
					cancel()
					continue
				}
				streamsOpened.Add(1)
				mu.Lock()
				cancels = append(cancels, cancel)
				mu.Unlock()
				readers.Add(1)
				go func() { // read until the server ends it
					defer readers.Done()
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}()
			}
		}()
	}
	for range 2 { // the passkey flood, from one address
		floods.Add(1)
		go func() {
			defer floods.Done()
			c := forwardedFor(ta.client(), "203.0.113.9")
			for !stopped() && begins.Load() < maxBegins {
				req, _ := http.NewRequest(http.MethodPost, ta.Server.URL+"/login/passkey/begin", strings.NewReader(`{}`))
				req.Header.Set("Content-Type", "application/json")
				res, err := c.Do(req)
				begins.Add(1)
				if err != nil {
					beginsFailed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					beginsFailed.Add(1)
				}
			}
		}()
	}

	// The third person, meanwhile.
	const rounds = 12
	for i := range rounds {
		c := forwardedFor(ta.login(t, third.Email), "198.51.100.20")
		state := pageState(t, ta, c, "test", http.StatusOK)
		if res, body := ta.get(t, c, "/dashboards/test/panels/open", true); res.StatusCode != http.StatusOK {
			t.Fatalf("round %d: the panel answered %d: %s", i, res.StatusCode, body)
		}
		if res, body := ta.get(t, ta.client(), "/healthz", false); res.StatusCode != http.StatusOK {
			t.Fatalf("round %d: /healthz answered %d: %s", i, res.StatusCode, body)
		}
		s := openEventsUntracked(t, ta, c, "test", state)
		s.close()
		if res, out := ta.postJSON(t, forwardedFor(ta.client(), "198.51.100.20"), "/login/passkey/begin", []byte(`{}`)); res.StatusCode != http.StatusOK {
			t.Fatalf("round %d: the third person's passkey begin answered %d: %s", i, res.StatusCode, out)
		}
		c.CloseIdleConnections()
	}
	close(stop)
	floods.Wait()
	t.Logf("during %d rounds: %d streams opened by one session (%d refused), %d passkey begins from one address (%d failed)",
		rounds, streamsOpened.Load(), streamsRefused.Load(), begins.Load(), beginsFailed.Load())
	if streamsOpened.Load() < int64(4*ta.cfg.StreamsPerPage) || begins.Load() < int64(2*db.MaxChallengesPerClient) {
		t.Fatalf("the floods barely ran (%d streams, %d begins): the soak proved nothing", streamsOpened.Load(), begins.Load())
	}
	if beginsFailed.Load() != 0 {
		t.Errorf("%d of the flood's own passkey begins failed: each should replace its oldest", beginsFailed.Load())
	}
	// The flooding session holds StreamsPerPage streams, the rest closed.
	eventually(t, "the flood's closed streams released", func() bool { return ta.streams.Open() == ta.cfg.StreamsPerPage })
	if n := challengesFrom(t, ta, "client", "203.0.113.9"); n > db.MaxChallengesPerClient {
		t.Errorf("the passkey flood holds %d ceremonies, more than %d", n, db.MaxChallengesPerClient)
	}

	// Everyone leaves: goroutines come back.
	closeStreams()
	abuser.CloseIdleConnections()
	ta.client().CloseIdleConnections()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	var g int
	eventually(t, "goroutines back to the baseline", func() bool {
		g = settle()
		return g <= g0+3 && ta.streams.Open() == 0
	})
	t.Logf("goroutines: %d before, %d after", g0, g)
}
