package app

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"gatehouse/app/dashboards"
	"gatehouse/db"
)

// The relying party of the passkey tests: passkeys need a base URL with a
// host name; the software authenticator below signs for it.
const (
	passkeyRPID   = "gatehouse.test"
	passkeyOrigin = "http://gatehouse.test"
)

func newPasskeyApp(t *testing.T, configure ...func(*Config, *dashboards.Registry)) *testApp {
	return newTestApp(t, append([]func(*Config, *dashboards.Registry){func(c *Config, _ *dashboards.Registry) { c.BaseURL = passkeyOrigin }}, configure...)...)
}

var b64 = base64.RawURLEncoding

// softKey is one credential of softAuthenticator.
type softKey struct {
	id     []byte
	priv   *ecdsa.PrivateKey
	handle []byte // the user handle it was created for
	count  uint32
}

// softAuthenticator is a WebAuthn authenticator in Go, as a browser would
// drive it: it answers the server's options with "none" attestation and
// P-256 signatures, for origin. Tests use it to make real responses and to
// tamper with them.
type softAuthenticator struct {
	origin string
	rpID   string
}

type publicKeyOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		User      struct {
			ID string `json:"id"`
		} `json:"user"`
	} `json:"publicKey"`
}

func (s softAuthenticator) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": s.origin, "crossOrigin": false})
	return b
}

// create answers navigator.credentials.create options.
func (s softAuthenticator) create(t testing.TB, options []byte) ([]byte, *softKey) {
	t.Helper()
	var o publicKeyOptions
	if err := json.Unmarshal(options, &o); err != nil || o.PublicKey.Challenge == "" {
		t.Fatalf("creation options %s: %v", options, err)
	}
	handle, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := &softKey{id: make([]byte, 32), priv: priv, handle: handle}
	_, _ = rand.Read(k.id)
	x, y := make([]byte, 32), make([]byte, 32)
	priv.PublicKey.X.FillBytes(x)
	priv.PublicKey.Y.FillBytes(y)
	cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
	if err != nil {
		t.Fatal(err)
	}
	rp := sha256.Sum256([]byte(s.rpID))
	auth := append([]byte{}, rp[:]...)
	auth = append(auth, 0x45) // user present, user verified, attested credential data
	auth = binary.BigEndian.AppendUint32(auth, 0)
	auth = append(auth, make([]byte, 16)...) // AAGUID
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(k.id)))
	auth = append(auth, k.id...)
	auth = append(auth, cose...)
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": auth})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(s.clientData("webauthn.create", o.PublicKey.Challenge)),
			"attestationObject": b64.EncodeToString(att),
		},
	})
	return body, k
}

// get answers navigator.credentials.get options with key.
func (s softAuthenticator) get(t testing.TB, options []byte, k *softKey) []byte {
	t.Helper()
	var o publicKeyOptions
	if err := json.Unmarshal(options, &o); err != nil || o.PublicKey.Challenge == "" {
		t.Fatalf("request options %s: %v", options, err)
	}
	k.count++
	rp := sha256.Sum256([]byte(s.rpID))
	auth := append([]byte{}, rp[:]...)
	auth = append(auth, 0x05) // user present, user verified
	auth = binary.BigEndian.AppendUint32(auth, k.count)
	cd := s.clientData("webauthn.get", o.PublicKey.Challenge)
	cdHash := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, auth...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cd),
			"authenticatorData": b64.EncodeToString(auth),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(k.handle),
		},
	})
	return body
}

// postJSON sends a JSON POST, as the passkeys script does.
func (ta *testApp) postJSON(t testing.TB, c *http.Client, path string, body []byte) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ta.Server.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return ta.do(t, c, req)
}

// jsonField reads one string field of a JSON answer.
func jsonField(t testing.TB, body, field string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("answer is not JSON: %q", body)
	}
	s, _ := m[field].(string)
	return s
}

var soft = softAuthenticator{origin: passkeyOrigin, rpID: passkeyRPID}

// registerPasskey adds a passkey named name for the client's user.
func (ta *testApp) registerPasskey(t testing.TB, c *http.Client, name string) *softKey {
	t.Helper()
	res, opts := ta.postJSON(t, c, "/account/security/passkeys/begin", []byte(`{"name":"`+name+`"}`))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("register begin: %d %s", res.StatusCode, opts)
	}
	body, k := soft.create(t, []byte(opts))
	res, out := ta.postJSON(t, c, "/account/security/passkeys/finish", body)
	if res.StatusCode != http.StatusOK || jsonField(t, out, "redirect") == "" {
		t.Fatalf("register finish: %d %s", res.StatusCode, out)
	}
	return k
}

