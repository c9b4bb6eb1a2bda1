package app

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/alexedwards/argon2id"

	"gatehouse/db"
)

// TestLoginUpgradesAnOldHash: a password hashed with older argon2
// parameters still logs in, and the login stores a hash made with the
// current parameters (sessions are kept, and the new hash logs in too).
func TestLoginUpgradesAnOldHash(t *testing.T) {
	ta := newTestApp(t)
	ctx := context.Background()
	older := &argon2id.Params{Memory: 512, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	oldHash, err := db.NewHasher(older, 1, 0).Hash(ctx, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	u, err := ta.store.CreateUser(ctx, db.Actor{Email: "test"}, db.NewUser{Email: "ann@example.com", PasswordHash: oldHash})
	if err != nil {
		t.Fatal(err)
	}
	c := ta.login(t, "ann@example.com")

	got, err := ta.store.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PasswordHash == oldHash {
		t.Fatal("the login kept the hash made with the older parameters")
	}
	params, _, _, err := db.DecodeHash(got.PasswordHash)
	if err != nil {
		t.Fatalf("the stored hash does not decode: %v", err)
	}
	if params.Memory != testHashParams.Memory || params.Iterations != testHashParams.Iterations ||
		params.Parallelism != testHashParams.Parallelism || params.KeyLength != testHashParams.KeyLength {
		t.Errorf("the stored hash has parameters %+v, want the current %+v", params, testHashParams)
	}
	if ok, rehash, err := ta.hasher.Verify(ctx, testPassword, got.PasswordHash); !ok || rehash || err != nil {
		t.Errorf("the upgraded hash: match %v, rehash %v, %v", ok, rehash, err)
	}
	if res, _ := ta.get(t, c, "/", false); res.StatusCode != http.StatusOK {
		t.Errorf("the session of the upgrading login: %d", res.StatusCode)
	}
	ta.login(t, "ann@example.com") // the new hash logs in
	res, _ := ta.post(t, ta.client(), "/login", url.Values{"email": {"ann@example.com"}, "password": {"not the password"}})
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong password after the upgrade: %d", res.StatusCode)
	}
}
