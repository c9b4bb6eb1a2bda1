package db

import (
	"context"
	"testing"
)

// BenchmarkAuthzVersion is the one read every logged-in request makes.
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

// BenchmarkAuthzVersionParallel is the same read from concurrent requests,
// which share reads (see AuthzVersion).
func BenchmarkAuthzVersionParallel(b *testing.B) {
	s := newSQLiteStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.AuthzVersion(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
