package db

import (
	"context"
	"testing"
)

// BenchmarkAuthzVersion is the version check every logged-in request makes
// while nothing commits: on SQLite, a look at the wal-index header.
func BenchmarkAuthzVersion(b *testing.B) {
	s := newSQLiteStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.AuthzVersion(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthzVersionRead is the database read a request makes after a
// commit (and every request on PostgreSQL): one row, a prepared statement.
func BenchmarkAuthzVersionRead(b *testing.B) {
	s := newSQLiteStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.readVersionShared(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthzVersionReadParallel is that read from concurrent requests,
// which share reads (see readVersionShared).
func BenchmarkAuthzVersionReadParallel(b *testing.B) {
	s := newSQLiteStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.readVersionShared(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
