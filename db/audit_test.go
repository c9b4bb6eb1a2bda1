package db

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestListAuditFilters(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		s.Now = func() time.Time { return now }
		write := func(actor, action, target string) {
			t.Helper()
			if err := s.Audit(ctx, Actor{Email: actor, IP: "10.0.0.1"}, Event{Action: action, Target: target, Detail: map[string]string{"k": "v"}}); err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Minute)
		}
		write("ann@example.com", ActionLogin, "ann@example.com")
		write("ann@example.com", ActionLoginFailed, "ann@example.com")
		write("cli:root", ActionGroupCreate, "Sales")
		write("bob_x@example.com", ActionLogin, "bob_x@example.com")
		write("bobbx@example.com", ActionLogout, "bobbx@example.com")

		actions := func(events []AuditEvent) []string {
			var out []string
			for _, e := range events {
				out = append(out, e.ActorEmail+" "+e.Action)
			}
			return out
		}
		for _, tc := range []struct {
			name string
			f    AuditFilter
			want []string
		}{
			{"newest first", AuditFilter{Limit: 2}, []string{"bobbx@example.com logout", "bob_x@example.com login"}},
			{"actor, any case", AuditFilter{Actor: "ANN@"}, []string{"ann@example.com login.failed", "ann@example.com login"}},
			{"actor, _ is literal", AuditFilter{Actor: "bob_"}, []string{"bob_x@example.com login"}},
			{"exact action", AuditFilter{Action: ActionLogin}, []string{"bob_x@example.com login", "ann@example.com login"}},
			{"action prefix", AuditFilter{Action: "login."}, []string{"ann@example.com login.failed"}},
			{"since and until", AuditFilter{Since: now.Add(-4 * time.Minute), Until: now.Add(-2 * time.Minute)}, []string{"cli:root group.create", "ann@example.com login.failed"}},
		} {
			events, total, err := s.ListAudit(ctx, tc.f)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if got := actions(events); !slices.Equal(got, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			}
			if tc.f.Limit == 0 && total != len(tc.want) {
				t.Errorf("%s: total %d", tc.name, total)
			}
		}
		events, total, _ := s.ListAudit(ctx, AuditFilter{Limit: 2, Offset: 4})
		if total != 5 || len(events) != 1 || events[0].Action != ActionLogin || events[0].Detail != `{"k":"v"}` ||
			events[0].IP != "10.0.0.1" || !events[0].Time().Equal(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) {
			t.Errorf("last page: %+v total %d", events, total)
		}
	})
}

func TestCountRecentAndDenialDedupe(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		s.Now = func() time.Time { return now }
		for i := range 3 {
			_ = s.Audit(ctx, Actor{Email: "ann@example.com", IP: "10.0.0.1"}, Event{Action: ActionLoginFailed, Target: "ann@example.com"})
			if i < 2 {
				now = now.Add(time.Minute)
			}
		}
		_ = s.Audit(ctx, Actor{Email: "bob@example.com", IP: "10.0.0.1"}, Event{Action: ActionLoginFailed, Target: "bob@example.com"})
		n, oldest, err := s.CountRecent(ctx, ActionLoginFailed, "ann@example.com", false, now.Add(-90*time.Second))
		if err != nil || n != 2 || !oldest.Equal(now.Add(-time.Minute)) {
			t.Errorf("by target: %d %v %v", n, oldest, err)
		}
		if n, _, _ := s.CountRecent(ctx, ActionLoginFailed, "10.0.0.1", true, now.Add(-time.Hour)); n != 4 {
			t.Errorf("by ip: %d, want 4", n)
		}
		if n, oldest, err := s.CountRecent(ctx, ActionLoginFailed, "nobody", false, now.Add(-time.Hour)); n != 0 || !oldest.IsZero() || err != nil {
			t.Errorf("none: %d %v %v", n, oldest, err)
		}

		// Denials: one row per actor and target within the dedupe window;
		// anonymous actors are stored with a NULL actor id.
		deny := func(a Actor, target string) {
			t.Helper()
			if err := s.AuditDenial(ctx, a, target, "not-member", "not in a group", time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		ann := testUser(t, s, "ann@example.com")
		deny(Actor{ID: ann.ID, Email: ann.Email}, "sales")
		deny(Actor{ID: ann.ID, Email: ann.Email}, "sales")
		deny(Actor{ID: ann.ID, Email: ann.Email}, "sales/reps")
		deny(Actor{}, "sales")
		now = now.Add(2 * time.Minute)
		deny(Actor{ID: ann.ID, Email: ann.Email}, "sales")
		events, total, _ := s.ListAudit(ctx, AuditFilter{Action: ActionAccessDenied})
		if total != 4 {
			t.Fatalf("%d denials stored, want 4: %+v", total, events)
		}
		var anonymous int64 = -1
		for _, e := range events {
			if e.ActorEmail == "" {
				anonymous = e.ActorID
			}
		}
		if anonymous != 0 {
			t.Errorf("anonymous denial actor id %d", anonymous)
		}
		var nulls int
		if err := s.DB.NewRaw("SELECT COUNT(*) FROM audit_events WHERE actor_id IS NULL AND action = ?", ActionAccessDenied).Scan(ctx, &nulls); err != nil || nulls != 1 {
			t.Errorf("%d denials with a NULL actor id, want 1 (%v)", nulls, err)
		}
	})
}
