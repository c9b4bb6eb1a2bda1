package app

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"gatehouse/db"
)

// Passkeys (WebAuthn). Three ceremonies, each a begin/finish pair of JSON
// POSTs made by assets/js/passkeys.js:
//
//   - register (/account/security/passkeys/…): a signed-in user, or one
//     made to enrol, adds a discoverable passkey;
//   - sign-in (/login/passkey/…): anyone signs in with a passkey alone,
//     no email typed (discoverable credentials, user verification required);
//   - second factor (/login/mfa/passkey/…): after a right password.
//
// The challenge lives server-side (webauthn_challenges), named by a random
// id in a short-lived HttpOnly cookie, bound to the session that began it,
// taken (deleted) by the first finish whatever its outcome, and valid for
// challengeTTL.

// challengeTTL is how long a passkey ceremony may take.
const challengeTTL = 5 * time.Minute

// Ceremony purposes (webauthn_challenges.purpose).
const (
	purposeRegister = "register"
	purposeSignIn   = "signin"
	purposeSecond   = "second-factor"
)

// newWebAuthn configures the relying party from the base URL: the RP ID is
// its host name, the only accepted origin its scheme://host[:port]. It
// returns nil (passkeys off) when the base URL has no host name: browsers
// refuse passkeys for IP addresses.
func newWebAuthn(cfg Config) (*webauthn.WebAuthn, error) {
	u, err := url.Parse(cfg.PublicURL())
	if err != nil || u.Hostname() == "" || net.ParseIP(u.Hostname()) != nil {
		return nil, nil
	}
	return webauthn.New(&webauthn.Config{
		RPID:          u.Hostname(),
		RPDisplayName: "Gatehouse",
		RPOrigins:     []string{u.Scheme + "://" + u.Host},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: challengeTTL, TimeoutUVD: challengeTTL},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: challengeTTL, TimeoutUVD: challengeTTL},
		},
	})
}

// passkeyUser is a Gatehouse user as go-webauthn sees them.
type passkeyUser struct {
	user  db.User
	keys  []db.Passkey
	creds []webauthn.Credential
}

// userHandle is the WebAuthn user handle of a user: their id, 8 bytes big
// endian. It is opaque and not personal data.
func userHandle(id int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(id))
}

func (u *passkeyUser) WebAuthnID() []byte                         { return userHandle(u.user.ID) }
func (u *passkeyUser) WebAuthnName() string                       { return u.user.Email }
func (u *passkeyUser) WebAuthnDisplayName() string                { return u.user.DisplayName() }
func (u *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// keyFor returns the stored passkey of a credential the user holds.
func (u *passkeyUser) keyFor(credID []byte) (db.Passkey, bool) {
	for _, k := range u.keys {
		if bytes.Equal(k.CredentialID, credID) {
			return k, true
		}
	}
	return db.Passkey{}, false
}

func (a *App) passkeyUser(ctx context.Context, u db.User) (*passkeyUser, error) {
	keys, err := a.store.ListPasskeys(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	pu := &passkeyUser{user: u, keys: keys}
	for _, k := range keys {
		var c webauthn.Credential
		if err := json.Unmarshal([]byte(k.Credential), &c); err != nil {
			return nil, fmt.Errorf("passkey %d: %w", k.ID, err)
		}
		pu.creds = append(pu.creds, c)
	}
	return pu, nil
}

// ceremony is what a challenge row keeps besides go-webauthn's session data.
type ceremony struct {
	Session webauthn.SessionData `json:"session"`
	Name    string               `json:"name,omitempty"` // the passkey's name, when registering
	Next    string               `json:"next,omitempty"` // where to go after signing in
}

// challengeCookie names the cookie holding a ceremony's id.
func (a *App) challengeCookie() string {
	if a.cfg.Secure() {
		return "__Host-gatehouse_webauthn"
	}
	return "gatehouse_webauthn"
}

// sessionHash is the stored hash of the request's session ("" for none),
// the one a ceremony is bound to.
func sessionHash(v *Viewer) string {
	if v == nil || v.Session == nil || v.Session.ID == "" {
		return ""
	}
	return db.HashToken(v.Session.ID)
}

// beginCeremony stores a ceremony and sets its cookie.
func (a *App) beginCeremony(w http.ResponseWriter, r *http.Request, purpose string, userID int64, sessHash string, c ceremony) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	id := db.RandomToken(32)
	err = a.store.PutChallenge(r.Context(), db.WebAuthnChallenge{IDHash: db.HashToken(id), Purpose: purpose, UserID: userID,
		SessionHash: sessHash, Client: clientNetwork(a.clientIP(r)), Data: string(data), ExpiresAt: a.now().Add(challengeTTL).UnixMilli()})
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: a.challengeCookie(), Value: id, Path: "/", MaxAge: int(challengeTTL / time.Second),
		HttpOnly: true, Secure: a.cfg.Secure(), SameSite: http.SameSiteStrictMode})
	return nil
}

