package db

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// authzFixture: user u is a member of group g, which is granted "board".
type authzFixture struct {
	s    *Store
	u    User
	g    Group
	ctx  context.Context
	actr Actor
}

func newAuthzFixture(t *testing.T, s *Store) *authzFixture {
	t.Helper()
	f := &authzFixture{s: s, ctx: context.Background(), actr: Actor{Email: "test"}}
	var err error
	if f.u, err = s.CreateUser(f.ctx, f.actr, NewUser{Email: "u@example.com", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	if f.g, err = s.CreateGroup(f.ctx, f.actr, "team", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMember(f.ctx, f.actr, f.g.ID, f.u.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.AddGrant(f.ctx, f.actr, "board", f.g.ID); err != nil {
		t.Fatal(err)
	}
	return f
}

// snap takes a snapshot, as loadViewer does at the start of a request.
func (f *authzFixture) snap(t *testing.T) context.Context {
	t.Helper()
	ctx, err := f.s.Snapshot(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

func (f *authzFixture) member(t *testing.T, ctx context.Context) bool {
	t.Helper()
	gs, err := f.s.GrantingGroups(ctx, f.u.ID, "board")
	if err != nil {
		t.Fatal(err)
	}
	return len(gs) == 1 && gs[0].Member
}

func (f *authzFixture) version(t *testing.T) int64 {
	t.Helper()
	v, err := f.s.AuthzVersion(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAuthzVersionCountsEveryAccessChange: each kind of write that can
// change a session, a viewer or a decision moves the version on, from any
// store on the database; a new session and a last-seen touch do not.
func TestAuthzVersionCountsEveryAccessChange(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newAuthzFixture(t, s)
		other := openAgain(t, s) // another process: the CLI, another instance
		other2, err := other.CreateGroup(f.ctx, f.actr, "leads", "")
		if err != nil {
			t.Fatal(err)
		}
		ss := s.Sessions(SessionLimits{})
		var sessID string
		steps := []struct {
			name string
			bump bool
			do   func() error
		}{
			{"add member", true, func() error { return other.AddMember(f.ctx, f.actr, other2.ID, f.u.ID, 0) }},
			{"remove member", true, func() error { return other.RemoveMember(f.ctx, f.actr, f.g.ID, f.u.ID) }},
			{"add grant", true, func() error { return other.AddGrant(f.ctx, f.actr, "other", f.g.ID) }},
			{"remove grant", true, func() error { return other.RemoveGrant(f.ctx, f.actr, "board", f.g.ID) }},
			{"deactivate", true, func() error { return other.SetActive(f.ctx, f.actr, f.u.ID, false) }},
			{"activate", true, func() error { return other.SetActive(f.ctx, f.actr, f.u.ID, true) }},
			{"rename group", true, func() error {
				_, err := other.UpdateGroup(f.ctx, f.actr, f.g.ID, "team-renamed", "")
				return err
			}},
			{"access request", true, func() error {
				_, err := other.CreateAccessRequest(f.ctx, f.actr, f.u.ID, "board", "")
				return err
			}},
			{"new session", false, func() error {
				var err error
				sessID, err = ss.Create(f.ctx, NewSession{UserID: f.u.ID})
				return err
			}},
			{"last-seen touch", false, func() error {
				_, err := other.DB.NewUpdate().Model((*SessionRow)(nil)).Set("last_seen_at = last_seen_at + 1").
					Where("id_hash = ?", HashToken(sessID)).Exec(f.ctx)
				return err
			}},
			{"revoke session", true, func() error { return other.RevokeUserSessions(f.ctx, f.u.ID, "") }},
			{"raw SQL by another process", true, func() error {
				_, err := other.DB.ExecContext(f.ctx, "UPDATE users SET is_admin = TRUE WHERE id = ?", f.u.ID)
				return err
			}},
			{"delete group", true, func() error { return other.DeleteGroup(f.ctx, f.actr, other2.ID) }},
		}
		for _, st := range steps {
			before := f.version(t)
			if err := st.do(); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			after := f.version(t)
			if bumped := after != before; bumped != st.bump {
				t.Errorf("%s: version %d -> %d, want bumped=%v", st.name, before, after, st.bump)
			}
		}
	})
}

// TestSnapshotCachesUntilTheVersionMoves: under one snapshot version the
// store answers from memory; a change by another process moves the version
// and the next snapshot reads the database again.
func TestSnapshotCachesUntilTheVersionMoves(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newAuthzFixture(t, s)
		other := openAgain(t, s)
		if !f.member(t, f.snap(t)) {
			t.Fatal("not a member before the change")
		}
		// A change that bypasses the triggers (impossible outside this
		// test) shows that the answer now comes from memory...
		drop := "DROP TRIGGER memberships_authz_delete"
		if s.Dialect == Postgres {
			drop = "DROP TRIGGER memberships_authz ON memberships"
		}
		if _, err := other.DB.ExecContext(f.ctx, drop); err != nil {
			t.Fatal(err)
		}
		if _, err := other.DB.ExecContext(f.ctx, "DELETE FROM memberships"); err != nil {
			t.Fatal(err)
		}
		if !f.member(t, f.snap(t)) {
			t.Fatal("the unversioned change was seen: the snapshot did not use the cache")
		}
		// ...and without a snapshot the database is read.
		if f.member(t, f.ctx) {
			t.Fatal("a read without a snapshot used the cache")
		}
		// Any counted change, by any process, ends it.
		if err := other.SetActive(f.ctx, f.actr, f.u.ID, false); err != nil {
			t.Fatal(err)
		}
		if f.member(t, f.snap(t)) {
			t.Fatal("still a member after the version moved")
		}
	})
}

// TestSnapshotReadsItsOwnWrites: a request that writes through the store
// reads the database afterwards, though its snapshot is older than its write.
func TestSnapshotReadsItsOwnWrites(t *testing.T) {
	s := newSQLiteStore(t)
	f := newAuthzFixture(t, s)
	ctx := f.snap(t)
	if !f.member(t, ctx) {
		t.Fatal("not a member")
	}
	if err := s.RemoveMember(ctx, f.actr, f.g.ID, f.u.ID); err != nil {
		t.Fatal(err)
	}
	if f.member(t, ctx) {
		t.Fatal("the request did not see its own write")
	}
	if _, err := s.MembershipIn(ctx, f.u.ID, "team"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("MembershipIn after removal: %v", err)
	}
}

// TestSessionCacheFollowsTheDatabase: a session loaded under a snapshot is
// remembered, and revoking it or deactivating its user from another store
// shows on the next snapshot.
func TestSessionCacheFollowsTheDatabase(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newAuthzFixture(t, s)
		other := openAgain(t, s)
		ss := s.Sessions(SessionLimits{})
		id := newSession(t, ss, f.u.ID)
		load := func() (bool, User) {
			t.Helper()
			sess, err := ss.Lookup(f.snap(t), id)
			if errors.Is(err, ErrNotFound) {
				return false, User{}
			}
			if err != nil {
				t.Fatal(err)
			}
			return true, sess.User
		}
		for range 2 { // the second is answered from memory
			if ok, u := load(); !ok || u.ID != f.u.ID || !u.IsActive {
				t.Fatalf("load: live=%v user=%+v", ok, u)
			}
		}
		if err := other.SetActive(f.ctx, f.actr, f.u.ID, false); err != nil {
			t.Fatal(err)
		}
		if ok, u := load(); ok && u.IsActive {
			t.Fatal("the user is still active after deactivation by another store")
		}
		if err := other.RevokeUserSessions(f.ctx, f.u.ID, ""); err != nil {
			t.Fatal(err)
		}
		if ok, _ := load(); ok {
			t.Fatal("the session is still live after revocation by another store")
		}
	})
}

// TestAuthzVersionSeesEveryEarlierWrite: however callers are batched, each
// sees every change committed before it asked.
func TestAuthzVersionSeesEveryEarlierWrite(t *testing.T) {
	forEachStore(t, testAuthzVersionSeesEveryEarlierWrite)
}

func testAuthzVersionSeesEveryEarlierWrite(t *testing.T, s *Store) {
	f := newAuthzFixture(t, s)
	other := openAgain(t, s)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				active := (w+i)%2 == 0
				if err := other.SetActive(f.ctx, f.actr, f.u.ID, active); err != nil {
					errs <- err
					return
				}
				var committed int64
				if err := other.DB.NewRaw(authzVersionQuery).Scan(f.ctx, &committed); err != nil {
					errs <- err
					return
				}
				got, err := s.AuthzVersion(f.ctx)
				if err != nil {
					errs <- err
					return
				}
				if got < committed {
					errs <- errors.New("AuthzVersion answered a version older than a committed write")
					return
				}
			}
		}()
	}
	// Readers in parallel keep the batches full.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 8 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.AuthzVersion(f.ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestConcurrentChangesBumpWithoutDeadlock: transactions that lock users,
