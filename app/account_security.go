package app

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"gatehouse/components"
	"gatehouse/db"
)

// securityNotices are the messages /account/security lands with (?msg=…).
var securityNotices = map[string]string{
	"passkey-added":   "Passkey added. You can sign in with it.",
	"passkey-removed": "Passkey removed.",
	"totp-removed":    "Authenticator app removed.",
}

// enrolling lets through the requests enrolment needs: a signed-in viewer,
// or a half-authenticated session that must set up a second factor first
// (db.MethodEnrolPending). A session waiting for its second factor goes
// to /login/mfa; anyone else to the login form.
func (a *App) enrolling(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if viewerFrom(r.Context()) != nil {
			a.requireLogin(next).ServeHTTP(w, r)
			return
		}
		if p := pendingFrom(r.Context()); p != nil && p.Method == db.MethodEnrolPending {
			next.ServeHTTP(w, r)
			return
		}
		a.requireLogin(next).ServeHTTP(w, r)
	})
}

// recentSignIn is how old a session may be to add a second factor or make
// new recovery codes: someone holding a stolen, older session cookie must
// not turn it into a lasting way in (a passkey signs in without a password).
const recentSignIn = 15 * time.Minute

// recentlySignedIn reports whether the viewer's session began less than
// recentSignIn ago; a half-authenticated one (enrolling) always has.
func (a *App) recentlySignedIn(r *http.Request) (bool, error) {
	v, enrolling := securityViewer(r)
	if enrolling {
		return true, nil
	}
	created, err := a.store.SessionCreatedAt(r.Context(), db.HashToken(v.Session.ID))
	if err != nil {
		return false, err
	}
	return a.now().Sub(created) < recentSignIn, nil
}

// signInAgainMessage is the answer when the session is too old.
const signInAgainMessage = "For your security, sign in again to change your second factors: log out, sign in, and come back to this page."

// requireRecentSignIn answers 403 (a page) unless the session is recent.
func (a *App) requireRecentSignIn(w http.ResponseWriter, r *http.Request) bool {
	ok, err := a.recentlySignedIn(r)
	if err != nil {
		a.serverError(w, r, err)
		return false
	}
	if !ok {
		a.renderSecurity(w, r, http.StatusForbidden, "", signInAgainMessage)
	}
	return ok
}

// securityViewer returns the user managing their factors and whether they
// are enrolling (half-authenticated, made to set up a factor first).
func securityViewer(r *http.Request) (*Viewer, bool) {
	if v := viewerFrom(r.Context()); v != nil {
		return v, false
	}
	return pendingFrom(r.Context()), true
}

// showSecurity renders GET /account/security: passkeys, authenticator app
// and recovery codes.
func (a *App) showSecurity(w http.ResponseWriter, r *http.Request) {
	a.renderSecurity(w, r, http.StatusOK, securityNotices[r.URL.Query().Get("msg")], "")
}