// clientNetwork is the network a client address stands for when bounding
// what one client may hold (db.MaxChallengesPerClient): the IPv4 address
// itself, or the IPv6 /64 (one host usually has a whole /64 to pick
// addresses from).
func clientNetwork(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap()
	if addr.Is4() {
		return addr.String()
	}
	p, _ := addr.WithZone("").Prefix(64)
	return p.String()
}

// errCeremony is a ceremony that cannot be finished; its text is for the user.
type errCeremony struct{ msg string }

func (e errCeremony) Error() string { return e.msg }

// takeCeremony takes the request's ceremony (it cannot be answered twice)
// and checks it is one of purpose, begun by this session, and not expired.
func (a *App) takeCeremony(w http.ResponseWriter, r *http.Request, purpose, sessHash string) (db.WebAuthnChallenge, ceremony, error) {
	var c ceremony
	ck, err := r.Cookie(a.challengeCookie())
	if err != nil || ck.Value == "" || len(ck.Value) > 128 {
		return db.WebAuthnChallenge{}, c, errCeremony{"No passkey request is in progress. Start again."}
	}
	http.SetCookie(w, &http.Cookie{Name: a.challengeCookie(), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: a.cfg.Secure(), SameSite: http.SameSiteStrictMode})
	ch, err := a.store.TakeChallenge(r.Context(), db.HashToken(ck.Value))
	switch {
	case errors.Is(err, db.ErrNotFound):
		return ch, c, errCeremony{"This passkey request has expired or was already used. Start again."}
	case err != nil:
		return ch, c, err
	case ch.Purpose != purpose:
		return ch, c, errCeremony{"This passkey request was for something else. Start again."}
	case ch.SessionHash != sessHash:
		return ch, c, errCeremony{"This passkey request was started in another session. Start again."}
	case a.now().UnixMilli() >= ch.ExpiresAt:
		return ch, c, errCeremony{"This passkey request has expired. Start again."}
	}
	if err := json.Unmarshal([]byte(ch.Data), &c); err != nil {
		return ch, c, err
	}
	return ch, c, nil
}

// writeJSON answers a passkey script.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"Something went wrong."}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeJSONError answers a passkey script with one plain sentence.
func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// jsonFailed answers a ceremony error: 400 with its sentence for an
// errCeremony, 503 while too many ceremonies are in progress, a logged 500
// (or 503) otherwise.
func (a *App) jsonFailed(w http.ResponseWriter, r *http.Request, err error) {
	var ce errCeremony
	if errors.As(err, &ce) {
		writeJSONError(w, http.StatusBadRequest, ce.msg)
		return
	}
	if errors.Is(err, db.ErrChallengesFull) {
		a.log.WarnContext(r.Context(), "passkey requests refused: too many in progress", "limit", db.MaxChallenges)
		w.Header().Set("Retry-After", "60")
		writeJSONError(w, http.StatusServiceUnavailable, "Too many passkey requests are in progress. Try again in a minute.")
		return
	}
	a.log.ErrorContext(r.Context(), "request failed", "err", err, "method", r.Method, "path", r.URL.Path, "request_id", requestID(r.Context()))
	status, msg := storageStatus(err)
	writeJSONError(w, status, msg)
}

