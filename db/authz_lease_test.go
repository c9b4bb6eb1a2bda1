package db

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"gatehouse/db/postgrestest"
)

// leasedStore opens a migrated PostgreSQL store, returns it with its DSN
// and a fixture (a member of "team", which is granted "board"), starts its
// feed (and so its lease) and waits until it trusts the version it heard.
func leasedStore(t *testing.T) (*Store, string, *authzFixture) {
	t.Helper()
	dsn := postgrestest.Schema(t)
	s, err := Open(context.Background(), Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	migrated(t, s, dsn)
	f := newAuthzFixture(t, s)
	s.AccessFeed()
	waitTrusted(t, s)
	return s, dsn, f
}

// waitTrusted waits until s answers version checks under its lease; the
// bound only keeps a broken build from hanging.
func waitTrusted(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !s.LeaseStats().Trusted {
		if time.Now().After(deadline) {
			t.Fatal("the store never came to trust the version NOTIFY told it of")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func slowListener(t *testing.T, d time.Duration) {
	leaseTestDelay.Store(int64(d))
	t.Cleanup(func() { leaseTestDelay.Store(0) })
}

// TestLeaseAnswersChecksWithoutReads: while the lease holds, version checks
// do not query PostgreSQL.
func TestLeaseAnswersChecksWithoutReads(t *testing.T) {
	s, _, f := leasedStore(t)
	before := databaseReads(s)
	for range 200 {
		f.version(t)
	}
	// A lease lapsing on a loaded machine costs a read now and then;
	// without the lease every one of the 200 checks reads.
	if n := databaseReads(s) - before; n > 20 {
		t.Fatalf("200 version checks under the lease read the database %d times", n)
	}
	var rows int
	if err := s.DB.QueryRowContext(context.Background(), "SELECT count(*) FROM authz_listeners").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Fatalf("authz_listeners has %d rows with one server listening, want 1", rows)
	}
	s.Close()
	if err := openAgain(t, s).DB.QueryRowContext(context.Background(), "SELECT count(*) FROM authz_listeners").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Fatalf("a closed server left %d rows in authz_listeners: writers would wait for it", rows)
	}
}

// TestLeaseSeesOtherProcessesOnTheNextRequest: another process (as the CLI
// or another instance would) changes a membership while this server takes
// 300 ms to act on each change it hears of. The writer's command returns
// only once this server has heard, so the very next snapshot after it
// exits, still answered from the lease, is decided on the new state.
func TestLeaseSeesOtherProcessesOnTheNextRequest(t *testing.T) {
	s, dsn, f := leasedStore(t)
	slowListener(t, 300*time.Millisecond)
	steps := []struct {
		action string
		member bool
	}{{"remove-member", false}, {"add-member", true}, {"remove-member", false}, {"add-member", true}}
	for _, step := range steps {
		waitTrusted(t, s)
		if got := f.member(t, f.snap(t)); got == step.member {
			t.Fatalf("before %s: member = %v already", step.action, got)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestWALWatchHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "GATEHOUSE_WALWATCH_DB="+dsn, "GATEHOUSE_WALWATCH_ACTION="+step.action)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("helper process %s: %v\n%s", step.action, err, out)
		}
		reads := databaseReads(s)
		if got := f.member(t, f.snap(t)); got != step.member {
			t.Fatalf("the snapshot right after another process ran %s: member = %v, want %v", step.action, got, step.member)
		}
		// Answered from memory, not by reading the version: what this
		// server heard before the writer returned is what decided. (A lease
		// lapses only when beats stall for leaseFor, 2 s; the helper
		// process takes a fraction of that.)
		if n := databaseReads(s) - reads; n != 0 {
			t.Fatalf("after %s the snapshot read the version %d times: it was not answered from the lease (trusted now: %v)", step.action, n, s.LeaseStats().Trusted)
		}
	}
}

// TestLeaseOfACutOffServerRunsOut: a server that hears of a change only
// after 3 s (longer than its lease) keeps the writer waiting no longer than
// the lease, and by then no longer trusts what it knows: its next check
// reads the table and sees the change.
func TestLeaseOfACutOffServerRunsOut(t *testing.T) {
	s, _, f := leasedStore(t)
	w := openAgain(t, s)
	slowListener(t, 3*time.Second)
	if !f.member(t, f.snap(t)) {
		t.Fatal("the member is denied before any change")
	}
	before := w.LeaseStats()
	if err := w.RemoveMember(f.ctx, f.actr, f.g.ID, f.u.ID); err != nil {
		t.Fatal(err)
	}
	after := w.LeaseStats()
	if after.Timeouts != before.Timeouts+1 {
		t.Fatalf("the writer's waits that ran out: %d -> %d, want one more", before.Timeouts, after.Timeouts)
	}
	if f.member(t, f.snap(t)) {
		t.Fatal("a server that had not heard of the change still granted the removed membership after the writer returned")
	}
}

// TestLeaseSurvivesALostConnection: PostgreSQL drops the LISTEN connection
// while the server is busy with an earlier notification, and a change
// commits before it listens again: that change's notification is lost for
// good. The server must stop trusting what it knew, read the version once
// it listens again, and so decide the next request on the change; then the
// lease comes back.
func TestLeaseSurvivesALostConnection(t *testing.T) {
	s, _, f := leasedStore(t)
	w := openAgain(t, s)
	var channel string
	if err := s.DB.NewRaw("SELECT "+AuthzChannelExpr).Scan(f.ctx, &channel); err != nil {
		t.Fatal(err)
	}
	if !f.member(t, f.snap(t)) { // and the facts are now in memory
		t.Fatal("the member is denied before any change")
	}
	slowListener(t, 500*time.Millisecond)
	// A notification of the version the server already knows: it spends
	// 500 ms on it, and does not read from the connection meanwhile.
	if _, err := w.DB.ExecContext(withoutSettle(f.ctx), "SELECT pg_notify(?, ?)", channel, strconv.FormatInt(f.version(t), 10)); err != nil {
		t.Fatal(err)
	}
	var killed int
	if err := w.DB.NewRaw(`SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity
		WHERE query = 'LISTEN "' || ? || '"'`, channel).Scan(f.ctx, &killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d LISTEN connections, want 1", killed)
	}
	if err := w.RemoveMember(f.ctx, f.actr, f.g.ID, f.u.ID); err != nil {
		t.Fatal(err)
	}
	if f.member(t, f.snap(t)) {
		t.Fatal("a membership removed while the LISTEN connection was down is still granted")
	}
	leaseTestDelay.Store(0)
	waitTrusted(t, s)
	if err := w.AddMember(f.ctx, f.actr, f.g.ID, f.u.ID, 0); err != nil {
		t.Fatal(err)
	}
	if !f.member(t, f.snap(t)) {
		t.Fatal("a membership added after the lease came back is not granted")
	}
}

// TestSettleWaitsOnlyForRunningLeases: a writer waits for a server whose
// lease is running and that has not acknowledged (here a row nobody
// answers for, as a crashed server leaves), never for one whose lease has
// run out, and not at all when every server has acknowledged.
func TestSettleWaitsOnlyForRunningLeases(t *testing.T) {
	s := newPostgresStore(t)
	f := newAuthzFixture(t, s)
	st := s.LeaseStats()
	if st.Waits != 0 {
		t.Fatalf("writes with nobody listening waited %d times", st.Waits)
	}
	if st.Settles == 0 {
		t.Fatal("writes on PostgreSQL did not settle")
	}
	if _, err := s.DB.ExecContext(f.ctx, `INSERT INTO authz_listeners (id, seen, lease_until)
		VALUES ('gone', 0, now() - interval '1 second')`); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveMember(f.ctx, f.actr, f.g.ID, f.u.ID); err != nil {
		t.Fatal(err)
	}
	if got := s.LeaseStats().Waits; got != 0 {
		t.Fatalf("a writer waited %d times for a lease that had run out", got)
	}
	// (A raw write waits too, so this one is told not to.)
	if _, err := s.DB.ExecContext(withoutSettle(f.ctx), `INSERT INTO authz_listeners (id, seen, lease_until)
		VALUES ('crashed', 0, now() + interval '30 seconds')`); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMember(f.ctx, f.actr, f.g.ID, f.u.ID, 0); err != nil {
		t.Fatal(err)
	}
	if st := s.LeaseStats(); st.Waits != 1 || st.Timeouts != 1 {
		t.Fatalf("waits %d, timeouts %d for a running lease never acknowledged, want 1 and 1", st.Waits, st.Timeouts)
	}
}

func TestWritesTellsWritesFromReads(t *testing.T) {
	for q, want := range map[string]bool{
		"COMMIT": true,
		"INSERT INTO audit_events (at) VALUES (1)":                                true,
		"  UPDATE users SET name = 'x'":                                           true,
		"DELETE FROM sessions WHERE 1=1":                                          true,
		"WITH gone AS (DELETE FROM grants RETURNING 1) SELECT count(*) FROM gone": true,
		"SELECT version FROM authz_version WHERE id = 1":                          false,
		"WITH x AS (SELECT 1) SELECT * FROM x":                                    false,
		"BEGIN":                                                                   false,
		"ROLLBACK":                                                                false,
	} {
		if got := writes(q); got != want {
			t.Errorf("writes(%q) = %v, want %v", q, got, want)
		}
	}
}

// sendBeat records beat n's send time as beat does, without the database.
func (l *authzLease) sendBeat() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	l.sent[l.seq%beatsKept] = l.now()
	return l.seq
}

