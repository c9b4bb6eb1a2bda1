package conns

import (
	"errors"
	"testing"
)

func closed(c *Conn) bool {
	select {
	case <-c.Closed():
		return true
	default:
		return false
	}
}

// TestPerKeyClosesTheOldest: a session's fifth connection for one key
// closes its first, and the others stay.
func TestPerKeyClosesTheOldest(t *testing.T) {
	b := New(Limits{PerKey: 4, PerSession: 16, PerUser: 32, Total: 100})
	var cs []*Conn
	for range 5 {
		c, err := b.Acquire(Claim{Session: "s", User: 1, Key: "dashboard:a"})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	if !closed(cs[0]) {
		t.Fatal("the oldest of five connections for one key was not told to close")
	}
	for i, c := range cs[1:] {
		if closed(c) {
			t.Fatalf("connection %d was told to close", i+1)
		}
	}
	// Another key of the same session is not touched.
	other, err := b.Acquire(Claim{Session: "s", User: 1, Key: "dashboard:b"})
	if err != nil || closed(other) || closed(cs[1]) {
		t.Fatalf("another key: %v, closed %v, second of the first key closed %v", err, closed(other), closed(cs[1]))
	}
	// The closed one is held until released.
	if b.Open() != 6 {
		t.Fatalf("held %d, want 6 (the closed one until it is released)", b.Open())
	}
	cs[0].Release()
	cs[0].Release()
	if b.Open() != 5 {
		t.Fatalf("held %d after releasing the closed one (twice), want 5", b.Open())
	}
}

// TestPerSessionClosesTheOldest: past PerSession over several keys, the
// session's oldest closes.
func TestPerSessionClosesTheOldest(t *testing.T) {
	b := New(Limits{PerKey: 4, PerSession: 3, PerUser: 32, Total: 100})
	var cs []*Conn
	for _, k := range []string{"a", "b", "c", "d"} {
		c, err := b.Acquire(Claim{Session: "s", User: 1, Key: k})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	if !closed(cs[0]) || closed(cs[1]) || closed(cs[2]) || closed(cs[3]) {
		t.Fatalf("closed: %v %v %v %v, want only the first", closed(cs[0]), closed(cs[1]), closed(cs[2]), closed(cs[3]))
	}
}

// TestPerUserRefuses: a user's sessions together hold at most PerUser; the
// next is refused and nobody's connection is closed; a release makes room.
func TestPerUserRefuses(t *testing.T) {
	b := New(Limits{PerKey: 4, PerSession: 16, PerUser: 5, Total: 100})
	var cs []*Conn
	for i := range 5 {
		c, err := b.Acquire(Claim{Session: string(rune('a' + i)), User: 1, Key: "k"})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	if _, err := b.Acquire(Claim{Session: "z", User: 1, Key: "k"}); !errors.Is(err, ErrUserFull) {
		t.Fatalf("the user's sixth connection: %v, want ErrUserFull", err)
	}
	for i, c := range cs {
		if closed(c) {
			t.Fatalf("a refused connection closed connection %d", i)
		}
	}
	if _, err := b.Acquire(Claim{Session: "y", User: 2, Key: "k"}); err != nil {
		t.Fatalf("another user: %v", err)
	}
	cs[2].Release()
	if _, err := b.Acquire(Claim{Session: "z", User: 1, Key: "k"}); err != nil {
		t.Fatalf("after a release: %v", err)
	}
}

// TestTotalRefuses: the server-wide budget refuses everyone past it,
// counting connections told to close until they are released.
func TestTotalRefuses(t *testing.T) {
	b := New(Limits{PerKey: 1, PerSession: 16, PerUser: 32, Total: 3})
	first, _ := b.Acquire(Claim{Session: "s", User: 1, Key: "k"})
	if _, err := b.Acquire(Claim{Session: "s", User: 1, Key: "k"}); err != nil { // closes first
		t.Fatal(err)
	}
	if !closed(first) {
		t.Fatal("PerKey 1: the first was not told to close")
	}
	if _, err := b.Acquire(Claim{Session: "t", User: 2, Key: "k"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Acquire(Claim{Session: "u", User: 3, Key: "k"}); !errors.Is(err, ErrFull) {
		t.Fatalf("past the total (one told to close, not yet released): %v, want ErrFull", err)
	}
	first.Release()
	if _, err := b.Acquire(Claim{Session: "u", User: 3, Key: "k"}); err != nil {
		t.Fatalf("after the closed one was released: %v", err)
	}
}

func TestDefaultTotal(t *testing.T) {
	for _, tc := range []struct {
		limit uint64
		want  int
	}{{0, 512}, {1024, 512}, {20_000, 10_000}, {1 << 20, MaxDefaultTotal}} {
		if got := DefaultTotal(tc.limit); got != tc.want {
			t.Errorf("DefaultTotal(%d) = %d, want %d", tc.limit, got, tc.want)
		}
	}
}

func TestRaiseFileLimit(t *testing.T) {
	before, err := FileLimit()
	if err != nil {
		t.Skip(err)
	}
	after, err := RaiseFileLimit()
	if err != nil || after < before {
		t.Fatalf("RaiseFileLimit: %d, %v (was %d)", after, err, before)
	}
}
