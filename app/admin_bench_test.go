package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

// The admin benchmarks drive a.Routes() in process with an admin's session
// cookie over a seeded database: the whole middleware chain, the queries
// and the render of the users list, a group's members page and the
// add-member search.
//
//	go test ./app -run '^$' -bench Admin -benchmem              # 10,000 users, 100 groups, 100,000 memberships
//	GATEHOUSE_BENCH_LARGE=1 go test ./app -run '^$' -bench Admin  # 100,000 users, 1,000 groups, 1,000,000 memberships
//
// The seeded database is built once (with db.SeedBulk, as `gatehouse dev
// seed` does) and kept in $TMPDIR/gatehouse-admin-bench-USERS-GROUPS-MEMBERSHIPS
// for later runs: seeding the large size takes about half a minute.

type adminBench struct {
	h      http.Handler
	cookie *http.Cookie
	seed   db.SeedResult
}

var (
	adminBenchOnce sync.Once
	adminBenchVal  *adminBench
	adminBenchErr  error
)

func adminBenchSizes() (users, groups, memberships int) {
	if os.Getenv("GATEHOUSE_BENCH_LARGE") == "1" {
		return 100_000, 1_000, 1_000_000
	}
	return 10_000, 100, 100_000
}

// seededBenchDir returns the directory of a database seeded at the bench
// size, seeding it first when no earlier run left one.
func seededBenchDir(ctx context.Context) (string, db.SeedResult, error) {
	users, groups, memberships := adminBenchSizes()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("gatehouse-admin-bench-%d-%d-%d", users, groups, memberships))
	var res db.SeedResult
	if b, err := os.ReadFile(filepath.Join(dir, "seeded.json")); err == nil && json.Unmarshal(b, &res) == nil {
		return dir, res, nil
	}
	// Seed into a directory of our own, then move it into place, so an
	// interrupted or concurrent seed never leaves a half-seeded cache.
	tmp, err := os.MkdirTemp(os.TempDir(), "gatehouse-admin-bench-seeding-")
	if err != nil {
		return "", res, err
	}
	defer os.RemoveAll(tmp)
	store, err := OpenStore(ctx, Config{DataDir: filepath.Join(tmp, "data")})
	if err != nil {
		return "", res, err
	}
	hash, err := db.NewHasher(testHashParams, 1, 0).Hash(ctx, testPassword)
	if err == nil {
		res, err = store.SeedBulk(ctx, db.SeedSpec{Users: users, Groups: groups, Memberships: memberships, PasswordHash: hash, Seed: 42})
	}
	if err == nil {
		_, err = store.CreateUser(ctx, db.Actor{Email: "bench"}, db.NewUser{Email: "bench-admin@example.com", Name: "Bench Admin", PasswordHash: hash, IsAdmin: true})
	}
	store.Close()
	if err != nil {
		return "", res, err
	}
	b, _ := json.Marshal(res)
	if err := os.WriteFile(filepath.Join(tmp, "data", "seeded.json"), b, 0o600); err != nil {
		return "", res, err
	}
	if err := os.Rename(filepath.Join(tmp, "data"), dir); err != nil && !os.IsExist(err) {
		if _, statErr := os.Stat(filepath.Join(dir, "seeded.json")); statErr != nil {
			return "", res, err
		}
	}
	return dir, res, nil
}

