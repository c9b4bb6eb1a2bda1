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
	"os/exec"
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

// TestBenchAppsTenThousandSockets measures what proxied WebSockets cost
// Gatehouse and how fast revoking a viewer closes theirs. It measures; it
// asserts only that every revoked socket closed with "access revoked" and
// no other did. It runs only when asked (BENCHMARKS.md records its figures):
//
//	GATEHOUSE_BENCH_APPS_WS=1 go test ./app -run TestBenchAppsTenThousandSockets -count=1 -v -timeout 10m
//
// Gatehouse runs in this process; the upstream (a Go coder/websocket
// server sending each socket a message every GATEHOUSE_BENCH_TICK, default
// 1s) and the clients (raw sockets, one goroutine each) run in two child
// processes (this test binary again), so that this process holds only
// Gatehouse's two descriptors per socket and its memory is Gatehouse's.
// GATEHOUSE_BENCH_SOCKETS (default 10000, fewer when the open-file limit
// cannot hold two per socket) are held by GATEHOUSE_BENCH_USERS (100)
// viewers, one session each. The connection budget (app/conns) is set so
// that a viewer's session may hold all of their sockets to the app:
// StreamsPerPage = StreamsPerSession = StreamsPerUser = sockets/users,
// MaxStreams = sockets.
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
	limit := raiseFileLimit(t)
	if most := int(limit-400) / 2; sockets > most {
		t.Logf("the open-file limit (%d) holds two descriptors for at most %d sockets: measuring %d", limit, most, most)
		sockets = most
	}
	perUser := sockets / users
	sockets = perUser * users

	e := newAppsEnvOn(t, "", func(c *Config, _ *dashboards.Registry) {
		c.StreamsPerPage, c.StreamsPerSession, c.StreamsPerUser, c.MaxStreams = perUser, perUser, perUser, sockets
	})
	up := startBenchChild(t, "TestBenchAppsSocketUpstream", nil)
	upURL := up.expect(t, "upstream")[0]
	e.pointSalesAt(t, upURL)

	ids := make([]db.User, users)
	var cookies []string
	for i := range ids {
		email := fmt.Sprintf("viewer%03d@example.com", i)
		ids[i] = e.member(t, email)
		c, res, _ := e.signIn(t, email, "/")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s signing in: %d", email, res.StatusCode)
		}
		var parts []string
		for _, ck := range c.Jar.Cookies(mustURL(e.appURL("sales", "/"))) {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
		cookies = append(cookies, strings.Join(parts, "; "))
		c.CloseIdleConnections() // its descriptors (both ends are in this process) are the sockets'
	}

	measure := func() (heap, stack, rss uint64) {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse, ms.StackInuse, selfRSS(t)
	}
	heap0, stack0, rss0 := measure()
	g0 := runtime.NumGoroutine()
	clients := startBenchChild(t, "TestBenchAppsSocketClients", []string{
		"GATEHOUSE_BENCH_ADDR=" + e.addr, "GATEHOUSE_BENCH_HOST=sales.localhost:" + e.port,
		"GATEHOUSE_BENCH_ORIGIN=" + e.appURL("sales", ""), "GATEHOUSE_BENCH_PER_USER=" + strconv.Itoa(perUser),
		"GATEHOUSE_BENCH_COOKIES=" + strings.Join(cookies, "\n"),
	})
	took := clients.expect(t, "open")[0]
	heap1, stack1, rss1 := measure()
	g1 := runtime.NumGoroutine()
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / 1024 / float64(sockets) }
	t.Logf("%d proxied sockets (%d viewers × %d) open, each with a message, in %s", sockets, users, perUser, took)
	t.Logf("Gatehouse per socket: heap %.1f KiB, stacks %.1f KiB, RSS %.1f KiB, %.1f goroutines (RSS %.0f -> %.0f MiB)",
		per(heap1, heap0), per(stack1, stack0), per(rss1, rss0), float64(g1-g0)/float64(sockets), float64(rss0)/(1<<20), float64(rss1)/(1<<20))

	tick := time.Second
	if d, err := time.ParseDuration(os.Getenv("GATEHOUSE_BENCH_TICK")); err == nil && d > 0 {
		tick = d
	}
	counts := func() []int64 {
		var n []int64
		for _, f := range clients.ask(t, "count", "count") {
			v, _ := strconv.ParseInt(f, 10, 64)
			n = append(n, v)
		}
		return n
	}
	sum := func(n []int64, from int) (s int64) {
		for _, v := range n[from:] {
			s += v
		}
		return s
	}
	var closeTimes []time.Duration
	for r := range rounds {
		window := 2 * tick
		c0 := counts()
		time.Sleep(window)
		c1 := counts()
		if err := e.store.RemoveMember(context.Background(), db.Actor{Email: "bench"}, e.sellers.ID, ids[r].ID); err != nil {
			t.Fatal(err)
		}
		revoked := time.Now()
		got := clients.ask(t, fmt.Sprintf("closed %d", r), "closed")
		var roundTimes []time.Duration
		for _, f := range got[1:] {
			code, at, _ := strings.Cut(f, "@")
			if code != strconv.Itoa(apps.CloseAccessRevoked) {
				t.Errorf("round %d: a revoked socket closed with code %s, want %d", r+1, code, apps.CloseAccessRevoked)
			}
			ns, _ := strconv.ParseInt(at, 10, 64)
			roundTimes = append(roundTimes, time.Unix(0, ns).Sub(revoked))
		}
		closeTimes = append(closeTimes, roundTimes...)
		time.Sleep(window - min(time.Since(revoked), window))
		c2 := counts()
		if got[0] != "0" {
			t.Errorf("round %d: %s sockets of other viewers closed", r+1, got[0])
		}
		flowing := 0
		for v := r + 1; v < users; v++ {
			if c2[v] > c1[v] {
				flowing++
			}
		}
		t.Logf("round %d: the revoked viewer's %d sockets closed in p50 %s, max %s; the other %d viewers' sockets: %.0f msgs/s before, %.0f after; %d of %d viewers got messages after",
			r+1, len(roundTimes), percentileOf(roundTimes, 0.5), percentileOf(roundTimes, 1), users-r-1,
			float64(sum(c1, r+1)-sum(c0, r+1))/window.Seconds(), float64(sum(c2, r+1)-sum(c1, r+1))/time.Since(revoked).Seconds(),
			flowing, users-r-1)
	}
	t.Logf("revoked sockets closed (%d in %d rounds), from the store call's return: p50 %s, p99 %s, max %s",
		len(closeTimes), rounds, percentileOf(closeTimes, 0.5), percentileOf(closeTimes, 0.99), percentileOf(closeTimes, 1))
}

