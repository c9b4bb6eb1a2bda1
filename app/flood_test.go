package app

import (
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

// TestLoginTimingDoesNotRevealAccounts compares the median time of a login
// with an unknown email and one with a known email and a wrong password,
// with the real argon2 parameters. The ratio is logged; it must stay within 25%.
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
	var known, unknown []time.Duration
	for i := 0; i < 30; i++ { // interleaved so machine noise hits both alike
		known = append(known, measure("ann@example.com"))
		unknown = append(unknown, measure("nobody@example.com"))
	}
	mk, mu := median(known), median(unknown)
	ratio := float64(max(mk, mu)) / float64(min(mk, mu))
	t.Logf("median login time: known email %v, unknown email %v, ratio %.3f", mk, mu, ratio)
	if ratio > 1.25 {
		t.Errorf("median times differ by %.0f%% (known %v, unknown %v): an attacker can tell accounts apart", (ratio-1)*100, mk, mu)
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
	if slowestRefusal > 3*time.Second {
		t.Errorf("a refusal took %v", slowestRefusal)
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