// TestLeaseBeatsThatComeBackLate: a beat grants trust until leaseFor after
// it was sent, so one that comes back later than that grants nothing; and
// one that comes back after beatsKept newer beats were sent (16 s at
// beatInterval) grants nothing either, though its slot in the ring now
// holds a fresh send time. The lease's clock is played, not slept.
func TestLeaseBeatsThatComeBackLate(t *testing.T) {
	var now time.Duration
	l := newAuthzLease()
	l.clock = func() time.Duration { return now }
	l.synced = true // as after the first beat: no read of the version

	// A beat that comes back at once grants leaseFor from its sending.
	n := l.sendBeat()
	now += 10 * time.Millisecond
	l.gotBeat(context.Background(), nil, n)
	if _, ok := l.current(); !ok {
		t.Fatal("a beat that came back at once granted no trust")
	}
	now += leaseFor
	if _, ok := l.current(); ok {
		t.Fatal("the trust outlived leaseFor after its beat was sent")
	}

	// A beat that comes back 17 s after it was sent, no beat in between
	// (the beating goroutine stalled).
	n = l.sendBeat()
	now += 17 * time.Second
	l.gotBeat(context.Background(), nil, n)
	if _, ok := l.current(); ok {
		t.Fatal("a beat 17 s late granted trust")
	}

	// A beat that comes back after beatsKept newer ones were sent, one per
	// beatInterval: more than 16 s late, its slot reused.
	late := l.sendBeat()
	for range beatsKept {
		now += beatInterval
		l.sendBeat()
	}
	now += time.Millisecond
	l.gotBeat(context.Background(), nil, late)
	if _, ok := l.current(); ok {
		t.Fatalf("a beat %d beats (%s) late granted trust", beatsKept, beatsKept*beatInterval)
	}
	// The newest beat still does (or the checks above could not fail).
	l.gotBeat(context.Background(), nil, l.seq)
	if _, ok := l.current(); !ok {
		t.Fatal("the newest beat granted no trust")
	}
}