// passkeysOff answers 404 when passkeys are not configured.
func (a *App) passkeysOff(w http.ResponseWriter) bool {
	if a.webauthn != nil {
		return false
	}
	writeJSONError(w, http.StatusNotFound, "Passkeys are not available here: the server needs --base-url with a host name.")
	return true
}

// readJSON decodes a small JSON request body into v.
func readJSON(r *http.Request, v any) error {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			return errCeremony{tooLargeMessage}
		}
		return errCeremony{"The request could not be read."}
	}
	return nil
}

// tooLargeMessage answers a JSON request body over the body limit.
const tooLargeMessage = "The request is larger than Gatehouse accepts."

// beginRegister handles POST /account/security/passkeys/begin ({"name"}):
// the options for navigator.credentials.create.
func (a *App) beginRegister(w http.ResponseWriter, r *http.Request) {
	if a.passkeysOff(w) {
		return
	}
	if ok, err := a.recentlySignedIn(r); err != nil {
		a.jsonFailed(w, r, err)
		return
	} else if !ok {
		writeJSONError(w, http.StatusForbidden, signInAgainMessage)
		return
	}
	v, _ := securityViewer(r)
	var in struct {
		Name string `json:"name"`
	}
	if err := readJSON(r, &in); err != nil {
		a.jsonFailed(w, r, err)
		return
	}
	name, err := db.CleanPasskeyName(in.Name)
	if err != nil {
		writeJSONError(w, http.StatusUnprocessableEntity, userMessage(err))
		return
	}
	pu, err := a.passkeyUser(r.Context(), v.User)
	if err != nil {
		a.jsonFailed(w, r, err)
		return
	}
	if len(pu.keys) >= db.MaxPasskeys {
		writeJSONError(w, http.StatusConflict, fmt.Sprintf("You have %d passkeys, the most Gatehouse keeps. Remove one first.", db.MaxPasskeys))
		return
	}
	if name == "" {
		name = fmt.Sprintf("Passkey %d", len(pu.keys)+1)
	}
	opts, sd, err := a.webauthn.BeginRegistration(pu,
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationPreferred}),
		webauthn.WithExclusions(webauthn.Credentials(pu.creds).CredentialDescriptors()))
	if err != nil {
		a.jsonFailed(w, r, err)
		return
	}
	if err := a.beginCeremony(w, r, purposeRegister, v.User.ID, sessionHash(v), ceremony{Session: *sd, Name: name}); err != nil {
		a.jsonFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, opts)
}

