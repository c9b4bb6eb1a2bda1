package app

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"gatehouse/components"
	"gatehouse/db"
)

// Second factors: what happens between a right password and a session that
// may do things.
//
//   - A user with a second factor gets a half-authenticated session
//     (db.MethodMFAPending) and is sent to /login/mfa for a code, a recovery
//     code or a passkey.
//   - A user who must have one (--require-mfa) and has none gets
//     db.MethodEnrolPending and is sent to /account/security to set one up.
//   - Anyone else gets a password session.
//
// A half-authenticated session is never a Viewer: loadViewer puts it aside
// (pendingFrom) and every other handler sees an anonymous request. Only the
// sign-in and enrolment handlers read it. Each step rotates the session id.

// nextKey is the session value of a half-authenticated session holding
// where to go once signed in.
const nextKey = "next"

// totpPeriod is the authenticator apps' step: a code changes every 30 seconds.
const totpPeriod = 30

// validRequireMFA reports whether v is a --require-mfa value.
func validRequireMFA(v string) bool { return v == "off" || v == "admins" || v == "all" }

// mfaRequired reports whether u must have a second factor.
func (a *App) mfaRequired(u db.User) bool {
	switch a.cfg.RequireMFA {
	case "all":
		return true
	case "admins":
		return u.IsAdmin
	}
	return false
}

// pendingFrom returns the request's half-authenticated session, if any.
func pendingFrom(ctx context.Context) *Viewer {
	if st := stateFrom(ctx); st != nil {
		return st.pending
	}
	return nil
}

// pendingMethod says whether a loaded session is half-authenticated, and
// which way: "" for a session that may act. A password-only session of
// someone who must have a second factor (one from before --require-mfa was
// set, or the first admin's from setup) is half-authenticated too.
//
// A session made to enrol asks for the factor once the user has one (set up
// in another browser): otherwise it could add a factor of its own and sign
// in with the password alone.
func (a *App) pendingMethod(ctx context.Context, v *Viewer) (string, error) {
	if db.PendingMethod(v.Method) && v.Method != db.MethodEnrolPending {
		return v.Method, nil
	}
	if v.Method != db.MethodEnrolPending && (v.Method != db.MethodPassword || !a.mfaRequired(v.User)) {
		return "", nil
	}
	f, err := a.store.Factors(ctx, v.User.ID)
	if err != nil {
		return "", err
	}
	if f.Any() {
		return db.MethodMFAPending, nil
	}
	return db.MethodEnrolPending, nil
}

// pendingURL is where a half-authenticated session goes next.
func pendingURL(p *Viewer) string {
	if p.Method == db.MethodEnrolPending {
		return "/account/security"
	}
	return "/login/mfa"
}

// pendingNext is where a half-authenticated session goes once signed in.
func pendingNext(p *Viewer) string {
	next, _ := p.Session.Values[nextKey].(string)
	return safeNext(next)
}