// countPasskeys counts a user's stored passkeys.
func (ta *testApp) countPasskeys(t testing.TB, userID int64) int {
	t.Helper()
	f, err := ta.store.Factors(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return f.Passkeys
}

func TestPasskeyRegisterSignInAndRemove(t *testing.T) {
	ta := newPasskeyApp(t)
	u := ta.createUser(t, "pia@example.com", false)
	c := ta.login(t, u.Email)
	if _, body := ta.get(t, c, "/account/security", false); !strings.Contains(body, `data-passkey="register"`) {
		t.Fatalf("no passkey button on the security page:\n%s", body)
	}
	k := ta.registerPasskey(t, c, "Work laptop")
	if _, body := ta.get(t, c, "/account/security", false); !strings.Contains(body, "Work laptop") {
		t.Errorf("the new passkey is not listed:\n%s", body)
	}
	if ta.countAudit(t, db.ActionPasskeyAdd, u.Email) != 1 {
		t.Error("passkey registration not audited")
	}

	// Sign in with the passkey alone: no email, no password.
	if _, body := ta.get(t, ta.client(), "/login", false); !strings.Contains(body, "Sign in with a passkey") {
		t.Errorf("no passkey sign-in on /login:\n%s", body)
	}
	anon := ta.client()
	res, opts := ta.postJSON(t, anon, "/login/passkey/begin", []byte(`{"next":"/account"}`))
	if res.StatusCode != http.StatusOK || strings.Contains(opts, "allowCredentials") {
		t.Fatalf("sign-in begin: %d %s (want discoverable options)", res.StatusCode, opts)
	}
	res, out := ta.postJSON(t, anon, "/login/passkey/finish", soft.get(t, []byte(opts), k))
	if res.StatusCode != http.StatusOK || jsonField(t, out, "redirect") != "/account" {
		t.Fatalf("sign-in finish: %d %s", res.StatusCode, out)
	}
	if res, _ := ta.get(t, anon, "/account", false); res.StatusCode != http.StatusOK {
		t.Errorf("GET /account after passkey sign-in: %d", res.StatusCode)
	}
	if got := ta.sessionMethods(t, u.ID); !strings.Contains(strings.Join(got, ","), db.MethodPasskey) {
		t.Errorf("session methods = %q, want a %q one", got, db.MethodPasskey)
	}
	keys, _ := ta.store.ListPasskeys(context.Background(), u.ID)
	if len(keys) != 1 || keys[0].LastUsedAt == 0 {
		t.Errorf("last use not recorded: %+v", keys)
	}

	// Removal: the passkey no longer signs in.
	res, _ = ta.post(t, c, "/account/security/passkeys/"+strconv.FormatInt(keys[0].ID, 10)+"/remove", nil)
	if res.StatusCode != http.StatusSeeOther || ta.countPasskeys(t, u.ID) != 0 {
		t.Fatalf("remove: %d, %d passkeys left", res.StatusCode, ta.countPasskeys(t, u.ID))
	}
	if ta.countAudit(t, db.ActionPasskeyRemove, u.Email) != 1 {
		t.Error("passkey removal not audited")
	}
	other := ta.client()
	_, opts = ta.postJSON(t, other, "/login/passkey/begin", []byte(`{}`))
	if res, out := ta.postJSON(t, other, "/login/passkey/finish", soft.get(t, []byte(opts), k)); res.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(out, "could not be verified") {
		t.Errorf("a removed passkey: %d %s, want 401", res.StatusCode, out)
	}
	if ta.sessionCookie(other) != "" {
		t.Error("a removed passkey got a session cookie")
	}
}

func TestPasskeyAsSecondFactor(t *testing.T) {
	ta := newPasskeyApp(t)
	u := ta.createUser(t, "sam@example.com", false)
	k := ta.registerPasskey(t, ta.login(t, u.Email), "")
	keys, _ := ta.store.ListPasskeys(context.Background(), u.ID)
	if len(keys) != 1 || keys[0].Name != "Passkey 1" {
		t.Errorf("unnamed passkey stored as %+v, want the name Passkey 1", keys)
	}
	c := ta.passwordStep(t, u.Email, "/login/mfa")
	if _, body := ta.get(t, c, "/login/mfa", false); !strings.Contains(body, "Use a passkey") {
		t.Fatalf("second factor page offers no passkey:\n%s", body)
	}
	res, opts := ta.postJSON(t, c, "/login/mfa/passkey/begin", []byte(`{}`))
	if res.StatusCode != http.StatusOK || !strings.Contains(opts, "allowCredentials") {
		t.Fatalf("second factor begin: %d %s", res.StatusCode, opts)
	}
	res, out := ta.postJSON(t, c, "/login/mfa/passkey/finish", soft.get(t, []byte(opts), k))
	if res.StatusCode != http.StatusOK || jsonField(t, out, "redirect") != "/account" {
		t.Fatalf("second factor finish: %d %s", res.StatusCode, out)
	}
	if res, _ := ta.get(t, c, "/account", false); res.StatusCode != http.StatusOK {
		t.Errorf("GET /account after password and passkey: %d", res.StatusCode)
	}
	if got := ta.sessionMethods(t, u.ID); !strings.Contains(strings.Join(got, ","), db.MethodPasswordPasskey) {
		t.Errorf("session methods = %q, want a %q one", got, db.MethodPasswordPasskey)
	}
	// A half-authenticated session is needed: a signed-in one cannot begin.
	if res, _ := ta.postJSON(t, c, "/login/mfa/passkey/begin", []byte(`{}`)); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("second factor begin when signed in: %d, want 401", res.StatusCode)
	}
}

