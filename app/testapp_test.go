package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"

	"gatehouse/app/dashboards"
	"gatehouse/db"
	"gatehouse/db/postgrestest"
	"gatehouse/internal/testutil"
)

// testPassword passes the password policy; every test user gets it unless a test says otherwise.
const testPassword = "correct horse battery"

// fakeClock is an injectable clock for the app and the store.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
	// since, once Run is called, is the real time from which the clock runs.
	since time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.since.IsZero() {
		return c.t.Add(time.Since(c.since))
	}
	return c.t
}

// Run makes the clock tick with real time from now on, for tests of
// timers (expiries) that must fire by themselves.
func (c *fakeClock) Run() {
	c.mu.Lock()
	c.since = time.Now()
	c.mu.Unlock()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testApp is a Gatehouse over a fresh database, served by httptest.
type testApp struct {
	*App
	Server *httptest.Server
	Clock  *fakeClock
	Dir    string
	Logs   *testutil.LockedBuffer
}

// newTestApp starts a fresh app on a new SQLite file, or on a fresh
// PostgreSQL schema when GATEHOUSE_TEST_APP_DB=postgres (to run the whole app
// suite on PostgreSQL; see newTestAppOn). configure (optional) adjusts the
// config and the registry before the app is built.
func newTestApp(t testing.TB, configure ...func(*Config, *dashboards.Registry)) *testApp {
	t.Helper()
	dsn := ""
	if os.Getenv("GATEHOUSE_TEST_APP_DB") == "postgres" {
		dsn = postgrestest.Schema(t)
	}
	return newTestAppOn(t, dsn, configure...)
}

// newTestAppOn starts a fresh app on the database dsn ("" for a new SQLite
// file in a temporary directory).
func newTestAppOn(t testing.TB, dsn string, configure ...func(*Config, *dashboards.Registry)) *testApp {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.DSN = dsn
	reg := dashboards.NewRegistry()
	dashboards.RegisterBuiltins(reg)
	for _, f := range configure {
		f(&cfg, reg)
	}
	store, err := OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	store.Now = clock.Now
	if store.Dialect == db.Postgres {
		// As Serve does, and wait until version checks are answered under
		// the lease, so that tests exercise it (db/authz_lease.go).
		store.AccessFeed()
		for deadline := time.Now().Add(10 * time.Second); !store.LeaseStats().Trusted; {
			if time.Now().After(deadline) {
				t.Fatal("the PostgreSQL store never came to trust the version NOTIFY told it of")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	logs := &testutil.LockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := New(ctx, cfg, store, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	a.now = clock.Now
	// Cheap argon2 parameters keep the suite fast; the hashing code path is the same.
	a.hasher = db.NewHasher(testHashParams, cfg.HashSlots, cfg.HashWait)
	srv := httptest.NewServer(a.Routes())
	t.Cleanup(func() {
		srv.Close()
		a.Close()
		store.Close()
	})
	return &testApp{App: a, Server: srv, Clock: clock, Dir: dir, Logs: logs}
}

var testHashParams = &argon2id.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// client returns a browser-like client with a cookie jar that does not follow redirects.
func (ta *testApp) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// createUser adds an active user with testPassword.
func (ta *testApp) createUser(t testing.TB, email string, admin bool) db.User {
	t.Helper()
	hash, err := ta.hasher.Hash(context.Background(), testPassword)
	if err != nil {
		t.Fatal(err)
	}
	u, err := ta.store.CreateUser(context.Background(), db.Actor{Email: "test"}, db.NewUser{Email: email, Name: strings.Split(email, "@")[0], PasswordHash: hash, IsAdmin: admin})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// login logs a new client in as email (with testPassword) and returns it.
func (ta *testApp) login(t testing.TB, email string) *http.Client {
	t.Helper()
	c := ta.client()
	res, body := ta.post(t, c, "/login", url.Values{"email": {email}, "password": {testPassword}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login %s: status %d, body %s", email, res.StatusCode, body)
	}
	return c
}

// get sends a GET; htmx adds the HX-Request header.
func (ta *testApp) get(t testing.TB, c *http.Client, path string, htmx bool) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ta.Server.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if htmx {
		req.Header.Set("HX-Request", "true")
	}
	return ta.do(t, c, req)
}

// post sends a form POST.
func (ta *testApp) post(t testing.TB, c *http.Client, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ta.Server.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return ta.do(t, c, req)
}

func (ta *testApp) do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

// sessionCookie returns the client's session cookie value ("" if none).
func (ta *testApp) sessionCookie(c *http.Client) string {
	u, _ := url.Parse(ta.Server.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == ta.sessions.CookieName() {
			return ck.Value
		}
	}
	return ""
}

// countAudit counts audit rows with action (and target, when not empty).
func (ta *testApp) countAudit(t testing.TB, action, target string) int {
	t.Helper()
	q := ta.store.DB.NewSelect().Model((*db.AuditEvent)(nil)).Where("action = ?", action)
	if target != "" {
		q = q.Where("target = ?", target)
	}
	n, err := q.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}
