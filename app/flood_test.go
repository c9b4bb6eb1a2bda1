package app

import (
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

// TestLoginTimingDoesNotRevealAccounts compares the time of a login with
// an unknown email and one with a known email and a wrong password, with
// the real argon2 parameters; the two must stay within 25%.
//
// The machine may be busy with other work (a parallel go test on two
// cores), so the statistic is built to shrug off noise and still catch a
// real difference: logins are measured in back-to-back pairs, in random
// order within each pair, so a slow spell hits both sides of a pair; the
// statistic is the median of the per-pair ratios (a few pairs hit by a
// spike do not move it); and a round that exceeds the bound is measured
// again, failing only when three rounds in a row do. A real leak (the
// dummy hash skipped, say: a ratio of 10 or more) exceeds the bound in
// every round; TestPairedRatioSeparatesSignalFromNoise checks the
// statistic on made-up data.
func TestLoginTimingDoesNotRevealAccounts(t *testing.T) {
	if testing.Short() {
		t.Skip("timing measurement; skipped with -short")
	}
	ta := newTestApp(t, func(c *Config, _ *dashboards.Registry) {
		c.AccountFailures, c.IPFailures = 1000, 1000
	})
	ta.hasher = db.NewHasher(db.PasswordParams, 0, 5*time.Second)
	hash, _ := ta.hasher.Hash(t.Context(), testPassword)
	if _, err := ta.store.CreateUser(t.Context(), db.Actor{}, db.NewUser{Email: "ann@example.com", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	measure := func(email string) time.Duration {
		start := time.Now()
		res, _ := ta.post(t, ta.client(), "/login", url.Values{"email": {email}, "password": {"wrong wrong wrong"}})
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: %d", email, res.StatusCode)
		}
		return time.Since(start)
	}
	measure("warm@example.com")
	const bound = 1.25
	var ratio float64
	for round := 1; round <= 3; round++ {
		var known, unknown []time.Duration
		for i := 0; i < 40; i++ {
			if rand.IntN(2) == 0 {
				known = append(known, measure("ann@example.com"))
				unknown = append(unknown, measure("nobody@example.com"))
			} else {
				unknown = append(unknown, measure("nobody@example.com"))
				known = append(known, measure("ann@example.com"))
			}
		}
		ratio = pairedRatio(known, unknown)
		t.Logf("round %d: median known %v, unknown %v; median paired ratio %.3f", round, median(known), median(unknown), ratio)
		if max(ratio, 1/ratio) <= bound {
			return
		}
	}
	t.Errorf("known and unknown emails take measurably different times (median paired ratio %.3f in three rounds, bound %.2f): an attacker can tell accounts apart", ratio, bound)
}

// pairedRatio is the median of a[i]/b[i]: how much longer a takes than b,
// measured pair by pair.
func pairedRatio(a, b []time.Duration) float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = float64(a[i]) / float64(max(b[i], 1))
	}
	slices.Sort(r)
	if len(r)%2 == 0 {
		return (r[len(r)/2-1] + r[len(r)/2]) / 2
	}
	return r[len(r)/2]
}