func TestRequireMFAEnrolsWithAPasskey(t *testing.T) {
	ta := newPasskeyApp(t, func(c *Config, _ *dashboards.Registry) { c.RequireMFA = "all" })
	u := ta.createUser(t, "eve@example.com", false)
	c := ta.passwordStep(t, u.Email, "/account/security")
	res, opts := ta.postJSON(t, c, "/account/security/passkeys/begin", []byte(`{"name":"Phone"}`))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("begin while enrolling: %d %s", res.StatusCode, opts)
	}
	body, _ := soft.create(t, []byte(opts))
	res, out := ta.postJSON(t, c, "/account/security/passkeys/finish", body)
	if res.StatusCode != http.StatusOK || jsonField(t, out, "redirect") != "/account" {
		t.Fatalf("finish while enrolling: %d %s", res.StatusCode, out)
	}
	if res, _ := ta.get(t, c, "/", false); res.StatusCode != http.StatusOK {
		t.Errorf("GET / after enrolling a passkey: %d", res.StatusCode)
	}
}

// TestPasskeyBadInput: a tampered response, a challenge from another
// session and an expired one are refused with a plain sentence, and
// nothing is stored.
func TestPasskeyBadInput(t *testing.T) {
	ta := newPasskeyApp(t)
	u := ta.createUser(t, "bob@example.com", false)
	c := ta.login(t, u.Email)
	begin := func(c *http.Client) []byte {
		t.Helper()
		res, opts := ta.postJSON(t, c, "/account/security/passkeys/begin", []byte(`{"name":"Key"}`))
		if res.StatusCode != http.StatusOK {
			t.Fatalf("begin: %d %s", res.StatusCode, opts)
		}
		return []byte(opts)
	}
	finish := func(c *http.Client, body []byte, want int, wantText string) {
		t.Helper()
		res, out := ta.postJSON(t, c, "/account/security/passkeys/finish", body)
		if res.StatusCode != want || !strings.Contains(jsonField(t, out, "error"), wantText) {
			t.Errorf("finish: %d %s, want %d with %q", res.StatusCode, out, want, wantText)
		}
		if strings.Contains(out, "goroutine") || strings.Contains(out, "webauthn") {
			t.Errorf("the answer leaks internals: %s", out)
		}
		if n := ta.countPasskeys(t, u.ID); n != 0 {
			t.Errorf("%d passkeys stored after a refused registration", n)
		}
	}

	// Tampered: the client data names another challenge.
	body, _ := soft.create(t, begin(c))
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	resp := m["response"].(map[string]any)
	resp["clientDataJSON"] = b64.EncodeToString(soft.clientData("webauthn.create", b64.EncodeToString([]byte("another challenge, not the one"))))
	tampered, _ := json.Marshal(m)
	finish(c, tampered, http.StatusBadRequest, "could not be verified")

	// Tampered: not even JSON.
	_ = begin(c)
	finish(c, []byte(`{"id": 1`), http.StatusBadRequest, "could not be verified")

	// Another origin signed it.
	evil := softAuthenticator{origin: "http://evil.test", rpID: passkeyRPID}
	body, _ = evil.create(t, begin(c))
	finish(c, body, http.StatusBadRequest, "could not be verified")

	// A challenge from another session: the challenge cookie of this
	// browser, replayed by another session of the same user.
	opts := begin(c)
	body, _ = soft.create(t, opts)
	other := ta.login(t, u.Email)
	srv, _ := url.Parse(ta.Server.URL)
	for _, ck := range c.Jar.Cookies(srv) {
		if ck.Name == ta.challengeCookie() {
			other.Jar.SetCookies(srv, []*http.Cookie{ck})
		}
	}
	finish(other, body, http.StatusBadRequest, "started in another session")
	// It was spent by that attempt: the right browser cannot use it either.
	finish(c, body, http.StatusBadRequest, "expired or was already used")

	// Expired: the ceremony took longer than five minutes.
	body, _ = soft.create(t, begin(c))
	ta.Clock.Advance(challengeTTL + time.Second)
	finish(c, body, http.StatusBadRequest, "expired")

	// No challenge at all.
	finish(ta.login(t, u.Email), body, http.StatusBadRequest, "No passkey request is in progress")

	// Sign-in: a tampered signature is 401 and gives no session.
	k := ta.registerPasskey(t, c, "Real")
	anon := ta.client()
	_, sopts := ta.postJSON(t, anon, "/login/passkey/begin", []byte(`{}`))
	_ = json.Unmarshal(soft.get(t, []byte(sopts), k), &m)
	resp = m["response"].(map[string]any)
	sig, _ := b64.DecodeString(resp["signature"].(string))
	sig[len(sig)-1] ^= 0xff
	resp["signature"] = b64.EncodeToString(sig)
	tampered, _ = json.Marshal(m)
	res, out := ta.postJSON(t, anon, "/login/passkey/finish", tampered)
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(out, "could not be verified") || ta.sessionCookie(anon) != "" {
		t.Errorf("tampered sign-in: %d %s (session cookie %q)", res.StatusCode, out, ta.sessionCookie(anon))
	}
	if ta.countAudit(t, db.ActionPasskeyRejected, "") != 1 {
		t.Error("refused passkey sign-in not audited")
	}
}