// finishRegister handles POST /account/security/passkeys/finish: the new
// credential is verified and stored; nothing is stored when it fails.
func (a *App) finishRegister(w http.ResponseWriter, r *http.Request) {
	if a.passkeysOff(w) {
		return
	}
	v, enrolling := securityViewer(r)
	ctx := r.Context()
	ch, c, err := a.takeCeremony(w, r, purposeRegister, sessionHash(v))
	if err == nil && ch.UserID != v.User.ID {
		err = errCeremony{"This passkey request was started in another session. Start again."}
	}
	if err != nil {
		a.jsonFailed(w, r, err)
		return
	}
	pu, err := a.passkeyUser(ctx, v.User)
	if err != nil {
		a.jsonFailed(w, r, err)
		return
	}
	cred, err := a.webauthn.FinishRegistration(pu, c.Session, r)
	if err != nil {
		a.log.InfoContext(ctx, "passkey registration refused", "user", v.User.Email, "err", err)
		writeJSONError(w, http.StatusBadRequest, "The passkey could not be verified. Try again.")
		return
	}
	data, err := json.Marshal(cred)
	if err != nil {
		a.jsonFailed(w, r, err)
		return
	}
	_, err = a.store.AddPasskey(ctx, db.Actor{ID: v.User.ID, Email: v.User.Email, IP: a.clientIP(r)},
		db.Passkey{UserID: v.User.ID, CredentialID: cred.ID, Name: c.Name, Credential: string(data)})
	switch {
	case errors.Is(err, db.ErrDuplicate):
		writeJSONError(w, http.StatusConflict, "This passkey is already registered.")
		return
	case errors.Is(err, db.ErrTooMany):
		writeJSONError(w, http.StatusConflict, fmt.Sprintf("You have %d passkeys, the most Gatehouse keeps. Remove one first.", db.MaxPasskeys))
		return
	case err != nil:
		a.jsonFailed(w, r, err)
		return
	}
	to := "/account/security?msg=passkey-added"
	if enrolling {
		if to, err = a.completeLogin(w, r, v.User, db.MethodPasswordPasskey, pendingNext(v)); err != nil {
			a.jsonFailed(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"redirect": to})
}

// beginPasskeySignIn handles POST /login/passkey/begin ({"next"}): options
// for a discoverable sign-in, with user verification required (the passkey
// is both factors).
func (a *App) beginPasskeySignIn(w http.ResponseWriter, r *http.Request) {
	if a.passkeysOff(w) {
		return
	}
	var in struct {
		Next string `json:"next"`
	}
	if err := readJSON(r, &in); err != nil {
		a.jsonFailed(w, r, err)
		return
	}
	opts, sd, err := a.webauthn.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		a.jsonFailed(w, r, err)
		return
	}
	if err := a.beginCeremony(w, r, purposeSignIn, 0, "", ceremony{Session: *sd, Next: safeNext(in.Next)}); err != nil {
		a.jsonFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, opts)
}

// finishPasskeySignIn handles POST /login/passkey/finish: a verified
// passkey of an active user starts a session (method "passkey").
func (a *App) finishPasskeySignIn(w http.ResponseWriter, r *http.Request) {
	if a.passkeysOff(w) {
		return
	}
	ctx := r.Context()
	_, c, err := a.takeCeremony(w, r, purposeSignIn, "")
	if err != nil {
		a.jsonFailed(w, r, err)
		return
	}
	var found *passkeyUser
	lookup := func(rawID, handle []byte) (webauthn.User, error) {
		k, err := a.store.PasskeyByCredentialID(ctx, rawID)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(handle, userHandle(k.UserID)) {
			return nil, errors.New("user handle does not match the credential")
		}
		u, err := a.store.UserByID(ctx, k.UserID)
		if err != nil {
			return nil, err
		}
		if !u.IsActive {
			return nil, errors.New("account deactivated")
		}
		if found, err = a.passkeyUser(ctx, u); err != nil {
			return nil, err
		}
		return found, nil
	}
	_, cred, err := a.webauthn.FinishPasskeyLogin(lookup, c.Session, r)
	if err == nil && cred.Authenticator.CloneWarning {
		err = errors.New("sign count went backwards: a cloned authenticator?")
	}
	if err != nil {
		actor := db.Actor{IP: a.clientIP(r)}
		target := ""
		if found != nil {
			actor.ID, actor.Email, target = found.user.ID, found.user.Email, found.user.Email
		}
		_ = a.store.Audit(ctx, actor, db.Event{Action: db.ActionPasskeyRejected, Target: target,
			Detail: map[string]string{"reason": truncateRunes(err.Error(), 200)}})
		a.log.InfoContext(ctx, "passkey sign-in refused", "err", err)
		writeJSONError(w, http.StatusUnauthorized, "That passkey could not be verified. Try again, or log in with your password.")
		return
	}
	if !a.usePasskey(w, r, found, cred) {
		return
	}
	to, err := a.completeLogin(w, r, found.user, db.MethodPasskey, c.Next)
	if err != nil {
		a.jsonFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"redirect": to})
}