// groups and memberships in different orders, from two stores at once, all
// commit (on PostgreSQL the bump is taken last, at commit, so it adds no
// lock-order cycle) and every one of them moves the version.
func TestConcurrentChangesBumpWithoutDeadlock(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx, a := context.Background(), Actor{Email: "test"}
		other := openAgain(t, s)
		var users []User
		for i := range 4 {
			u, err := s.CreateUser(ctx, a, NewUser{Email: "w" + string(rune('a'+i)) + "@example.com", PasswordHash: "x"})
			if err != nil {
				t.Fatal(err)
			}
			users = append(users, u)
		}
		g, err := s.CreateGroup(ctx, a, "team", "")
		if err != nil {
			t.Fatal(err)
		}
		before, err := s.AuthzVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for w, u := range users {
			st := s
			if w%2 == 1 {
				st = other
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 10 {
					for _, op := range []func() error{
						func() error { return st.AddMember(ctx, a, g.ID, u.ID, 0) },
						func() error { return st.SetActive(ctx, a, u.ID, false) },
						func() error { return st.RemoveMember(ctx, a, g.ID, u.ID) },
						func() error { return st.SetActive(ctx, a, u.ID, true) },
						func() error { return st.RevokeUserSessions(ctx, u.ID, "") },
					} {
						if err := op(); err != nil {
							errs <- err
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		after, err := s.AuthzVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if after-before < int64(len(users)*10*4) {
			t.Errorf("version moved %d for %d changes", after-before, len(users)*10*4)
		}
	})
}

// After a change every open dashboard misses the cache at once: requests
// under the same snapshot version share one load per key; another version,
// another key or a request that wrote loads on its own, and a failed shared
// load makes each waiter load for itself.
func TestConcurrentMissesShareOneLoad(t *testing.T) {
	s := testStore(t)
	ctx, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := s.authzCache()
	var calls atomic.Int32
	release := make(chan struct{})
	load := func() ([]GroupOption, error) {
		calls.Add(1)
		<-release
		return []GroupOption{{ID: 7, Name: "team"}}, nil
	}
	// waitFor blocks until n requests wait on the running load.
	waitFor := func(n int32) {
		t.Helper()
		for range 5000 {
			c.flightMu.Lock()
			var waiting int32
			for _, f := range c.flights {
				waiting += f.waiters.Load()
			}
			c.flightMu.Unlock()
			if waiting == n {
				return
			}
			runtime.Gosched()
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("%d requests never came to wait on the load", n)
	}

	const n = 20
	var wg sync.WaitGroup
	results := make([][]GroupOption, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := shareLoad(ctx, s, int64(1), load)
			if err != nil {
				t.Error(err)
			}
			results[i] = out
		}()
		if i == 0 {
			for calls.Load() == 0 {
				runtime.Gosched()
			}
		}
	}
	waitFor(n - 1)
	close(release)
	wg.Wait()
	if got := calls.Load(); got != 1 {
		t.Fatalf("%d concurrent misses ran %d loads, want 1", n, got)
	}
	for i, r := range results {
		if len(r) != 1 || r[0].Name != "team" {
			t.Fatalf("request %d got %v", i, r)
		}
	}

	// A load started under one version is never shared with a request that
	// took its snapshot after a change: that request loads for itself even
	// while the older load is still running.
	calls.Store(0)
	hold := make(chan struct{})
	var older sync.WaitGroup
	older.Add(1)
	go func() {
		defer older.Done()
		_, _ = shareLoad(ctx, s, int64(3), func() ([]GroupOption, error) {
			calls.Add(1)
			<-hold
			return []GroupOption{{ID: 1, Name: "before the change"}}, nil
		})
	}()
	for calls.Load() == 0 {
		runtime.Gosched()
	}
	if _, err := s.CreateGroup(context.Background(), Actor{Email: "test"}, "moves-the-version", ""); err != nil {
		t.Fatal(err)
	}
	after, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fresh := make(chan []GroupOption, 1)
	go func() {
		out, _ := shareLoad(after, s, int64(3), func() ([]GroupOption, error) {
			return []GroupOption{{ID: 2, Name: "after the change"}}, nil
		})
		fresh <- out
	}()
	select {
	case out := <-fresh:
		if len(out) != 1 || out[0].Name != "after the change" {
			t.Fatalf("a request after a change got %v", out)
		}
	case <-time.After(10 * time.Second): // a guard against a hang, not a speed check
		t.Fatal("a request after a change waited for a load started before it")
	}
	close(hold)
	older.Wait()

	// A request that wrote reads its own writes: it never waits on a load
	// that may have started before its write.
	calls.Store(0)
	wrote, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	markWrite(wrote)
	if _, err := shareLoad(wrote, s, int64(1), func() ([]GroupOption, error) { calls.Add(1); return nil, nil }); err != nil || calls.Load() != 1 {
		t.Fatalf("a request that wrote: %d loads, %v", calls.Load(), err)
	}

	// A failed shared load: each waiter loads for itself.
	calls.Store(0)
	fail := make(chan struct{})
	var failed sync.WaitGroup
	failed.Add(1)
	go func() {
		defer failed.Done()
		if _, err := shareLoad(ctx, s, int64(2), func() ([]GroupOption, error) {
			calls.Add(1)
			<-fail
			return nil, errors.New("cancelled")
		}); err == nil {
			t.Error("the failing load returned no error")
		}
	}()
	for calls.Load() == 0 {
		runtime.Gosched()
	}
	var own []GroupOption
	failed.Add(1)
	go func() {
		defer failed.Done()
		own, _ = shareLoad(ctx, s, int64(2), func() ([]GroupOption, error) {
			calls.Add(1)
			return []GroupOption{{ID: 2}}, nil
		})
	}()
	waitFor(1)
	close(fail)
	failed.Wait()
	if calls.Load() != 2 || len(own) != 1 || own[0].ID != 2 {
		t.Fatalf("after a failed shared load: %d loads, waiter got %v", calls.Load(), own)
	}
	c.flightMu.Lock()
	left := len(c.flights)
	c.flightMu.Unlock()
	if left != 0 {
		t.Fatalf("%d loads left registered", left)
	}
}