func (a *App) renderSecurity(w http.ResponseWriter, r *http.Request, status int, notice, errMsg string) {
	v, enrolling := securityViewer(r)
	ctx := r.Context()
	f, err := a.store.Factors(ctx, v.User.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	keys, err := a.store.ListPasskeys(ctx, v.User.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	d := components.SecurityData{User: v.User, Enrolling: enrolling, Required: a.mfaRequired(v.User),
		Passkeys: keys, TOTP: f.TOTP, RecoveryLeft: f.RecoveryLeft, PasskeysAvailable: a.webauthn != nil,
		Notice: notice, Error: errMsg}
	if a.oidc != nil {
		ids, err := a.store.IdentitiesOf(ctx, v.User.ID)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		d.SSO = components.SSOProtection{Name: a.cfg.OIDCName, LinkByEmail: a.cfg.OIDCLink != "never",
			Linked: slices.ContainsFunc(ids, func(id db.UserIdentity) bool { return id.Issuer == a.cfg.OIDCIssuer })}
	}
	page := components.Page{Title: "Sign-in security", Section: "account", Bare: enrolling}
	if enrolling {
		page.Viewer = &v.User
	}
	a.render(w, r, status, page, components.SecurityPage(d))
}

// startTOTP handles POST /account/security/totp: a new secret, shown as a
// QR code (a PNG the server draws) and as text, waiting for one code.
func (a *App) startTOTP(w http.ResponseWriter, r *http.Request) {
	if !a.requireRecentSignIn(w, r) {
		return
	}
	v, enrolling := securityViewer(r)
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "Gatehouse", AccountName: v.User.Email,
		Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	switch err := a.store.StartTOTP(r.Context(), v.User.ID, key.Secret()); {
	case errors.Is(err, db.ErrDuplicate):
		a.renderSecurity(w, r, http.StatusConflict, "", "You already have an authenticator app. Remove it first to set up another.")
		return
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	a.renderTOTPEnrol(w, r, http.StatusOK, v, enrolling, key.Secret(), "")
}

func (a *App) renderTOTPEnrol(w http.ResponseWriter, r *http.Request, status int, v *Viewer, enrolling bool, secret, errMsg string) {
	key, err := otpKey(v.User.Email, secret)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	img, err := key.Image(240, 240)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		a.serverError(w, r, err)
		return
	}
	e := components.TOTPEnrol{QR: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()),
		Secret: secret, Error: errMsg, Enrolling: enrolling}
	page := components.Page{Title: "Set up an authenticator app", Section: "account", Bare: enrolling}
	if enrolling {
		page.Viewer = &v.User
	}
	a.render(w, r, status, page, components.TOTPEnrolPage(e))
}

// confirmTOTP handles POST /account/security/totp/confirm: one right code
// turns the app on and shows ten new recovery codes, once. A user who was
// made to enrol is signed in fully. Like adding any factor it needs a
// recent sign-in; wrong codes are audited and throttled like those of the
// second-factor step (counted apart from them, with the same limits).
func (a *App) confirmTOTP(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) || !a.requireRecentSignIn(w, r) {
		return
	}
	v, enrolling := securityViewer(r)
	ctx := r.Context()
	t, err := a.store.TOTP(ctx, v.User.ID)
	switch {
	case errors.Is(err, db.ErrNotFound) || (err == nil && t.ConfirmedAt != 0):
		a.redirect(w, r, "/account/security")
		return
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	actor := db.Actor{ID: v.User.ID, Email: v.User.Email, IP: a.clientIP(r)}
	wait, err := a.failuresWait(ctx, db.ActionTOTPConfirmFailed, v.User.Email, actor.IP, a.now().Add(-a.cfg.ThrottleWindow))
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if wait > 0 {
		if err := a.store.Audit(ctx, actor, db.Event{Action: db.ActionMFAThrottled, Target: v.User.Email,
			Detail: map[string]string{"step": "authenticator app setup"}}); err != nil {
			a.serverError(w, r, err)
			return
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		a.renderTOTPEnrol(w, r, http.StatusTooManyRequests, v, enrolling, t.Secret,
			fmt.Sprintf("Too many wrong codes. Try again in %s.", humanWait(wait)))
		return
	}
	code := normalizeCode(r.PostForm.Get("code"))
	step, ok := totpMatch(t.Secret, code, a.now())
	if !isTOTPCode(code) || !ok {
		if err := a.store.Audit(ctx, actor, db.Event{Action: db.ActionTOTPConfirmFailed, Target: v.User.Email,
			Detail: map[string]string{"reason": "wrong code"}}); err != nil {
			a.serverError(w, r, err)
			return
		}
		a.renderTOTPEnrol(w, r, http.StatusUnprocessableEntity, v, enrolling, t.Secret,
			"That code is not right. Enter the six digits your app shows now.")
		return
	}
	codes, hashes := newRecoveryCodes()
	switch err := a.store.ConfirmTOTP(ctx, actor, v.User.ID, t.Secret, step, hashes); {
	case errors.Is(err, db.ErrConflict):
		a.renderSecurity(w, r, http.StatusConflict, "", "The setup was started again elsewhere. Scan the newest QR code.")
		return
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	next := "/account/security"
	if enrolling {
		if next, err = a.completeLogin(w, r, v.User, db.MethodPasswordTOTP, pendingNext(v)); err != nil {
			a.serverError(w, r, err)
			return
		}
	}
	a.render(w, r, http.StatusOK, components.Page{Title: "Recovery codes", Bare: enrolling, Viewer: &v.User},
		components.RecoveryCodesPage(codes, next, true))
}

// removeTOTP handles POST /account/security/totp/remove.
func (a *App) removeTOTP(w http.ResponseWriter, r *http.Request) {
	v := viewerFrom(r.Context())
	err := a.store.RemoveTOTP(r.Context(), a.actor(r), v.User.ID, a.mfaRequired(v.User))
	switch {
	case errors.Is(err, db.ErrLastFactor):
		a.renderSecurity(w, r, http.StatusConflict, "", "You must keep a second factor. Add a passkey first, then remove the app.")
	case a.failed(w, r, err):
	default:
		a.redirect(w, r, "/account/security?msg=totp-removed")
	}
}

// newRecovery handles POST /account/security/recovery: ten new recovery
// codes replace the old ones, shown once.
func (a *App) newRecovery(w http.ResponseWriter, r *http.Request) {
	if !a.requireRecentSignIn(w, r) {
		return
	}
	v := viewerFrom(r.Context())
	f, err := a.store.Factors(r.Context(), v.User.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if !f.Any() {
		a.renderSecurity(w, r, http.StatusConflict, "", "Recovery codes stand in for a second factor: add a passkey or an authenticator app first.")
		return
	}
	codes, hashes := newRecoveryCodes()
	if err := a.store.ReplaceRecoveryCodes(r.Context(), a.actor(r), v.User.ID, hashes); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, components.Page{Title: "Recovery codes", Section: "account"},
		components.RecoveryCodesPage(codes, "/account/security", false))
}

// removePasskey handles POST /account/security/passkeys/{id}/remove.
func (a *App) removePasskey(w http.ResponseWriter, r *http.Request) {
	v := viewerFrom(r.Context())
	id, ok := pathID(r, "id")
	if !ok {
		a.notFound(w, r)
		return
	}
	err := a.store.RemovePasskey(r.Context(), a.actor(r), v.User.ID, id, a.mfaRequired(v.User))
	switch {
	case errors.Is(err, db.ErrLastFactor):
		a.renderSecurity(w, r, http.StatusConflict, "", "You must keep a second factor. Add another passkey or an authenticator app first.")
	case a.failed(w, r, err):
	default:
		a.redirect(w, r, "/account/security?msg=passkey-removed")
	}
}

// otpKey is the otpauth:// key authenticator apps read from the QR code.
func otpKey(account, secret string) (*otp.Key, error) {
	q := url.Values{}
	q.Set("secret", secret)
	q.Set("issuer", "Gatehouse")
	q.Set("algorithm", "SHA1")
	q.Set("digits", "6")
	q.Set("period", strconv.Itoa(totpPeriod))
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/Gatehouse:" + account, RawQuery: q.Encode()}
	return otp.NewKeyFromURL(u.String())
}
