package db

import (
	"context"
	"fmt"
	"reflect"
	"testing"
)

// plantAuditFailure makes inserting an audit row with action fail, the
// last step of every audited store method; the returned func removes it.
func plantAuditFailure(t *testing.T, s *Store, action string) func() {
	t.Helper()
	ctx := context.Background()
	var stmts, undo []string
	if s.Dialect == Postgres {
		stmts = []string{
			fmt.Sprintf(`CREATE FUNCTION planted_failure() RETURNS trigger AS $$ BEGIN
				IF NEW.action = '%s' THEN RAISE EXCEPTION 'planted failure'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`, action),
			`CREATE TRIGGER planted_failure BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION planted_failure()`,
		}
		undo = []string{`DROP TRIGGER planted_failure ON audit_events`, `DROP FUNCTION planted_failure()`}
	} else {
		stmts = []string{fmt.Sprintf(`CREATE TRIGGER planted_failure BEFORE INSERT ON audit_events
			WHEN NEW.action = '%s' BEGIN SELECT RAISE(ABORT, 'planted failure'); END`, action)}
		undo = []string{`DROP TRIGGER planted_failure`}
	}
	for _, q := range stmts {
		if _, err := s.DB.ExecContext(ctx, q); err != nil {
			t.Fatalf("planting the failure: %v", err)
		}
	}
	return func() {
		t.Helper()
		for _, q := range undo {
			if _, err := s.DB.ExecContext(ctx, q); err != nil {
				t.Fatalf("removing the planted failure: %v", err)
			}
		}
	}
}

// TestTransactionsFailingAtALaterStepLeaveNothing: a store method whose
// last step (its audit row) fails, after it has already written, leaves
// the database exactly as it was: no half-applied change, no row without
// its audit, no moved authorization version. Once the failure is removed,
// the same call changes the database (so the comparison can see a change).
func TestTransactionsFailingAtALaterStepLeaveNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		fillForCopy(t, s)
		testUser(t, s, "dan@example.com") // in no group
		a := Actor{Email: "admin@example.com"}
		id := func(id int64, err error) int64 {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		user := func(email string) int64 { u, err := s.UserByEmail(ctx, email); return id(u.ID, err) }
		group := func(name string) int64 { g, err := s.GroupByName(ctx, name); return id(g.ID, err) }
		pending := func() int64 {
			reqs, _, err := s.ListAccessRequests(ctx, RequestPending, 10, 0)
			if err != nil || len(reqs) == 0 {
				t.Fatalf("no pending request: %v", err)
			}
			return reqs[0].ID
		}
		for _, tc := range []struct {
			name, action string
			do           func() error
		}{
			{"deactivate a user with a session", ActionUserDeactivate, func() error { return s.SetActive(ctx, a, user("bob@example.com"), false) }},
			{"change a password (revokes sessions)", ActionPasswordChange, func() error {
				return s.SetPassword(ctx, a, user("ann@example.com"), "new-hash", false)
			}},
			{"add a member", ActionMemberAdd, func() error { return s.AddMember(ctx, a, group("Ops"), user("dan@example.com"), 0) }},
			{"delete a group with members and grants", ActionGroupDelete, func() error { return s.DeleteGroup(ctx, a, group("Sales")) }},
			{"create a user", ActionUserCreate, func() error {
				_, err := s.CreateUser(ctx, a, NewUser{Email: "eve@example.com", PasswordHash: "h"})
				return err
			}},
			{"approve a request (adds a membership)", ActionRequestApprove, func() error {
				return s.DecideAccessRequest(ctx, a, pending(), true, group("Ops"), "ok")
			}},
		} {
			before := dumpAll(t, s)
			version := id(s.AuthzVersion(ctx))
			undo := plantAuditFailure(t, s, tc.action)
			err := tc.do()
			undo()
			if err == nil {
				t.Fatalf("%s: no error although its audit row could not be written", tc.name)
			}
			if after := dumpAll(t, s); !reflect.DeepEqual(after, before) {
				for table := range before {
					if !reflect.DeepEqual(after[table], before[table]) {
						t.Errorf("%s failed (%v) but changed %s:\nbefore %+v\nafter  %+v", tc.name, err, table, before[table], after[table])
					}
				}
			}
			if v := id(s.AuthzVersion(ctx)); v != version {
				t.Errorf("%s failed but moved the authorization version from %d to %d", tc.name, version, v)
			}
			if err := tc.do(); err != nil {
				t.Fatalf("%s without the planted failure: %v", tc.name, err)
			}
			if reflect.DeepEqual(dumpAll(t, s), before) {
				t.Errorf("%s changed nothing even when it succeeded", tc.name)
			}
		}
	})
}