// TestPairedRatioSeparatesSignalFromNoise: on made-up timings with heavy,
// bursty noise the statistic stays within the bound when both sides cost
// the same, and exceeds it when one side costs 40% more.
func TestPairedRatioSeparatesSignalFromNoise(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	gen := func(cost float64) ([]time.Duration, []time.Duration) {
		var a, b []time.Duration
		for i := 0; i < 40; i++ {
			load := 1.0
			if rng.IntN(4) == 0 { // a busy spell: both of the pair slow down
				load = 1 + 3*rng.Float64()
			}
			spike := func() float64 { // one request alone caught by a spike
				if rng.IntN(10) == 0 {
					return 1 + 2*rng.Float64()
				}
				return 1 + 0.1*rng.Float64()
			}
			a = append(a, time.Duration(25e6*cost*load*spike()))
			b = append(b, time.Duration(25e6*load*spike()))
		}
		return a, b
	}
	for i := 0; i < 20; i++ {
		if r := pairedRatio(gen(1)); r > 1.25 || r < 1/1.25 {
			t.Errorf("equal costs: ratio %.3f outside the bound", r)
		}
		if r := pairedRatio(gen(1.4)); r <= 1.25 {
			t.Errorf("a 40%% difference: ratio %.3f within the bound", r)
		}
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestArgonFloodIsBounded sends 64 concurrent logins with the real argon2
// parameters: peak heap stays within the hashing semaphore's bound plus
// slack, the excess is refused quickly with 503, and a logged-in viewer's
// panel requests keep being served meanwhile.
func TestArgonFloodIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("memory measurement; skipped with -short")
	}
	calls := &dataCalls{}
	ta := newTestApp(t, withTestDashboard(calls), func(c *Config, _ *dashboards.Registry) {
		c.AccountFailures, c.IPFailures = 1000, 1000
	})
	ta.createUser(t, "viewer@example.com", true)
	viewer := ta.login(t, "viewer@example.com")
	// The flood targets an account whose hash has the real parameters.
	ta.hasher = db.NewHasher(db.PasswordParams, 0, 300*time.Millisecond)
	ta.createUser(t, "target@example.com", false)
	slots := ta.hasher.Slots()

	runtime.GC()
	base := heapBytes()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			if h := heapBytes(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()

	var panelsOK, panelsBad atomic.Int64
	floodDone := make(chan struct{})
	var poller sync.WaitGroup
	poller.Add(1)
	go func() {
		defer poller.Done()
		for {
			select {
			case <-floodDone:
				return
			default:
			}
			res, _ := ta.get(t, viewer, "/dashboards/test/panels/open", true)
			if res.StatusCode == http.StatusOK {
				panelsOK.Add(1)
			} else {
				panelsBad.Add(1)
			}
		}
	}()

	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	var slowestRefusal time.Duration
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			res, _ := ta.post(t, ta.client(), "/login", url.Values{"email": {"target@example.com"}, "password": {"wrong wrong wrong"}})
			mu.Lock()
			defer mu.Unlock()
			codes[res.StatusCode]++
			if res.StatusCode == http.StatusServiceUnavailable {
				slowestRefusal = max(slowestRefusal, time.Since(start))
			}
		}()
	}
	wg.Wait()
	close(floodDone)
	poller.Wait() // its last request must finish before the server closes
	close(stop)
	sampler.Wait()

	perHash := uint64(db.PasswordParams.Memory) * 1024
	// Live argon2 memory is at most slots × 19 MiB. With GOGC=100 the heap
	// may grow to twice the live size before a collection ends, plus what is
	// allocated while it runs: allow three times, plus 32 MiB. Without the
	// semaphore, 64 logins would need 64 × 19 MiB = 1.2 GiB.
	bound := base + 3*uint64(slots)*perHash + 32<<20
	t.Logf("statuses %v; heap base %d MiB, peak %d MiB, bound %d MiB (%d slots); slowest refusal %v; panels served during the flood: %d ok, %d failed",
		codes, base>>20, peak.Load()>>20, bound>>20, slots, slowestRefusal, panelsOK.Load(), panelsBad.Load())
	if peak.Load() > bound {
		t.Errorf("peak heap %d MiB exceeds the bound %d MiB", peak.Load()>>20, bound>>20)
	}
	if codes[http.StatusServiceUnavailable] == 0 {
		t.Error("no login was shed")
	}
	if codes[http.StatusUnauthorized] == 0 {
		t.Error("no login was served")
	}
	if panelsOK.Load() == 0 || panelsBad.Load() != 0 {
		t.Errorf("panel requests during the flood: %d ok, %d failed", panelsOK.Load(), panelsBad.Load())
	}
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
