package filedash

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/app/dashboards"
)

// BenchmarkThousandViewersPostgres: 1,000 viewers in two group sets poll
// one PostgreSQL panel (refresh 1s) as fast as they can for 3 seconds (per
// b.N). It reports panels served per second and queries per second at the
// database, counted by PostgreSQL itself (scans of the table). The goal:
// one query per panel per interval per group set, here 2 per second.
//
//	GATEHOUSE_TEST_POSTGRES=… go test ./app/filedash -run '^$' -bench ThousandViewers -benchtime 1x
func BenchmarkThousandViewersPostgres(b *testing.B) {
	be := postgresBackend(b)
	f := newFixture(b, be)
	writeFile(b, f.dir, "live.yaml", `slug: live
title: Live
source: shop
panels:
  - id: mine
    title: Mine
    chart: bar
    refresh: 1s
    sql: SELECT region AS label, SUM(amount) AS value FROM orders WHERE region IN (:viewer_groups) GROUP BY region
`)
	if err := f.srv.Reload(); err != nil {
		b.Fatal(err)
	}
	p := f.reg.Get("live").Panel("mine")
	scans := func() int64 {
		var n int64
		// Statistics reach the view when a backend flushes them (at most a
		// second later on PostgreSQL 15+): wait for that.
		time.Sleep(1500 * time.Millisecond)
		if err := be.rw.QueryRow(`SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'orders' AND schemaname = current_schema()`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
	const viewers, run = 1000, 3 * time.Second
	var served, queries, seconds float64
	before := scans()
	b.ResetTimer()
	for b.Loop() {
		q0 := f.srv.Queries.Load()
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range viewers {
			v := f.north
			if i%2 == 1 {
				v = f.se
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := 0
				for time.Since(start) < run {
					c, err := p.Data(context.Background(), dashboards.Query{Store: f.store, Viewer: v, Now: time.Now()})
					if err != nil {
						b.Error(err)
						return
					}
					var sb strings.Builder
					_ = c.Render(context.Background(), &sb)
					n++
				}
				mu.Lock()
				served += float64(n)
				mu.Unlock()
			}()
		}
		wg.Wait()
		seconds += time.Since(start).Seconds()
		queries += float64(f.srv.Queries.Load() - q0)
	}
	b.StopTimer()
	atDB := float64(scans() - before)
	b.ReportMetric(served/seconds, "panels/s")
	b.ReportMetric(queries/seconds, "queries/s")
	b.ReportMetric(atDB/seconds, "db-scans/s")
}
