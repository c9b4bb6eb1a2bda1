package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse/db"
	"gatehouse/db/postgrestest"
)

// The live-access benchmarks measure; they do not assert speed. They run
// only with GATEHOUSE_BENCH_LIVE=1 and print their figures (BENCHMARKS.md
// records them, with the machine they ran on):
//
//	GATEHOUSE_BENCH_LIVE=1 go test ./e2e -run 'TestBenchLive' -count=1 -v -timeout 30m
//
// GATEHOUSE_BENCH_STREAMS (default 10000) and GATEHOUSE_BENCH_USERS (100)
// size the fan-out run; GATEHOUSE_BENCH_FLIPS (20) the browser runs.

func benchEnabled(t *testing.T) {
	t.Helper()
	if os.Getenv("GATEHOUSE_BENCH_LIVE") != "1" {
		t.Skip("set GATEHOUSE_BENCH_LIVE=1 to run the live-access benchmarks")
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// cliStdin runs a gatehouse command with stdin.
func (s *server) cliStdin(t *testing.T, stdin string, args ...string) {
	t.Helper()
	cmd := exec.Command(s.bin, append(args, "--data", s.Data)...)
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// rssKiB reads a process's resident set size.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no VmRSS")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// cpuTicks reads a process's user+system CPU time in clock ticks.
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}

// httpLogin logs email in and returns the session cookie.
func httpLogin(t *testing.T, base, email, password string) *http.Cookie {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.PostForm(base+"/login", url.Values{"email": {email}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	u, _ := url.Parse(base)
	for _, ck := range jar.Cookies(u) {
		if strings.Contains(ck.Name, "gatehouse_session") {
			return ck
		}
	}
	t.Fatalf("login %s: status %d, no session cookie", email, res.StatusCode)
	return nil
}

var pageStateRE = regexp.MustCompile(`/events\?state=([^"]*)"`)

// rawStream is one event stream read straight off a TCP connection (a
// net/http client would cost two goroutines and two buffers per stream in
// this process, which is not the one measured).
type rawStream struct {
	conn net.Conn
	got  chan time.Time // when each "access" event arrived
}

func openRaw(t *testing.T, addr, path string, ck *http.Cookie) *rawStream {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nCookie: %s=%s\r\nAccept: text/event-stream\r\n\r\n", path, addr, ck.Name, ck.Value)
	br := bufio.NewReaderSize(conn, 512)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		t.Fatalf("stream: %q %v", status, err)
	}
	s := &rawStream{conn: conn, got: make(chan time.Time, 4)}
	go func() {
		defer close(s.got)
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if string(line) == "event: access\n" {
				s.got <- time.Now()
			}
		}
	}()
	return s
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// TestBenchLiveFanOut opens GATEHOUSE_BENCH_STREAMS event streams (spread
// over GATEHOUSE_BENCH_USERS users) on one server and measures its memory,
// its CPU while nothing changes, and the time from a change's commit to
// each stream's event, over rounds that take the dashboard away from every
// user and give it back.
func TestBenchLiveFanOut(t *testing.T) {
	benchEnabled(t)
	nStreams, nUsers := envInt("GATEHOUSE_BENCH_STREAMS", 10000), envInt("GATEHOUSE_BENCH_USERS", 100)
	srv := startServer(t, nil, "--demo")
	const password = "bench-password-for-live-7731"
	start := time.Now()
	for i := range nUsers {
		email := fmt.Sprintf("bench%03d@example.com", i)
		srv.cliStdin(t, password+"\n", "users", "create", email, "--password-stdin")
		srv.cli(t, "groups", "add-member", "sales", email)
	}
	t.Logf("created %d users in %s", nUsers, time.Since(start).Round(time.Second))
	addr := strings.TrimPrefix(srv.URL, "http://")
	cookies := make([]*http.Cookie, nUsers)
	state := ""
	for i := range nUsers {
		cookies[i] = httpLogin(t, srv.URL, fmt.Sprintf("bench%03d@example.com", i), password)
	}
	{ // the page's state, as its sse-connect says
		req, _ := http.NewRequest("GET", srv.URL+"/dashboards/sales", nil)
		req.AddCookie(cookies[0])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		m := pageStateRE.FindSubmatch(b)
		if m == nil {
			t.Fatalf("no event stream on the page (%d)", res.StatusCode)
		}
		state = string(m[1])
	}
	time.Sleep(time.Second)
	rss0 := rssKiB(t, srv.pid)
	idle := 10 * time.Second
	c00 := cpuTicks(t, srv.pid)
	time.Sleep(idle)
	c01 := cpuTicks(t, srv.pid)

	start = time.Now()
	streams := make([]*rawStream, nStreams)
	for i := range streams {
		streams[i] = openRaw(t, addr, "/dashboards/sales/events?state="+state, cookies[i%nUsers])
	}
	t.Logf("opened %d streams in %s", nStreams, time.Since(start).Round(time.Millisecond))
	defer func() {
		for _, s := range streams {
			s.conn.Close()
		}
	}()
	time.Sleep(2 * time.Second)
	rss1 := rssKiB(t, srv.pid)
	c0 := cpuTicks(t, srv.pid)
	time.Sleep(idle)
	c1 := cpuTicks(t, srv.pid)
	t.Logf("RSS: %d MiB before, %d MiB with %d streams open: %.1f KiB per stream", rss0/1024, rss1/1024, nStreams, float64(rss1-rss0)/float64(nStreams))
	t.Logf("CPU while nothing changes: %d ticks (1/100 s) in %s with no stream open, %d ticks with %d streams open", c01-c00, idle, c1-c0, nStreams)

	store, err := db.Open(context.Background(), db.Config{DataDir: srv.Data})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	sales, err := store.GroupByName(ctx, "sales")
	if err != nil {
		t.Fatal(err)
	}
	actor := db.Actor{Email: "bench"}
	var all []time.Duration
	var lasts []time.Duration
	rounds := envInt("GATEHOUSE_BENCH_ROUNDS", 10)
	for round := range rounds {
		var err error
		if round%2 == 0 {
			err = store.RemoveGrant(ctx, actor, "sales", sales.ID)
		} else {
			err = store.AddGrant(ctx, actor, "sales", sales.ID)
		}
		committed := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		lat := make([]time.Duration, 0, nStreams)
		for i, s := range streams {
			select {
			case at, ok := <-s.got:
				if !ok {
					t.Fatalf("round %d: stream %d ended", round, i)
				}
				lat = append(lat, at.Sub(committed))
			case <-time.After(30 * time.Second):
				t.Fatalf("round %d: stream %d got no event within 30s", round, i)
			}
		}
		last := slices.Max(lat)
		lasts = append(lasts, last)
		all = append(all, lat...)
		t.Logf("round %d: p50 %s, p99 %s, last stream %s", round, percentile(lat, 0.5).Round(time.Millisecond),
			percentile(lat, 0.99).Round(time.Millisecond), last.Round(time.Millisecond))
		time.Sleep(500 * time.Millisecond)
	}
	rss2 := rssKiB(t, srv.pid)
	t.Logf("over %d rounds × %d streams: p50 %s, p99 %s, max %s; last stream per round: p50 %s, max %s; RSS after the rounds %d MiB",
		rounds, nStreams, percentile(all, 0.5).Round(time.Millisecond), percentile(all, 0.99).Round(time.Millisecond),
		slices.Max(all).Round(time.Millisecond), percentile(lasts, 0.5).Round(time.Millisecond), slices.Max(lasts).Round(time.Millisecond), rss2/1024)
}

// flipTimes toggles alice's access with change(lose) and measures, in
// tab, the time from the change's commit to the page showing it.
func flipTimes(t *testing.T, tb *tab, n int, change func(lose bool)) (lose, regain []time.Duration) {
	t.Helper()
	full := func(v pageView) bool { return v.Panels == 5 && v.Forms == 0 }
	for range n {
		change(true)
		committed := time.Now()
		tb.waitView(t, "the denial", liveBound, oneDenial)
		lose = append(lose, time.Since(committed))
		change(false)
		committed = time.Now()
		tb.waitView(t, "the panels", liveBound, full)
		regain = append(regain, time.Since(committed))
		time.Sleep(200 * time.Millisecond)
	}
	return lose, regain
}

func logFlips(t *testing.T, what string, lose, regain []time.Duration) {
	t.Logf("%s, %d flips each way: denial visible p50 %s p95 %s max %s; panels back p50 %s p95 %s max %s", what, len(lose),
		percentile(lose, 0.5).Round(time.Millisecond), percentile(lose, 0.95).Round(time.Millisecond), slices.Max(lose).Round(time.Millisecond),
		percentile(regain, 0.5).Round(time.Millisecond), percentile(regain, 0.95).Round(time.Millisecond), slices.Max(regain).Round(time.Millisecond))
}

// TestBenchLiveBrowserSQLite: change to denial visible in chromium, with
// the change made by another process on the same SQLite file.
func TestBenchLiveBrowserSQLite(t *testing.T) {
	benchEnabled(t)
	b := newBrowser(t)
	srv := startServer(t, nil, "--demo")
	alice := b.newTab(t, "alice")
	logIn(t, alice, srv.URL, "alice@demo.example", demoPassword)
	alice.open(t, srv.URL+"/dashboards/sales")
	waitDashboard(t, alice)
	store, err := db.Open(context.Background(), db.Config{DataDir: srv.Data})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	g, err := store.GroupByName(ctx, "sales")
	if err != nil {
		t.Fatal(err)
	}
	u, err := store.UserByEmail(ctx, "alice@demo.example")
	if err != nil {
		t.Fatal(err)
	}
	actor := db.Actor{Email: "bench"}
	lose, regain := flipTimes(t, alice, envInt("GATEHOUSE_BENCH_FLIPS", 20), func(lose bool) {
		var err error
		if lose {
			err = store.RemoveMember(ctx, actor, g.ID, u.ID)
		} else {
			err = store.AddMember(ctx, actor, g.ID, u.ID, 0)
		}
		if err != nil {
			t.Fatal(err)
		}
	})
	logFlips(t, "SQLite, change by another process", lose, regain)
	alice.assertClean(t)
}

// TestBenchLivePostgresTwoInstances: alice's page is open on instance B;
// an admin removes and re-adds her through instance A's admin panel.
func TestBenchLivePostgresTwoInstances(t *testing.T) {
	benchEnabled(t)
	dsn := postgrestest.Schema(t)
	srvA := startServer(t, nil, "--demo", "--db", dsn)
	srvB := startServer(t, nil, "--demo", "--db", dsn)
	b := newBrowser(t)
	alice := b.newTab(t, "alice")
	logIn(t, alice, srvB.URL, "alice@demo.example", demoPassword)
	alice.open(t, srvB.URL+"/dashboards/sales")
	waitDashboard(t, alice)

	store, err := db.Open(context.Background(), db.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	g, err := store.GroupByName(ctx, "sales")
	if err != nil {
		t.Fatal(err)
	}
	u, err := store.UserByEmail(ctx, "alice@demo.example")
	if err != nil {
		t.Fatal(err)
	}
	admin := httpLogin(t, srvA.URL, "admin@demo.example", demoPassword)
	post := func(path string, form url.Values) {
		req, _ := http.NewRequest("POST", srvA.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(admin)
		res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode >= 400 {
			t.Fatalf("POST %s on A: %d", path, res.StatusCode)
		}
	}
	lose, regain := flipTimes(t, alice, envInt("GATEHOUSE_BENCH_FLIPS", 20), func(lose bool) {
		if lose {
			post(fmt.Sprintf("/admin/groups/%d/members/%d/remove", g.ID, u.ID), nil)
		} else {
			post(fmt.Sprintf("/admin/groups/%d/members", g.ID), url.Values{"user_id": {strconv.FormatInt(u.ID, 10)}})
		}
	})
	logFlips(t, "PostgreSQL, change through instance A's admin panel, page on instance B", lose, regain)
	alice.assertClean(t)
}