// afterPassword continues a login whose password was right: a second
// factor is asked for, or set up, or the session starts.
func (a *App) afterPassword(w http.ResponseWriter, r *http.Request, user db.User, next string) {
	f, err := a.store.Factors(r.Context(), user.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	method, to := "", ""
	switch {
	case f.Any():
		method, to = db.MethodMFAPending, "/login/mfa"
	case a.mfaRequired(user):
		method, to = db.MethodEnrolPending, "/account/security"
	}
	if method == "" {
		to, err := a.completeLogin(w, r, user, db.MethodPassword, next)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	if _, err := a.sessions.LoginWith(w, r, user.ID, map[any]any{MethodKey: method, nextKey: next}); err != nil {
		a.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// completeLogin starts the full session (rotating the id), stamps and
// audits the login, and returns where to go: next, or the password change
// page for a temporary password.
func (a *App) completeLogin(w http.ResponseWriter, r *http.Request, user db.User, method, next string) (string, error) {
	if _, err := a.sessions.LoginWith(w, r, user.ID, map[any]any{MethodKey: method}); err != nil {
		return "", err
	}
	audited := method
	if method == db.MethodPassword {
		audited = "" // password logins are audited as they always were
	}
	if err := a.store.RecordLoginVia(r.Context(), db.Actor{ID: user.ID, Email: user.Email, IP: a.clientIP(r)}, user.ID, audited); err != nil {
		return "", err
	}
	a.rememberDevice(w, r, user.ID) // this browser has now logged in to the account (auth_device.go)
	a.metrics.signedIn(method)
	if user.MustChangePassword {
		return "/account/password", nil
	}
	return safeNext(next), nil
}

// showSecondFactor renders GET /login/mfa: the second step of a login.
func (a *App) showSecondFactor(w http.ResponseWriter, r *http.Request) {
	p, ok := a.mfaPending(w, r)
	if !ok {
		return
	}
	a.renderSecondFactor(w, r, p, http.StatusOK, "")
}

// mfaPending returns the request's session waiting for its second factor,
// or redirects: a signed-in viewer home, a session that must enrol to
// enrolment, anyone else to the login form.
func (a *App) mfaPending(w http.ResponseWriter, r *http.Request) (*Viewer, bool) {
	p := pendingFrom(r.Context())
	switch {
	case p != nil && p.Method == db.MethodMFAPending:
		return p, true
	case p != nil:
		a.redirect(w, r, pendingURL(p))
	case viewerFrom(r.Context()) != nil:
		a.redirect(w, r, "/")
	default:
		a.requireLogin(nil).ServeHTTP(w, r) // anonymous: to the login form
	}
	return nil, false
}

func (a *App) renderSecondFactor(w http.ResponseWriter, r *http.Request, p *Viewer, status int, msg string) {
	f, err := a.store.Factors(r.Context(), p.User.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	form := components.SecondFactorForm{Email: p.User.Email, TOTP: f.TOTP, Passkey: f.Passkeys > 0 && a.webauthn != nil,
		Recovery: f.RecoveryLeft > 0, Error: msg}
	a.render(w, r, status, components.Page{Title: "Second factor", Bare: true}, components.SecondFactorPage(form))
}

// secondFactor handles POST /login/mfa: a code from the authenticator app
// (six digits) or a recovery code. Wrong codes are audited and throttled
// like wrong passwords; a code is accepted once.
func (a *App) secondFactor(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	p, ok := a.mfaPending(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	if !a.mfaAllowed(w, r, p) {
		return
	}
	code := normalizeCode(r.PostForm.Get("code"))
	method, reason := "", ""
	switch {
	case code == "":
		a.renderSecondFactor(w, r, p, http.StatusUnprocessableEntity, "Enter the code from your authenticator app, or a recovery code.")
		return
	case isTOTPCode(code):
		method, reason = db.MethodPasswordTOTP, "wrong code"
		t, err := a.store.TOTP(ctx, p.User.ID)
		if err != nil && !errors.Is(err, db.ErrNotFound) {
			a.serverError(w, r, err)
			return
		}
		if err == nil && t.ConfirmedAt != 0 {
			if step, ok := totpMatch(t.Secret, code, a.now()); ok {
				switch err := a.store.UseTOTPStep(ctx, p.User.ID, step); {
				case err == nil:
					reason = ""
				case errors.Is(err, db.ErrReplayed):
					reason = "code already used"
				default:
					a.serverError(w, r, err)
					return
				}
			}
		}
	default:
		method, reason = db.MethodPasswordRecovery, "wrong recovery code"
		switch err := a.store.UseRecoveryCode(ctx, db.Actor{ID: p.User.ID, Email: p.User.Email, IP: a.clientIP(r)}, p.User.ID, db.HashToken(code)); {
		case err == nil:
			reason = ""
		case !errors.Is(err, db.ErrNotFound):
			a.serverError(w, r, err)
			return
		}
	}
	if reason != "" {
		if err := a.mfaFailed(r, p.User, reason); err != nil {
			a.serverError(w, r, err)
			return
		}
		msg := "That code is not right. Check your authenticator app and try again."
		if reason == "code already used" {
			msg = "That code was already used. Wait for the next one and try again."
		}
		a.renderSecondFactor(w, r, p, http.StatusUnauthorized, msg)
		return
	}
	to, err := a.completeLogin(w, r, p.User, method, pendingNext(p))
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// mfaFailed audits a wrong second factor; mfaThrottled counts these.
func (a *App) mfaFailed(r *http.Request, u db.User, reason string) error {
	return a.store.Audit(r.Context(), db.Actor{ID: u.ID, Email: u.Email, IP: a.clientIP(r)},
		db.Event{Action: db.ActionMFAFailed, Target: u.Email, Detail: map[string]string{"reason": reason}})
}

// mfaAllowed answers 429 (audited) when too many second factors failed
// lately for this account or from this address, and reports whether the
// attempt may go on. The limits are the login limits (--login-failures and
// friends), counted separately from wrong passwords.
func (a *App) mfaAllowed(w http.ResponseWriter, r *http.Request, p *Viewer) bool {
	wait, err := a.mfaThrottled(r.Context(), p.User, a.clientIP(r))
	if err != nil {
		a.serverError(w, r, err)
		return false
	}
	if wait <= 0 {
		return true
	}
	_ = a.store.Audit(r.Context(), db.Actor{ID: p.User.ID, Email: p.User.Email, IP: a.clientIP(r)},
		db.Event{Action: db.ActionMFAThrottled, Target: p.User.Email})
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	msg := fmt.Sprintf("Too many wrong codes. Try again in %s.", humanWait(wait))
	if r.Header.Get("Content-Type") == "application/json" {
		writeJSONError(w, http.StatusTooManyRequests, msg)
		return false
	}
	a.renderSecondFactor(w, r, p, http.StatusTooManyRequests, msg)
	return false
}

// mfaThrottled reports how long u must wait before another second factor
// from ip (0: go ahead), from the audit log like password throttling:
// every instance and restart sees the same counts.
func (a *App) mfaThrottled(ctx context.Context, u db.User, ip string) (time.Duration, error) {
	since := a.now().Add(-a.cfg.ThrottleWindow)
	if u.LastLoginAt > since.UnixMilli() {
		since = db.FromMS(u.LastLoginAt) // failures before a complete login do not count
	}
	return a.failuresWait(ctx, db.ActionMFAFailed, u.Email, ip, since)
}

// failuresWait reports how long to wait before another try (0: go ahead)
// when the audit log holds too many failures (action) for the account
// email since since, or from ip within the throttle window: the login
// limits (--login-failures and friends).
func (a *App) failuresWait(ctx context.Context, action, email, ip string, since time.Time) (time.Duration, error) {
	now := a.now()
	window := a.cfg.ThrottleWindow
	var wait time.Duration
	n, oldest, err := a.store.CountRecent(ctx, action, email, false, since)
	if err != nil {
		return 0, err
	}
	if n >= a.cfg.AccountFailures {
		wait = oldest.Add(window).Sub(now)
	}
	n, oldest, err = a.store.CountRecent(ctx, action, ip, true, now.Add(-window))
	if err != nil {
		return 0, err
	}
	if n >= a.cfg.IPFailures {
		wait = max(wait, oldest.Add(window).Sub(now))
	}
	if wait > 0 && wait < time.Second {
		wait = time.Second
	}
	return wait, nil
}

// normalizeCode drops spaces and dashes and lower-cases a typed code.
func normalizeCode(s string) string {
	if len(s) > 64 {
		return "-" // never a valid code; keeps work bounded
	}
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r == ' ' || r == '-' || r == '\t' {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isTOTPCode(code string) bool {
	if len(code) != 6 {
		return false
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// totpMatch checks a six-digit code against secret at now, allowing one
// step of clock drift either way, and returns the step it belongs to.
func totpMatch(secret, code string, now time.Time) (int64, bool) {
	var found int64
	for _, d := range []int64{-1, 0, 1} {
		t := now.Add(time.Duration(d*totpPeriod) * time.Second)
		want, err := totp.GenerateCodeCustom(secret, t, totpOpts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			found = t.Unix() / totpPeriod
		}
	}
	return found, found != 0
}

// newRecoveryCodes returns RecoveryCodeCount fresh codes (80 random bits
// each, as xxxx-xxxx-xxxx-xxxx) and their hashes for the store.
func newRecoveryCodes() (codes, hashes []string) {
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	for range db.RecoveryCodeCount {
		var b [10]byte
		_, _ = rand.Read(b[:])
		s := strings.ToLower(enc.EncodeToString(b[:]))
		codes = append(codes, s[0:4]+"-"+s[4:8]+"-"+s[8:12]+"-"+s[12:16])
		hashes = append(hashes, db.HashToken(s))
	}
	return codes, hashes
}
