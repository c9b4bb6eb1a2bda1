package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/db"
)

// BenchmarkSCIMProvisioning provisions 10,000 users and 500 groups with
// 50 members each over SCIM (in process, through the whole server: POST
// /Users, then POST /Groups and a PATCH adding the members, as Okta's
// Group Push and Entra do), while one goroutine requests an allowed panel
// as fast as it can. 50 of the pushed groups are mapped to Gatehouse
// groups, so pushes change memberships too. "connections=1" sends one
// request at a time, as an IdP's provisioning cycle does; "connections=4"
// four at once, flat out.
//
// It reports the total time (s/op), users/s, and the allowed-panel rate
// before (panels/s-idle), beside a goroutine that only spins
// (panels/s-beside-spin, the cost of sharing the CPU alone) and while it
// runs (panels/s-during). "paced" sends one request at a time at 100 per
// second, above what IdPs send in a provisioning cycle, for 1,000 users
// and 50 groups: the panel rate a team sees while its IdP provisions. One
// iteration is the whole run:
//
//	go test ./app -run '^$' -bench SCIMProvisioning -benchtime 1x
func BenchmarkSCIMProvisioning(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("connections=%d", workers), func(b *testing.B) { benchSCIMProvisioning(b, workers, 10000, 500, 0) })
	}
	b.Run("paced=100/s", func(b *testing.B) { benchSCIMProvisioning(b, 1, 1000, 50, 100) })
}

func benchSCIMProvisioning(b *testing.B, workers, users, groups int, perSecond int) {
	const perGroup, mapped = 50, 50
	var tick <-chan time.Time
	if perSecond > 0 {
		t := time.NewTicker(time.Second / time.Duration(perSecond))
		defer t.Stop()
		tick = t.C
	}
	pace := func() {
		if tick != nil {
			<-tick
		}
	}
	f := newBenchFixture(b)
	ctx := context.Background()
	tok, err := f.ta.store.CreateSCIMToken(ctx, db.Actor{Email: "bench"}, "bench")
	if err != nil {
		b.Fatal(err)
	}
	scim := func(method, path, body string) (int, map[string]any) {
		r := httptest.NewRequest(method, "/scim/v2"+path, strings.NewReader(body))
		r.RemoteAddr = "192.0.2.9:1234"
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("Content-Type", "application/scim+json")
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		var out map[string]any
		if w.Body.Len() > 0 {
			_ = json.Unmarshal(w.Body.Bytes(), &out)
		}
		return w.Code, out
	}
	// panels requests the allowed panel until stop is closed and returns
	// how many it served per second.
	panels := func(stop <-chan struct{}) float64 {
		start := time.Now()
		n := 0
		for {
			select {
			case <-stop:
				return float64(n) / time.Since(start).Seconds()
			default:
			}
			w := httptest.NewRecorder()
			f.h.ServeHTTP(w, f.get("/dashboards/bench/panels/static", f.member))
			if w.Code != http.StatusOK {
				b.Errorf("panel during provisioning: %d", w.Code)
				return 0
			}
			n++
		}
	}
	var idle, control, during, total float64
	run := 0
	for b.Loop() {
		run++
		prefix := fmt.Sprintf("r%d", run)
		for i := range mapped {
			g, err := f.ta.store.CreateGroup(ctx, db.Actor{Email: "bench"}, fmt.Sprintf("%s-mapped-%d", prefix, i), "")
			if err != nil {
				b.Fatal(err)
			}
			if err := f.ta.store.MapIdPGroup(ctx, db.Actor{Email: "bench"}, g.ID, fmt.Sprintf("%s IdP group %d", prefix, i)); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		stop := make(chan struct{})
		go func() { time.Sleep(2 * time.Second); close(stop) }()
		idle = panels(stop)
		// The control: the same, beside one goroutine that only spins, as
		// a provisioning connection keeps a core busy. On a machine with
		// spare cores it equals idle; on a loaded one it shows what CPU
		// sharing alone costs.
		stop = make(chan struct{})
		spun := make(chan struct{})
		go func() {
			defer close(spun)
			for x := uint64(1); ; x = x*6364136223846793005 + 1 {
				select {
				case <-stop:
					return
				default:
				}
				if x == 0 {
					b.Log(x) // never: keeps the loop from being optimised away
				}
			}
		}()
		go func() { time.Sleep(2 * time.Second); close(stop) }()
		control = panels(stop)
		<-spun
		b.StartTimer()

		stop = make(chan struct{})
		rate := make(chan float64)
		go func() { rate <- panels(stop) }()
		start := time.Now()
		ids := make([]string, users)
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= users {
						return
					}
					pace()
					body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"%s.user%d@corp.example",`+
						`"name":{"givenName":"User","familyName":"%d"},"externalId":"ext-%s-%d","active":true}`, prefix, i, i, prefix, i)
					code, out := scim("POST", "/Users", body)
					if code != http.StatusCreated {
						b.Errorf("POST /Users: %d %v", code, out)
						return
					}
					ids[i] = out["id"].(string)
				}
			})
		}
		wg.Wait()
		next.Store(0)
		for range workers {
			wg.Go(func() {
				for {
					g := int(next.Add(1)) - 1
					if g >= groups {
						return
					}
					pace()
					code, out := scim("POST", "/Groups", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"%s IdP group %d"}`, prefix, g))
					if code != http.StatusCreated {
						b.Errorf("POST /Groups: %d %v", code, out)
						return
					}
					var members []string
					for m := range perGroup {
						members = append(members, fmt.Sprintf(`{"value":"%s"}`, ids[(g*users/groups+m*7)%users]))
					}
					pace()
					code, out = scim("PATCH", "/Groups/"+out["id"].(string), `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],`+
						`"Operations":[{"op":"add","path":"members","value":[`+strings.Join(members, ",")+`]}]}`)
					if code != http.StatusNoContent {
						b.Errorf("PATCH /Groups: %d %v", code, out)
						return
					}
				}
			})
		}
		wg.Wait()
		total = time.Since(start).Seconds()
		close(stop)
		during = <-rate
	}
	b.ReportMetric(float64(users)/total, "users/s")
	b.ReportMetric(idle, "panels/s-idle")
	b.ReportMetric(during, "panels/s-during")
	b.ReportMetric(control, "panels/s-beside-spin")
	if idle > 0 && control > 0 {
		b.ReportMetric(100*(idle-during)/idle, "%-panel-drop")
		b.ReportMetric(100*(control-during)/control, "%-drop-vs-spin")
	}
}
