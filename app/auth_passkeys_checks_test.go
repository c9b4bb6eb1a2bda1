package app

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"gatehouse/db"
)

// tamper flips the last byte of an assertion's signature.
func tamper(t testing.TB, assertion []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(assertion, &m); err != nil {
		t.Fatal(err)
	}
	resp := m["response"].(map[string]any)
	sig, _ := b64.DecodeString(resp["signature"].(string))
	sig[len(sig)-1] ^= 0xff
	resp["signature"] = b64.EncodeToString(sig)
	out, _ := json.Marshal(m)
	return out
}

// TestFailedPasskeySecondFactorIsAuditedAndThrottled: each passkey that
// fails the second-factor step writes one login.mfa_failed row (naming the
// passkey) and counts toward the throttle; at AccountFailures the next
// begin, and the finish of a ceremony begun before, answer 429 even for a
// right passkey.
func TestFailedPasskeySecondFactorIsAuditedAndThrottled(t *testing.T) {
	ta := newPasskeyApp(t)
	u := ta.createUser(t, "thr@example.com", false)
	k := ta.registerPasskey(t, ta.login(t, u.Email), "Key")
	c := ta.passwordStep(t, u.Email, "/login/mfa")
	begin := func(want int) string {
		t.Helper()
		res, opts := ta.postJSON(t, c, "/login/mfa/passkey/begin", []byte(`{}`))
		if res.StatusCode != want {
			t.Fatalf("begin: %d %s, want %d", res.StatusCode, opts, want)
		}
		return opts
	}
	for i := range ta.cfg.AccountFailures - 1 {
		opts := begin(http.StatusOK)
		res, out := ta.postJSON(t, c, "/login/mfa/passkey/finish", tamper(t, soft.get(t, []byte(opts), k)))
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(out, "could not be verified") {
			t.Fatalf("failure %d: %d %s", i+1, res.StatusCode, out)
		}
		if n := ta.countAudit(t, db.ActionMFAFailed, u.Email); n != i+1 {
			t.Fatalf("after %d failed passkeys, %d %s rows", i+1, n, db.ActionMFAFailed)
		}
	}
	var detail string
	if err := ta.store.DB.NewSelect().Table("audit_events").Column("detail").Where("action = ?", db.ActionMFAFailed).Limit(1).Scan(context.Background(), &detail); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(detail, "passkey") {
		t.Errorf("the failure's audit detail %q does not say it was a passkey", detail)
	}
	// A ceremony begun before the last allowed failure...
	pending := begin(http.StatusOK)
	// ...and that failure, a wrong recovery code in another request.
	if res, _ := ta.post(t, c, "/login/mfa", url.Values{"code": {"wrong-recovery-code"}}); res.StatusCode != http.StatusUnauthorized && res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("wrong recovery code: %d", res.StatusCode)
	}
	if res, out := ta.postJSON(t, c, "/login/mfa/passkey/finish", soft.get(t, []byte(pending), k)); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a right passkey once the account is throttled: %d %s, want 429", res.StatusCode, out)
	}
	begin(http.StatusTooManyRequests)
	if ta.countAudit(t, db.ActionMFAThrottled, u.Email) == 0 {
		t.Error("the throttled attempts were not audited")
	}
	if got := ta.sessionMethods(t, u.ID); strings.Contains(strings.Join(got, ","), db.MethodPasswordPasskey) {
		t.Errorf("a throttled second factor completed the login: %q", got)
	}
}

// TestPasskeySignCountGoingBackwardsIsRefused: go-webauthn only flags an
// assertion whose sign count is not above the stored one (a cloned
// authenticator); the app must refuse it, for a sign-in with the passkey
// alone and as a second factor, audit it, and keep the stored count.
func TestPasskeySignCountGoingBackwardsIsRefused(t *testing.T) {
	ta := newPasskeyApp(t)
	u := ta.createUser(t, "clo@example.com", false)
	k := ta.registerPasskey(t, ta.login(t, u.Email), "Key")
	stored := func() string {
		keys, err := ta.store.ListPasskeys(context.Background(), u.ID)
		if err != nil || len(keys) != 1 {
			t.Fatalf("passkeys: %v %v", keys, err)
		}
		return keys[0].Credential
	}
	// A genuine use moves the count forward to 5.
	k.count = 4
	anon := ta.client()
	_, opts := ta.postJSON(t, anon, "/login/passkey/begin", []byte(`{}`))
	if res, out := ta.postJSON(t, anon, "/login/passkey/finish", soft.get(t, []byte(opts), k)); res.StatusCode != http.StatusOK {
		t.Fatalf("sign-in with count 5: %d %s", res.StatusCode, out)
	}
	before := stored()

	k.count = 1 // the clone signs with 2
	clone := ta.client()
	_, opts = ta.postJSON(t, clone, "/login/passkey/begin", []byte(`{}`))
	res, out := ta.postJSON(t, clone, "/login/passkey/finish", soft.get(t, []byte(opts), k))
	if res.StatusCode != http.StatusUnauthorized || ta.sessionCookie(clone) != "" {
		t.Fatalf("sign-in with a count that went backwards: %d %s (session %q), want 401", res.StatusCode, out, ta.sessionCookie(clone))
	}
	if ta.countAudit(t, db.ActionPasskeyRejected, u.Email) != 1 {
		t.Error("the refused clone was not audited against the user")
	}

	k.count = 1
	c := ta.passwordStep(t, u.Email, "/login/mfa")
	_, opts = ta.postJSON(t, c, "/login/mfa/passkey/begin", []byte(`{}`))
	if res, out := ta.postJSON(t, c, "/login/mfa/passkey/finish", soft.get(t, []byte(opts), k)); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("second factor with a count that went backwards: %d %s, want 401", res.StatusCode, out)
	}
	if res, _ := ta.get(t, c, "/account", false); res.StatusCode == http.StatusOK {
		t.Error("the clone's second factor opened /account")
	}
	if stored() != before {
		t.Error("a refused assertion changed the stored passkey (its sign count)")
	}
}