func newAdminBench(b *testing.B) *adminBench {
	b.Helper()
	adminBenchOnce.Do(func() {
		ctx := context.Background()
		dir, res, err := seededBenchDir(ctx)
		if err != nil {
			adminBenchErr = err
			return
		}
		cfg := DefaultConfig()
		cfg.DataDir = dir
		store, err := OpenStore(ctx, cfg)
		if err != nil {
			adminBenchErr = err
			return
		}
		reg := dashboards.NewRegistry()
		dashboards.RegisterBuiltins(reg)
		a, err := New(ctx, cfg, store, discardLogger(), reg)
		if err != nil {
			adminBenchErr = err
			return
		}
		a.hasher = db.NewHasher(testHashParams, cfg.HashSlots, cfg.HashWait)
		h := a.Routes()
		req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{
			"email": {"bench-admin@example.com"}, "password": {testPassword}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var cookie *http.Cookie
		for _, c := range rec.Result().Cookies() {
			if c.Name == a.sessions.CookieName() {
				cookie = c
			}
		}
		if cookie == nil {
			adminBenchErr = fmt.Errorf("bench admin login failed: %d %s", rec.Code, rec.Body.String())
			return
		}
		adminBenchVal = &adminBench{h: h, cookie: cookie, seed: res}
	})
	if adminBenchErr != nil {
		b.Fatal(adminBenchErr)
	}
	return adminBenchVal
}

// run benchmarks GET path (with htmx: the fragment) as the admin.
func (ab *adminBench) run(b *testing.B, path string, htmx bool, want string) {
	b.Helper()
	do := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.AddCookie(ab.cookie)
		if htmx {
			req.Header.Set("HX-Request", "true")
		}
		rec := httptest.NewRecorder()
		ab.h.ServeHTTP(rec, req)
		return rec
	}
	if rec := do(); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
		b.Fatalf("GET %s: %d, body lacks %q", path, rec.Code, want)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if rec := do(); rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d", path, rec.Code)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
}

// BenchmarkAdminUsersList: the users list's first page (full page with the
// group filter's options), a deep page, a search and a group filter.
func BenchmarkAdminUsersList(b *testing.B) {
	ab := newAdminBench(b)
	users, _, _ := adminBenchSizes()
	b.Run("page1", func(b *testing.B) { ab.run(b, "/admin/users", false, "users</span>") })
	b.Run("deep-page", func(b *testing.B) {
		ab.run(b, fmt.Sprintf("/admin/users?page=%d", users/adminPerPage/2), true, "users</span>")
	})
	b.Run("search", func(b *testing.B) { ab.run(b, "/admin/users?q=smith", true, "smith") })
	b.Run("search-rare", func(b *testing.B) { ab.run(b, "/admin/users?q=nobody-has-this", true, "No user matches") })
	b.Run("group-filter", func(b *testing.B) {
		ab.run(b, fmt.Sprintf("/admin/users?group=%d", ab.seed.TypicalGroup), true, "users</span>")
	})
}

// BenchmarkAdminGroupMembers: a group's page (details, grants, a page of
// members) for a typical group and for the big group holding a tenth of
// all memberships, first and a later page.
func BenchmarkAdminGroupMembers(b *testing.B) {
	ab := newAdminBench(b)
	typical, big := fmt.Sprint(ab.seed.TypicalGroup), fmt.Sprint(ab.seed.BigGroup)
	b.Run("typical", func(b *testing.B) { ab.run(b, "/admin/groups/"+typical, false, "members</span>") })
	b.Run("typical-page2", func(b *testing.B) { ab.run(b, "/admin/groups/"+typical+"?page=2", false, "members</span>") })
	b.Run("big", func(b *testing.B) { ab.run(b, "/admin/groups/"+big, false, "members</span>") })
	b.Run("big-page20", func(b *testing.B) { ab.run(b, "/admin/groups/"+big+"?page=20", false, "members</span>") })
}

// BenchmarkAdminMemberSearch: the add-member live search (htmx fragment):
// a common name, a narrow prefix and a term nobody matches (the full scan).
func BenchmarkAdminMemberSearch(b *testing.B) {
	ab := newAdminBench(b)
	base := fmt.Sprintf("/admin/groups/%d/candidates?q=", ab.seed.TypicalGroup)
	b.Run("common", func(b *testing.B) { ab.run(b, base+"anna", true, "Add</button>") })
	b.Run("narrow", func(b *testing.B) { ab.run(b, base+"zoe.mayr", true, "Add</button>") })
	b.Run("no-match", func(b *testing.B) { ab.run(b, base+"nobody-has-this", true, "No user matches") })
}
