package db

import (
	"context"
	"testing"
	"time"
)

func TestStats(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Date(2026, 3, 10, 0, 30, 0, 0, time.UTC)
		s.Now = func() time.Time { return now }
		at := func(when time.Time, action, target string) {
			t.Helper()
			s.Now = func() time.Time { return when }
			if err := s.Audit(ctx, Actor{Email: "x@example.com"}, Event{Action: action, Target: target}); err != nil {
				t.Fatal(err)
			}
			s.Now = func() time.Time { return now }
		}
		// Day buckets are UTC days: 23:59:59.999 and 00:00 fall on different days.
		at(time.Date(2026, 3, 8, 23, 59, 59, 999e6, time.UTC), ActionLogin, "a")
		at(time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC), ActionLogin, "a")
		at(time.Date(2026, 3, 9, 13, 0, 0, 0, time.UTC), ActionLogin, "a")
		at(time.Date(2026, 3, 10, 0, 10, 0, 0, time.UTC), ActionLogin, "a")
		at(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), ActionLogin, "too old")
		at(time.Date(2026, 3, 9, 1, 0, 0, 0, time.UTC), ActionLogout, "other action")

		days, err := s.DailyCounts(ctx, ActionLogin, 4)
		if err != nil {
			t.Fatal(err)
		}
		want := []int{0, 1, 2, 1}
		if len(days) != 4 {
			t.Fatalf("%d days, want 4", len(days))
		}
		for i, d := range days {
			if wantDay := time.Date(2026, 3, 7+i, 0, 0, 0, 0, time.UTC); !d.Day.Equal(wantDay) || d.Count != want[i] {
				t.Errorf("day %d: %v %d, want %v %d", i, d.Day, d.Count, wantDay, want[i])
			}
		}

		// Panel denials count towards their dashboard.
		for _, target := range []string{"sales", "sales/reps", "sales/reps", "finance", "finance", "support"} {
			at(now.Add(-time.Hour), ActionAccessDenied, target)
		}
		at(now.Add(-48*time.Hour), ActionAccessDenied, "support")
		top, err := s.TopDenied(ctx, now.Add(-24*time.Hour), 2)
		if err != nil || len(top) != 2 || top[0] != (NameCount{"sales", 3}) || top[1] != (NameCount{"finance", 2}) {
			t.Errorf("TopDenied: %+v %v", top, err)
		}

		ann, bob, cy := testUser(t, s, "ann@example.com"), testUser(t, s, "bob@example.com"), testUser(t, s, "cy@example.com")
		big, _ := s.CreateGroup(ctx, Actor{}, "Big", "")
		small, _ := s.CreateGroup(ctx, Actor{}, "small", "")
		_, _ = s.CreateGroup(ctx, Actor{}, "Empty", "")
		_ = s.AddMember(ctx, Actor{}, big.ID, ann.ID, 0)
		_ = s.AddMember(ctx, Actor{}, big.ID, bob.ID, now.Add(time.Hour).UnixMilli())
		_ = s.AddMember(ctx, Actor{}, small.ID, ann.ID, 0)
		_ = s.AddMember(ctx, Actor{}, small.ID, cy.ID, now.Add(time.Minute).UnixMilli())
		now = now.Add(30 * time.Minute) // cy's membership in small has expired
		largest, err := s.LargestGroups(ctx, 2)
		if err != nil || len(largest) != 2 || largest[0] != (NameCount{"Big", 2}) || largest[1] != (NameCount{"small", 1}) {
			t.Errorf("LargestGroups: %+v %v", largest, err)
		}

		_ = s.SetAdmin(ctx, Actor{}, ann.ID, true)
		_ = s.SetActive(ctx, Actor{}, bob.ID, false)
		totals, err := s.CountTotals(ctx)
		if err != nil || totals != (Totals{Users: 3, ActiveUsers: 2, Admins: 1, Groups: 3}) {
			t.Errorf("CountTotals: %+v %v", totals, err)
		}
	})
}
