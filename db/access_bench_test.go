package db

import (
	"context"
	"testing"
)

// BenchmarkAccessAtScale plans and applies access files against 20,000
// users, 1,000 groups and 100,000 memberships (SQLite):
//
//	go test -run '^$' -bench AccessAtScale -benchtime 3x ./db
//
// read: the whole state in one snapshot; plan: a file equal to the
// database; apply: a file that drops 2% of the memberships, then one that
// restores them (each op is both applies, each one transaction with its
// audit rows).
func BenchmarkAccessAtScale(b *testing.B) {
	ctx := context.Background()
	s := newSQLiteStore(b)
	if _, err := s.SeedBulk(ctx, SeedSpec{Users: 20000, Groups: 1000, Memberships: 100000, PasswordHash: "x", Seed: 1}); err != nil {
		b.Fatal(err)
	}
	full, err := s.ReadAccessState(ctx)
	if err != nil {
		b.Fatal(err)
	}
	fewer := AccessState{Grants: full.Grants}
	n := 0
	for _, g := range full.Groups {
		g2 := g
		g2.Members = nil
		for _, m := range g.Members {
			if n++; n%50 != 0 {
				g2.Members = append(g2.Members, m)
			}
		}
		fewer.Groups = append(fewer.Groups, g2)
	}
	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.ReadAccessState(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plan-unchanged", func(b *testing.B) {
		for b.Loop() {
			p, err := s.PlanAccess(ctx, fixedState(full))
			if err != nil || len(p.Changes) != 0 {
				b.Fatal(err, len(p.Changes))
			}
		}
	})
	b.Run("apply-2pct-out-and-back", func(b *testing.B) {
		for b.Loop() {
			for _, st := range []AccessState{fewer, full} {
				p, err := s.ApplyAccess(ctx, Actor{Email: "bench"}, "bench.yaml", "bench", fixedState(st))
				if err != nil || len(p.Changes) != 2000 {
					b.Fatal(err, len(p.Changes))
				}
			}
		}
	})
}