// TestPasskeyBeginsAreBounded: anyone may begin a passkey sign-in, so the
// ceremonies in progress are capped; past the cap the answer is 503 with
// Retry-After, and expired ones make room again.
func TestPasskeyBeginsAreBounded(t *testing.T) {
	ta := newPasskeyApp(t)
	defer func(n int) { db.MaxChallenges = n }(db.MaxChallenges)
	db.MaxChallenges = 3
	for i := range 3 {
		if res, out := ta.postJSON(t, ta.client(), "/login/passkey/begin", []byte(`{}`)); res.StatusCode != http.StatusOK {
			t.Fatalf("begin %d: %d %s", i+1, res.StatusCode, out)
		}
	}
	res, out := ta.postJSON(t, ta.client(), "/login/passkey/begin", []byte(`{}`))
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" || !strings.Contains(out, "Too many passkey requests") {
		t.Errorf("begin past the cap: %d Retry-After %q %s", res.StatusCode, res.Header.Get("Retry-After"), out)
	}
	ta.Clock.Advance(challengeTTL)
	if res, out := ta.postJSON(t, ta.client(), "/login/passkey/begin", []byte(`{}`)); res.StatusCode != http.StatusOK {
		t.Errorf("begin once the others expired: %d %s", res.StatusCode, out)
	}
}

// TestAddingAFactorNeedsARecentSignIn: a session older than 15 minutes
// (perhaps a stolen cookie) cannot add a passkey or an authenticator app,
// or make recovery codes, which would outlive a password change.
func TestAddingAFactorNeedsARecentSignIn(t *testing.T) {
	ta := newPasskeyApp(t)
	u := ta.createUser(t, "old@example.com", false)
	c := ta.login(t, u.Email)
	ta.Clock.Advance(recentSignIn + time.Minute)
	if res, body := ta.post(t, c, "/account/security/totp", nil); res.StatusCode != http.StatusForbidden || !strings.Contains(body, "sign in again") {
		t.Errorf("authenticator app from an old session: %d\n%s", res.StatusCode, body)
	}
	if res, out := ta.postJSON(t, c, "/account/security/passkeys/begin", []byte(`{"name":"x"}`)); res.StatusCode != http.StatusForbidden || !strings.Contains(out, "sign in again") {
		t.Errorf("passkey from an old session: %d %s", res.StatusCode, out)
	}
	if res, _ := ta.post(t, c, "/account/security/recovery", nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("recovery codes from an old session: %d, want 403", res.StatusCode)
	}
	if f, _ := ta.store.Factors(context.Background(), u.ID); f.Any() || f.RecoveryLeft != 0 {
		t.Errorf("an old session changed the factors: %+v", f)
	}
	// Signing in again makes it possible.
	ta.registerPasskey(t, ta.login(t, u.Email), "Fresh")
}
