package apps

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"gatehouse/db"
)

// The identity assertion: every forwarded request carries
// X-Gatehouse-Assertion, a JWT signed with ES256 that an upstream can
// verify with the keys at <base-url>/.well-known/jwks.json (Grafana's
// [auth.jwt], for one), so it need not trust the plain headers alone.

// keysSetting is the settings row holding the signing keys (JSON).
const keysSetting = "apps_signing_keys"

// AssertionTTL is how long an assertion is good for.
const AssertionTTL = time.Minute

// RetiredKeyTTL is how long a key replaced by `gatehouse keys rotate`
// stays in the JWKS, for verifiers that cache it.
const RetiredKeyTTL = 24 * time.Hour

// reloadEvery bounds how long a server signs with a key after another
// process rotated it (the old key stays published meanwhile).
const reloadEvery = 30 * time.Second

// storedKeys is the settings row's JSON.
type storedKeys struct {
	Keys []storedKey `json:"keys"`
}

type storedKey struct {
	Kid       string          `json:"kid"`
	CreatedMS int64           `json:"created"`
	RetiredMS int64           `json:"retired,omitempty"`
	JWK       json.RawMessage `json:"jwk"` // the private key
}

func newStoredKey(now time.Time) (storedKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return storedKey{}, err
	}
	kid := db.RandomToken(12)
	raw, err := jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}.MarshalJSON()
	if err != nil {
		return storedKey{}, err
	}
	return storedKey{Kid: kid, CreatedMS: now.UnixMilli(), JWK: raw}, nil
}

// signer signs assertions with the current key, reading the keys again
// every reloadEvery.
type signer struct {
	store  *db.Store
	issuer string

	mu       sync.Mutex
	loadedAt time.Time
	keys     storedKeys
	current  jose.Signer
}

func newSigner(ctx context.Context, s *db.Store, issuer string) (*signer, error) {
	sg := &signer{store: s, issuer: issuer}
	if err := sg.load(ctx); err != nil {
		return nil, err
	}
	return sg, nil
}

// load reads the keys, making the first one when there is none.
func (sg *signer) load(ctx context.Context) error {
	raw, err := sg.store.Setting(ctx, keysSetting)
	if errors.Is(err, db.ErrNotFound) {
		k, err := newStoredKey(sg.store.Now())
		if err != nil {
			return err
		}
		first, _ := json.Marshal(storedKeys{Keys: []storedKey{k}})
		raw, err = sg.store.InitSetting(ctx, keysSetting, string(first))
		if err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	var ks storedKeys
	if err := json.Unmarshal([]byte(raw), &ks); err != nil || len(ks.Keys) == 0 {
		return fmt.Errorf("the stored assertion signing keys are unreadable; run 'gatehouse keys rotate'")
	}
	cur := ks.Keys[len(ks.Keys)-1]
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(cur.JWK); err != nil {
		return fmt.Errorf("the current assertion signing key is unreadable: %w", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jwk},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return err
	}
	sg.mu.Lock()
	sg.keys, sg.current, sg.loadedAt = ks, signer, time.Now()
	sg.mu.Unlock()
	return nil
}

// claims are the assertion's claims beyond the registered ones.
type claims struct {
	Email  string   `json:"email"`
	Name   string   `json:"name"`
	Groups []string `json:"groups"`
}

// assertion signs the identity of u (in groups) for the app at audience.
func (sg *signer) assertion(audience string, u db.User, groups []string) (string, error) {
	sg.mu.Lock()
	stale := time.Since(sg.loadedAt) > reloadEvery
	if stale {
		sg.loadedAt = time.Now() // one reload at a time; others sign with what is loaded
	}
	s := sg.current
	sg.mu.Unlock()
	if stale {
		go func() { _ = sg.load(context.Background()) }()
	}
	now := sg.store.Now()
	if groups == nil {
		groups = []string{}
	}
	std := jwt.Claims{Issuer: sg.issuer, Audience: jwt.Audience{audience}, Subject: strconv.FormatInt(u.ID, 10),
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Second)),
		Expiry: jwt.NewNumericDate(now.Add(AssertionTTL))}
	return jwt.Signed(s).Claims(std).Claims(claims{Email: u.Email, Name: u.Name, Groups: groups}).Serialize()
}

// jwks returns the public keys: the current one and those retired less
// than RetiredKeyTTL ago.
func (sg *signer) jwks(now time.Time) jose.JSONWebKeySet {
	sg.mu.Lock()
	ks := sg.keys
	sg.mu.Unlock()
	var set jose.JSONWebKeySet
	for _, k := range ks.Keys {
		if k.RetiredMS != 0 && now.UnixMilli()-k.RetiredMS > RetiredKeyTTL.Milliseconds() {
			continue
		}
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(k.JWK); err != nil {
			continue
		}
		set.Keys = append(set.Keys, jwk.Public())
	}
	return set
}

// JWKS serves the assertion keys (mounted at /.well-known/jwks.json on the
// main origin). It reads them from the database, so a rotation by the CLI
// is published at once.
func (h *Handler) JWKS(w http.ResponseWriter, r *http.Request) {
	if err := h.keys.load(r.Context()); err != nil {
		h.cfg.Log.ErrorContext(r.Context(), "reading the signing keys failed", "err", err)
		http.Error(w, "The keys cannot be read just now.", http.StatusInternalServerError)
		return
	}
	body, err := json.Marshal(h.keys.jwks(h.cfg.Store.Now()))
	if err != nil {
		http.Error(w, "The keys cannot be read just now.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(body)
}

// RotateKeys makes a new signing key the current one. The one it replaces
// stays in the JWKS for RetiredKeyTTL; keys retired longer ago are
// dropped. Servers sign with the new key within reloadEvery. It returns
// the new key's id.
func RotateKeys(ctx context.Context, s *db.Store, a db.Actor) (string, error) {
	for range 5 {
		raw, err := s.Setting(ctx, keysSetting)
		var ks storedKeys
		switch {
		case errors.Is(err, db.ErrNotFound):
			if raw, err = s.InitSetting(ctx, keysSetting, `{"keys":[]}`); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		}
		if err := json.Unmarshal([]byte(raw), &ks); err != nil {
			ks = storedKeys{} // unreadable: start afresh
		}
		now := s.Now()
		var kept []storedKey
		for _, k := range ks.Keys {
			if k.RetiredMS == 0 {
				k.RetiredMS = now.UnixMilli()
			}
			if now.UnixMilli()-k.RetiredMS <= RetiredKeyTTL.Milliseconds() {
				kept = append(kept, k)
			}
		}
		k, err := newStoredKey(now)
		if err != nil {
			return "", err
		}
		next, _ := json.Marshal(storedKeys{Keys: append(kept, k)})
		ok, err := s.SwapSetting(ctx, a, keysSetting, raw, string(next),
			db.Event{Action: db.ActionKeysRotate, Target: k.Kid, Detail: map[string]any{"kept": len(kept)}})
		if err != nil {
			return "", err
		}
		if ok {
			return k.Kid, nil
		}
	}
	return "", errors.New("the signing keys kept changing under the rotation; try again")
}
