package app

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"gatehouse/app/apps"
	"gatehouse/app/dashboards"
	"gatehouse/db"
)

// TestBenchAppsTenThousandSockets measures what proxied WebSockets cost and
// how fast revoking a viewer closes theirs. It measures; it asserts only
// that every revoked socket closed with "access revoked" and no other did.
// It runs only when asked (BENCHMARKS.md records its figures):
//
//	GATEHOUSE_BENCH_APPS_WS=1 go test ./app -run TestBenchAppsTenThousandSockets -count=1 -v -timeout 10m
//
// GATEHOUSE_BENCH_SOCKETS (default 10000) sockets are held by
// GATEHOUSE_BENCH_USERS (100) viewers, one session each, on one app whose
// upstream (a Go coder/websocket server) sends each socket a message every
// GATEHOUSE_BENCH_TICK (1s). The connection budget (app/conns) is set so
// that a viewer's session may hold all of their sockets to the app
// (StreamsPerPage = StreamsPerSession = StreamsPerUser = sockets/users;
// MaxStreams = sockets), and the open-file limit is raised to fit four
// descriptors a socket (client, Gatehouse's two ends, the upstream's).
//
// Memory: the clients (raw sockets, one goroutine each), Gatehouse and the
// upstream share this process, so Gatehouse's share is what the process
// grows by with the sockets proxied, minus what it grows by with as many
// sockets opened straight to the upstream.
//
// Revocation: GATEHOUSE_BENCH_REVOKES (5) rounds each remove one more
// viewer from the granted group (as the CLI does, through the store) and
// time each of their sockets' close frame from the store call's return,
// while counting the messages the other viewers' sockets receive.
func TestBenchAppsTenThousandSockets(t *testing.T) {
	if os.Getenv("GATEHOUSE_BENCH_APPS_WS") != "1" {
		t.Skip("set GATEHOUSE_BENCH_APPS_WS=1 to run the 10,000-socket app benchmark")
	}
	sockets := benchEnvInt("GATEHOUSE_BENCH_SOCKETS", 10000)
	users := benchEnvInt("GATEHOUSE_BENCH_USERS", 100)
	rounds := min(benchEnvInt("GATEHOUSE_BENCH_REVOKES", 5), users-1)
	tick := time.Second
	if d, err := time.ParseDuration(os.Getenv("GATEHOUSE_BENCH_TICK")); err == nil && d > 0 {
		tick = d
	}
	perUser := sockets / users
	sockets = perUser * users
	raiseFileLimit(t, uint64(4*sockets+4096))

	e := newAppsEnvOn(t, "", func(c *Config, _ *dashboards.Registry) {
		c.StreamsPerPage, c.StreamsPerSession, c.StreamsPerUser, c.MaxStreams = perUser, perUser, perUser, sockets
	})
	up := newTickingUpstream(t, tick)
	e.pointSalesAt(t, up.URL)
	upAddr := strings.TrimPrefix(up.URL, "http://")

	type viewer struct {
		user   db.User
		cookie string
	}
	viewers := make([]viewer, users)
	for i := range viewers {
		email := fmt.Sprintf("viewer%03d@example.com", i)
		u := e.member(t, email)
		c, res, _ := e.signIn(t, email, "/")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s signing in: %d", email, res.StatusCode)
		}
		var parts []string
		for _, ck := range c.Jar.Cookies(mustURL(e.appURL("sales", "/"))) {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
		viewers[i] = viewer{u, strings.Join(parts, "; ")}
	}
	appHost := "sales.localhost:" + e.port
	origin := e.appURL("sales", "")

	// open dials n sockets for each viewer, 64 at a time.
	open := func(addr string, proxied bool) [][]*rawSocket {
		conns := make([][]*rawSocket, users)
		for i := range conns {
			conns[i] = make([]*rawSocket, perUser)
		}
		var wg sync.WaitGroup
		var failed atomic.Pointer[error]
		sem := make(chan struct{}, 64)
		for i := range users {
			for j := range perUser {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					h := http.Header{}
					host := addr
					if proxied {
						h.Set("Cookie", viewers[i].cookie)
						h.Set("Origin", origin)
						host = appHost
					}
					s, err := dialRawSocket(addr, host, "/ws", h)
					if err != nil {
						failed.CompareAndSwap(nil, &err)
						return
					}
					conns[i][j] = s
				}()
			}
		}
		wg.Wait()
		if err := failed.Load(); err != nil {
			t.Fatalf("opening %d sockets: %v", sockets, *err)
		}
		return conns
	}
	closeAll := func(conns [][]*rawSocket) {
		for _, cs := range conns {
			for _, s := range cs {
				s.conn.Close()
			}
		}
		waitUntil(t, "the upstream to see every socket closed", func() bool { return up.open.Load() == 0 })
	}
	type mem struct{ heap, stack, rss uint64 }
	measure := func() mem {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return mem{ms.HeapInuse, ms.StackInuse, selfRSS(t)}
	}

	// Proxied: open them all, let a tick pass, measure.
	before := measure()
	g0 := runtime.NumGoroutine()
	start := time.Now()
	conns := open(e.addr, true)
	opened := time.Since(start)
	waitUntil(t, "every socket's first message", func() bool {
		for _, cs := range conns {
			for _, s := range cs {
				if s.msgs.Load() == 0 {
					return false
				}
			}
		}
		return true
	})
	proxied := measure()
	gProxied := runtime.NumGoroutine() - g0
	t.Logf("%d proxied sockets (%d viewers × %d) open in %s; upstream holds %d", sockets, users, perUser, opened.Round(time.Millisecond), up.open.Load())

	// Revocation rounds.
	var closeTimes []time.Duration
	others := func(revoked int) []*rawSocket {
		var out []*rawSocket
		for _, cs := range conns[revoked:] {
			out = append(out, cs...)
		}
		return out
	}
	count := func(ss []*rawSocket) int64 {
		var n int64
		for _, s := range ss {
			n += s.msgs.Load()
		}
		return n
	}
	for r := range rounds {
		victim := conns[r]
		rest := others(r + 1)
		window := 2 * tick
		n0 := count(rest)
		time.Sleep(window)
		beforeRate := float64(count(rest)-n0) / window.Seconds()
		gotBefore := make([]int64, len(rest))
		for i, s := range rest {
			gotBefore[i] = s.msgs.Load()
		}
		if err := e.store.RemoveMember(context.Background(), db.Actor{Email: "bench"}, e.sellers.ID, viewers[r].user.ID); err != nil {
			t.Fatal(err)
		}
		revoked := time.Now()
		n1 := count(rest)
		deadline := time.After(30 * time.Second)
		for _, s := range victim {
			select {
			case <-s.closed:
			case <-deadline:
				t.Fatalf("round %d: a revoked socket was still open 30 s later", r+1)
			}
			if s.closeCode != apps.CloseAccessRevoked {
				t.Errorf("round %d: a revoked socket closed with code %d, want %d", r+1, s.closeCode, apps.CloseAccessRevoked)
			}
			closeTimes = append(closeTimes, s.closedAt.Sub(revoked))
		}
		time.Sleep(window - min(time.Since(revoked), window))
		afterRate := float64(count(rest)-n1) / time.Since(revoked).Seconds()
		flowing := 0
		for i, s := range rest {
			if s.msgs.Load() > gotBefore[i] {
				flowing++
			}
			select {
			case <-s.closed:
				t.Errorf("round %d: another viewer's socket closed (code %d)", r+1, s.closeCode)
			default:
			}
		}
		roundTimes := closeTimes[len(closeTimes)-len(victim):]
		t.Logf("round %d: %d sockets of the revoked viewer closed in p50 %s, max %s; the other %d sockets: %.0f msgs/s before, %.0f after, %d got messages after",
			r+1, len(victim), percentileOf(roundTimes, 0.5), percentileOf(roundTimes, 1), len(rest), beforeRate, afterRate, flowing)
	}
	t.Logf("revoked sockets closed (%d, %d rounds), from the store call's return: p50 %s, p99 %s, max %s",
		len(closeTimes), rounds, percentileOf(closeTimes, 0.5), percentileOf(closeTimes, 0.99), percentileOf(closeTimes, 1))
	closeAll(conns)

	// Direct: the same clients and upstream without Gatehouse.
	base := measure()
	g1 := runtime.NumGoroutine()
	conns = open(upAddr, false)
	waitUntil(t, "every direct socket's first message", func() bool {
		for _, cs := range conns {
			for _, s := range cs {
				if s.msgs.Load() == 0 {
					return false
				}
			}
		}
		return true
	})
	direct := measure()
	gDirect := runtime.NumGoroutine() - g1
	closeAll(conns)

	kib := func(a, b mem, f func(mem) uint64) float64 {
		return (float64(f(a)) - float64(f(b))) / 1024 / float64(sockets)
	}
	heap := func(m mem) uint64 { return m.heap }
	stack := func(m mem) uint64 { return m.stack }
	rss := func(m mem) uint64 { return m.rss }
	t.Logf("per socket, proxied (clients + Gatehouse + upstream): heap %.1f KiB, stacks %.1f KiB, RSS %.1f KiB, %.1f goroutines",
		kib(proxied, before, heap), kib(proxied, before, stack), kib(proxied, before, rss), float64(gProxied)/float64(sockets))
	t.Logf("per socket, direct (clients + upstream): heap %.1f KiB, stacks %.1f KiB, RSS %.1f KiB, %.1f goroutines",
		kib(direct, base, heap), kib(direct, base, stack), kib(direct, base, rss), float64(gDirect)/float64(sockets))
	t.Logf("per socket, Gatehouse's share: heap %.1f KiB, stacks %.1f KiB, RSS %.1f KiB, %.1f goroutines",
		kib(proxied, before, heap)-kib(direct, base, heap), kib(proxied, before, stack)-kib(direct, base, stack),
		kib(proxied, before, rss)-kib(direct, base, rss), float64(gProxied-gDirect)/float64(sockets))
}

func benchEnvInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// raiseFileLimit raises this process's open-file limit to n (the hard
// limit too, which takes root) or fails the benchmark.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	if l.Cur >= n {
		return
	}
	want := syscall.Rlimit{Cur: n, Max: max(n, l.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		t.Fatalf("raising the open-file limit from %d (hard %d) to %d: %v (run as root, or lower GATEHOUSE_BENCH_SOCKETS)", l.Cur, l.Max, n, err)
	}
}

var vmRSS = regexp.MustCompile(`VmRSS:\s+(\d+) kB`)

// selfRSS is this process's resident set size in bytes.
func selfRSS(t *testing.T) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	m := vmRSS.FindSubmatch(b)
	if m == nil {
		t.Fatal("no VmRSS in /proc/self/status")
	}
	n, _ := strconv.ParseUint(string(m[1]), 10, 64)
	return n * 1024
}

func percentileOf(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))].Round(time.Millisecond)
}

// waitUntil polls cond every 10 ms for at most a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
	}
}

// tickingUpstream is an app whose /ws sends each socket a message every
// tick until the socket closes.
type tickingUpstream struct {
	URL  string
	open atomic.Int64
}

func newTickingUpstream(t *testing.T, tick time.Duration) *tickingUpstream {
	t.Helper()
	u := &tickingUpstream{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			_, _ = io.WriteString(w, "ticking upstream") // the page a sign-in lands on
			return
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		u.open.Add(1)
		defer u.open.Add(-1)
		defer c.CloseNow()
		ctx := c.CloseRead(r.Context())
		tk := time.NewTicker(tick)
		defer tk.Stop()
		msg := []byte("tick")
		for {
			if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	u.URL = "http://" + ln.Addr().String()
	return u
}

// rawSocket is a WebSocket client read straight off a TCP connection with
// one goroutine and a small buffer, so that 10,000 of them cost this
// process (which also runs the server measured) little.
type rawSocket struct {
	conn      net.Conn
	msgs      atomic.Int64
	closed    chan struct{}
	closeCode int
	closedAt  time.Time
}

// dialRawSocket opens a WebSocket to path at addr (TCP) with the Host and
// header given.
func dialRawSocket(addr, host, path string, header http.Header) (*rawSocket, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n", path, host)
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&req, "%s: %s\r\n", k, v)
		}
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 512)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, fmt.Errorf("upgrade answered %s", res.Status)
	}
	s := &rawSocket{conn: conn, closed: make(chan struct{})}
	go s.read(br)
	return s, nil
}

// read counts the server's data frames until a close frame (whose code it
// keeps) or the connection's end.
func (s *rawSocket) read(br *bufio.Reader) {
	defer close(s.closed)
	defer s.conn.Close()
	defer func() {
		if s.closedAt.IsZero() {
			s.closedAt = time.Now()
		}
	}()
	var hdr [10]byte
	payload := make([]byte, 0, 128)
	for {
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			return
		}
		op, n := hdr[0]&0x0f, uint64(hdr[1]&0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(br, hdr[2:4]); err != nil {
				return
			}
			n = uint64(binary.BigEndian.Uint16(hdr[2:4]))
		case 127:
			if _, err := io.ReadFull(br, hdr[2:10]); err != nil {
				return
			}
			n = binary.BigEndian.Uint64(hdr[2:10])
		}
		if n > 1<<20 {
			return
		}
		payload = slices.Grow(payload[:0], int(n))[:n]
		if _, err := io.ReadFull(br, payload); err != nil {
			return
		}
		switch op {
		case 0x8:
			s.closedAt = time.Now()
			if len(payload) >= 2 {
				s.closeCode = int(binary.BigEndian.Uint16(payload))
			}
			return
		case 0x1, 0x2, 0x0:
			s.msgs.Add(1)
		}
	}
}