// usePasskey records a passkey's use (its new sign count).
func (a *App) usePasskey(w http.ResponseWriter, r *http.Request, pu *passkeyUser, cred *webauthn.Credential) bool {
	k, ok := pu.keyFor(cred.ID)
	if !ok {
		a.jsonFailed(w, r, errors.New("verified passkey is not the user's"))
		return false
	}
	data, err := json.Marshal(cred)
	if err == nil {
		err = a.store.UsePasskey(r.Context(), k.ID, string(data))
	}
	if err != nil {
		a.jsonFailed(w, r, err)
		return false
	}
	return true
}

// beginPasskeySecond handles POST /login/mfa/passkey/begin: options for
// the half-authenticated user's own passkeys.
func (a *App) beginPasskeySecond(w http.ResponseWriter, r *http.Request) {
	if a.passkeysOff(w) {
		return
	}
	p := pendingFrom(r.Context())
	if p == nil || p.Method != db.MethodMFAPending {
		writeJSONError(w, http.StatusUnauthorized, "Log in with your password first.")
		return
	}
	if !a.mfaAllowed(w, r, p) {
		return
	}
	pu, err := a.passkeyUser(r.Context(), p.User)
	if err != nil {
		a.jsonFailed(w, r, err)
		return
	}
	if len(pu.creds) == 0 {
		writeJSONError(w, http.StatusConflict, "You have no passkey. Use your authenticator app or a recovery code.")
		return
	}
	opts, sd, err := a.webauthn.BeginLogin(pu, webauthn.WithUserVerification(protocol.VerificationDiscouraged))
	if err != nil {
		a.jsonFailed(w, r, err)
		return
	}
	if err := a.beginCeremony(w, r, purposeSecond, p.User.ID, sessionHash(p), ceremony{Session: *sd}); err != nil {
		a.jsonFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, opts)
}

// finishPasskeySecond handles POST /login/mfa/passkey/finish: a verified
// passkey completes the login (method "password+passkey"). Failures are
// audited and throttled with wrong codes.
func (a *App) finishPasskeySecond(w http.ResponseWriter, r *http.Request) {
	if a.passkeysOff(w) {
		return
	}
	ctx := r.Context()
	p := pendingFrom(ctx)
	if p == nil || p.Method != db.MethodMFAPending {
		writeJSONError(w, http.StatusUnauthorized, "Log in with your password first.")
		return
	}
	if !a.mfaAllowed(w, r, p) {
		return
	}
	ch, c, err := a.takeCeremony(w, r, purposeSecond, sessionHash(p))
	if err == nil && ch.UserID != p.User.ID {
		err = errCeremony{"This passkey request was started in another session. Start again."}
	}
	if err != nil {
		a.jsonFailed(w, r, err)
		return
	}
	pu, err := a.passkeyUser(ctx, p.User)
	if err != nil {
		a.jsonFailed(w, r, err)
		return
	}
	cred, err := a.webauthn.FinishLogin(pu, c.Session, r)
	if err == nil && cred.Authenticator.CloneWarning {
		err = errors.New("sign count went backwards: a cloned authenticator?")
	}
	if err != nil {
		a.log.InfoContext(ctx, "passkey second factor refused", "user", p.User.Email, "err", err)
		if err := a.mfaFailed(r, p.User, "passkey not verified"); err != nil {
			a.jsonFailed(w, r, err)
			return
		}
		writeJSONError(w, http.StatusUnauthorized, "That passkey could not be verified. Try again, or use a code.")
		return
	}
	if !a.usePasskey(w, r, pu, cred) {
		return
	}
	to, err := a.completeLogin(w, r, p.User, db.MethodPasswordPasskey, pendingNext(p))
	if err != nil {
		a.jsonFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"redirect": to})
}
