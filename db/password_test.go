package db

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
)

func TestPasswordPolicy(t *testing.T) {
	for _, tc := range []struct {
		pw, want string
	}{
		{"correct horse battery", ""},
		{"short", "at least 12"},
		{strings.Repeat("a", 257), "at most 256"},
		{strings.Repeat("é", 256), ""}, // counted in characters, not bytes
		{"password1234", "too common"},
		{"PASSWORD1234", "too common"},
		{"qwertyuiop123", "too common"},
		{"bad\xffutf8-password", "invalid characters"},
	} {
		err := CheckPasswordPolicy(tc.pw)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: unexpected error %v", tc.pw, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want %q", tc.pw, err, tc.want)
		}
	}
}

func TestHasherVerifyAndRehash(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(nil, 1, time.Second)
	hash, err := h.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash does not use the OWASP parameters: %s", hash)
	}
	if ok, rehash, err := h.Verify(ctx, "correct horse battery", hash); !ok || rehash || err != nil {
		t.Errorf("Verify(right) = %v %v %v", ok, rehash, err)
	}
	if ok, _, _ := h.Verify(ctx, "correct horse batterY", hash); ok {
		t.Error("wrong password (one letter case) verified: case must not be folded")
	}
	if ok, _, err := h.Verify(ctx, "anything at all", ""); ok || err != nil {
		t.Errorf("empty hash (unknown user) = %v %v", ok, err)
	}
	weak, _ := argon2id.CreateHash("correct horse battery", &argon2id.Params{Memory: 4096, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if ok, rehash, err := h.Verify(ctx, "correct horse battery", weak); !ok || !rehash || err != nil {
		t.Errorf("old-parameter hash: ok=%v rehash=%v err=%v, want a rehash", ok, rehash, err)
	}
}

// TestDummyHashCostsWhatARealOneCosts: the hash unknown users are checked
// against carries the hasher's own parameters (so checking it takes as long
// as checking a real one), decodes like a real one, differs per hasher and
// matches nothing.
func TestDummyHashCostsWhatARealOneCosts(t *testing.T) {
	h := NewHasher(nil, 1, time.Second)
	params, salt, key, err := DecodeHash(h.dummy)
	if err != nil {
		t.Fatalf("the dummy hash does not decode: %v (%s)", err, h.dummy)
	}
	if *params != *PasswordParams {
		t.Errorf("dummy hash parameters %+v, want the hasher's %+v", *params, *PasswordParams)
	}
	if len(salt) != int(PasswordParams.SaltLength) || len(key) != int(PasswordParams.KeyLength) {
		t.Errorf("dummy salt/key lengths %d/%d, want %d/%d", len(salt), len(key), PasswordParams.SaltLength, PasswordParams.KeyLength)
	}
	if NewHasher(nil, 1, time.Second).dummy == h.dummy {
		t.Error("two hashers share one dummy hash: its salt and key are not random")
	}
	if ok, err := argon2id.ComparePasswordAndHash("gatehouse-dummy-password", h.dummy); ok || err != nil {
		t.Errorf("a password matched the dummy hash (ok=%v, err=%v)", ok, err)
	}
}

func TestDecodeHashRefusesAbsurdParameters(t *testing.T) {
	salt, key := "c2FsdHNhbHRzYWx0c2FsdA", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	for _, tc := range []struct {
		name string
		hash string
		ok   bool
	}{
		{"sane", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key, true},
		{"4 GiB memory", "$argon2id$v=19$m=4194304,t=2,p=1$" + salt + "$" + key, false},
		{"1000 iterations", "$argon2id$v=19$m=19456,t=1000,p=1$" + salt + "$" + key, false},
		{"255 lanes", "$argon2id$v=19$m=19456,t=2,p=255$" + salt + "$" + key, false},
		{"zero iterations", "$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key, false},
		{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key, false},
		{"garbage", "not a hash", false},
		{"short key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$a2V5", false},
	} {
		_, _, _, err := DecodeHash(tc.hash)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestHasherShedsLoad(t *testing.T) {
	h := NewHasher(&argon2id.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}, 2, 10*time.Millisecond)
	release := h.HoldForTest()
	// ErrBusy itself is the proof that the wait is bounded: an unbounded
	// wait would block here until the test's own timeout.
	if _, err := h.Hash(context.Background(), "x"); err != ErrBusy {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
	release()
	if _, err := h.Hash(context.Background(), "x"); err != nil {
		t.Errorf("after release: %v", err)
	}
}

func TestTemporaryPassword(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		p := TemporaryPassword()
		if err := CheckPasswordPolicy(p); err != nil {
			t.Fatalf("%q fails the policy: %v", p, err)
		}
		if seen[p] {
			t.Fatal("repeated temporary password")
		}
		seen[p] = true
	}
}

func TestNormalizeEmail(t *testing.T) {
	for in, want := range map[string]string{
		" Ann@Example.COM ":       "ann@example.com",
		"a.b+tag@sub.example.org": "a.b+tag@sub.example.org",
		"":                        "",
		"no-at-sign":              "",
		"Carol@Corp":              "carol@corp", // a single-label (intranet) domain
		"ann@":                    "",
		"Ann <ann@example.com>":   "",
		"ann@example.com\n":       "ann@example.com",
	} {
		got, err := NormalizeEmail(in)
		if (want == "") != (err != nil) || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