// TestLeaseTrustEndsWhenItsListenConnectionDies: notifications sent while
// the LISTEN connection is down are lost for good, so the moment the
// server notices its connection is gone it must stop trusting what it
// heard (LeaseStats().Trusted false), not merely let the lease run out
// (beats sent by the pool would keep renewing it), and trust again only
// once a beat comes back on the new connection.
func TestLeaseTrustEndsWhenItsListenConnectionDies(t *testing.T) {
	s, _, f := leasedStore(t)
	var channel string
	if err := s.DB.NewRaw("SELECT "+AuthzChannelExpr).Scan(f.ctx, &channel); err != nil {
		t.Fatal(err)
	}
	var killed int
	if err := s.DB.NewRaw(`SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity
		WHERE query = 'LISTEN "' || ? || '"'`, channel).Scan(f.ctx, &killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d LISTEN connections, want 1", killed)
	}
	// The listener waits a while after the error before it listens again,
	// and beats come back only after that: the trust must end in between.
	deadline := time.Now().Add(15 * time.Second)
	for s.LeaseStats().Trusted {
		if time.Now().After(deadline) {
			t.Fatal("the store still trusted the version it heard 15 s after its LISTEN connection was killed")
		}
		time.Sleep(time.Millisecond)
	}
	waitTrusted(t, s)
	if !f.member(t, f.snap(t)) {
		t.Fatal("the member is denied after the lease came back")
	}
}