// benchChild is this test binary run again as one role of the socket
// benchmark, spoken to over its stdin and stdout ("BENCH word fields…").
type benchChild struct {
	in    io.WriteCloser
	lines chan []string
}

func startBenchChild(t *testing.T, test string, env []string) *benchChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^"+test+"$", "-test.count=1", "-test.timeout=0")
	cmd.Env = append(append(os.Environ(), "GATEHOUSE_BENCH_ROLE="+test), env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &benchChild{in: in, lines: make(chan []string, 16)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) > 0 && f[0] == "BENCH" {
				c.lines <- f[1:]
			}
		}
	}()
	t.Cleanup(func() {
		in.Close() // the child ends when its stdin does
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return c
}

// expect waits (at most two minutes) for the child's next line, which
// must start with word, and returns its other fields.
func (c *benchChild) expect(t *testing.T, word string) []string {
	t.Helper()
	select {
	case f, ok := <-c.lines:
		if !ok {
			t.Fatalf("the benchmark's %s process ended", word)
		}
		if f[0] != word {
			t.Fatalf("the benchmark's child said %q, want %s", f, word)
		}
		return f[1:]
	case <-time.After(2 * time.Minute):
		t.Fatalf("the benchmark's child did not say %s within two minutes", word)
	}
	return nil
}

func (c *benchChild) ask(t *testing.T, command, word string) []string {
	t.Helper()
	if _, err := fmt.Fprintln(c.in, command); err != nil {
		t.Fatal(err)
	}
	return c.expect(t, word)
}

// TestBenchAppsSocketUpstream is the socket benchmark's upstream process.
func TestBenchAppsSocketUpstream(t *testing.T) {
	if os.Getenv("GATEHOUSE_BENCH_ROLE") != t.Name() {
		t.Skip("a role of TestBenchAppsTenThousandSockets")
	}
	raiseFileLimit(t)
	tick := time.Second
	if d, err := time.ParseDuration(os.Getenv("GATEHOUSE_BENCH_TICK")); err == nil && d > 0 {
		tick = d
	}
	up := newTickingUpstream(t, tick)
	fmt.Println("BENCH upstream", up.URL)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// TestBenchAppsSocketClients is the socket benchmark's clients process:
// it opens GATEHOUSE_BENCH_PER_USER sockets with each cookie, says "open"
// once each has had a message, then answers "count" (messages per viewer
// so far) and "closed V" (waits until viewer V's sockets have all closed:
// how many sockets of others closed, then each close as CODE@UNIXNANO).
func TestBenchAppsSocketClients(t *testing.T) {
	if os.Getenv("GATEHOUSE_BENCH_ROLE") != t.Name() {
		t.Skip("a role of TestBenchAppsTenThousandSockets")
	}
	raiseFileLimit(t)
	addr, host, origin := os.Getenv("GATEHOUSE_BENCH_ADDR"), os.Getenv("GATEHOUSE_BENCH_HOST"), os.Getenv("GATEHOUSE_BENCH_ORIGIN")
	perUser := benchEnvInt("GATEHOUSE_BENCH_PER_USER", 1)
	cookies := strings.Split(os.Getenv("GATEHOUSE_BENCH_COOKIES"), "\n")
	conns := make([][]*rawSocket, len(cookies))
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	sem := make(chan struct{}, 64)
	for i := range cookies {
		conns[i] = make([]*rawSocket, perUser)
		for j := range perUser {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				s, err := dialRawSocket(addr, host, "/ws", http.Header{"Cookie": {cookies[i]}, "Origin": {origin}})
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
		t.Fatalf("opening sockets: %v", *err)
	}
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
	fmt.Println("BENCH open", time.Since(start).Round(time.Millisecond))
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "count":
			var b strings.Builder
			b.WriteString("BENCH count")
			for _, cs := range conns {
				var n int64
				for _, s := range cs {
					n += s.msgs.Load()
				}
				fmt.Fprintf(&b, " %d", n)
			}
			fmt.Println(b.String())
		case "closed":
			v, _ := strconv.Atoi(arg)
			var b strings.Builder
			deadline := time.After(30 * time.Second)
			for _, s := range conns[v] {
				select {
				case <-s.closed:
					fmt.Fprintf(&b, " %d@%d", s.closeCode, s.closedAt.UnixNano())
				case <-deadline:
					fmt.Fprintf(&b, " open@0")
				}
			}
			others := 0
			for u, cs := range conns {
				for _, s := range cs {
					select {
					case <-s.closed:
						if u > v {
							others++
						}
					default:
					}
				}
			}
			fmt.Printf("BENCH closed %d%s\n", others, b.String())
		}
	}
}

func benchEnvInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// raiseFileLimit raises this process's open-file limit to its hard limit
// and returns it.
func raiseFileLimit(t *testing.T) uint64 {
	t.Helper()
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			t.Fatal(err)
		}
	}
	return l.Cur
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
	URL string
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
