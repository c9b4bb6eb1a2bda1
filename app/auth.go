package app

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gatehouse/components"
	"gatehouse/db"
)

const loginFailedMessage = "Incorrect email or password."

// safeNext returns next when it is a local path on this site, else "/".
// It refuses scheme-relative (//evil), backslash (/\evil) and absolute URLs.
func safeNext(next string) string {
	if next == "" || len(next) > 2048 || next[0] != '/' || strings.HasPrefix(next, "//") ||
		strings.ContainsAny(next, "\\") {
		return "/"
	}
	for _, r := range next {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") ||
		strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	return next
}

// parseForm parses a POSTed form, answering 413 for an oversize body and
// 400 for a malformed one or one holding a NUL byte or invalid UTF-8. It reports whether
// the handler may go on. (checkInput has already parsed and checked every
// POST; this keeps handlers correct on their own.)
func (a *App) parseForm(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		a.formError(w, r, err)
		return false
	}
	if !cleanForm(r.Form) {
		a.errorPage(w, r, http.StatusBadRequest, "Bad request", badInputMessage)
		return false
	}
	return true
}

// formError answers a form that could not be parsed: 413 when too large, else 400.
func (a *App) formError(w http.ResponseWriter, r *http.Request, err error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		a.errorPage(w, r, http.StatusRequestEntityTooLarge, "Request too large", "The form sent more data than Gatehouse accepts.")
		return
	}
	a.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
}

// showLogin renders GET /login.
func (a *App) showLogin(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if v := viewerFrom(r.Context()); v != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	f := a.loginForm(next)
	if r.URL.Query().Get("out") == "1" {
		f.Notice = "You have logged out."
	}
	if r.URL.Query().Get("reset") == "1" {
		f.Notice = "Your password has been changed and you have been logged out everywhere. Log in with the new one."
	}
	// A fresh install: nobody can log in yet, and the way in is the link
	// serve printed (unless the page has news of its own, such as a reset
	// password by someone who signed up).
	if n, err := a.store.CountActiveAdmins(r.Context()); err == nil && n == 0 && f.Notice == "" {
		f.Notice = "Gatehouse has no admin yet. Finish setup with the link printed in the server log."
	}
	a.render(w, r, http.StatusOK, components.Page{Title: "Log in", Bare: true}, components.LoginPage(f))
}

// loginForm is the login page's form for next: with "Sign in with …" when
// an identity provider is configured.
func (a *App) loginForm(next string) components.LoginForm {
	f := components.LoginForm{Next: next, Signup: a.cfg.AllowSignup && a.cfg.PasswordLogin, Forgot: a.mail != nil, Passkey: a.webauthn != nil}
	if a.oidc != nil {
		f.SSOName = a.cfg.OIDCName
		f.SSOStart = "/auth/oidc/start?next=" + url.QueryEscape(next)
		f.AdminsOnly = !a.cfg.PasswordLogin
	}
	return f
}

// login handles POST /login: throttle, verify, rotate the session, redirect.
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	rawEmail := r.PostForm.Get("email")
	password := r.PostForm.Get("password")
	next := safeNext(r.PostForm.Get("next"))
	form := a.loginForm(next)
	form.Email = truncateRunes(strings.TrimSpace(rawEmail), 254)
	ip := a.clientIP(r)
	email, emailErr := db.NormalizeEmail(rawEmail)
	if emailErr != nil {
		email = form.Email
	}
	page := components.Page{Title: "Log in", Bare: true}

	wait, failTarget, err := a.throttled(r, email, ip)
	if err != nil {
		a.serverError(w, r, err)
		return
	} else if wait > 0 {
		a.metrics.login(loginThrottled)
		a.metrics.throttled("login")
		// One row per email and IP per window, counting the attempts: a
		// flood of 429s must not fill the disk (issue 12).
		_ = a.store.AuditThrottled(ctx, db.Actor{Email: email, IP: ip}, email, a.cfg.ThrottleWindow)
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		form.Error = fmt.Sprintf("Too many failed attempts. Try again in %s.", humanWait(wait))
		a.render(w, r, http.StatusTooManyRequests, page, components.LoginPage(form))
		return
	}

	var user db.User
	if emailErr == nil && len(password) <= 1024 {
		user, err = a.store.UserByEmail(ctx, email)
		if err != nil && !errors.Is(err, db.ErrNotFound) {
			a.serverError(w, r, err)
			return
		}
	}
	// Unknown users are verified against a dummy hash so that they take as
	// long as known ones.
	ok, rehash, err := a.hasher.Verify(ctx, password, user.PasswordHash)
	switch {
	case errors.Is(err, db.ErrBusy):
		a.metrics.login(loginBusy)
		w.Header().Set("Retry-After", "2")
		form.Error = "Gatehouse is busy with other logins. Try again in a moment."
		a.render(w, r, http.StatusServiceUnavailable, page, components.LoginPage(form))
		return
	case errors.Is(err, db.ErrBadHash):
		a.log.ErrorContext(ctx, "stored password hash refused", "user", user.Email)
		ok = false
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	if !ok || user.ID == 0 || !user.IsActive || (!a.cfg.PasswordLogin && !user.IsAdmin) {
		reason := "wrong password"
		switch {
		case user.ID == 0:
			reason = "unknown email"
		case ok && !user.IsActive:
			reason = "account deactivated"
		case ok && !user.IsAdmin:
			reason = "password sign-in is for admins only"
		}
		if err := a.store.Audit(ctx, db.Actor{Email: email, IP: ip}, db.Event{Action: db.ActionLoginFailed, Target: failTarget,
			Detail: map[string]string{"reason": reason}}); err != nil {
			a.serverError(w, r, err)
			return
		}
		a.metrics.login(loginFailed)
		form.Error = loginFailedMessage
		a.render(w, r, http.StatusUnauthorized, page, components.LoginPage(form))
		return
	}
	if user.EmailPending {
		// The right password, but the sign-up's address is not confirmed.
		if err := a.store.Audit(ctx, db.Actor{Email: email, IP: ip}, db.Event{Action: db.ActionLoginFailed, Target: failTarget,
			Detail: map[string]string{"reason": "email not confirmed"}}); err != nil {
			a.serverError(w, r, err)
			return
		}
		form.Error = "Confirm your email address first: open the link we sent you."
		if a.resendConfirmation(r, user) {
			form.Error += " We have sent a new one; it may take a few minutes to arrive."
		}
		a.render(w, r, http.StatusForbidden, page, components.LoginPage(form))
		return
	}
	if rehash {
		if h, err := a.hasher.Hash(ctx, password); err == nil {
			_ = a.store.UpdatePasswordHash(ctx, user.ID, user.PasswordHash, h)
		}
	}
	a.metrics.login(loginSuccess) // the password was right; a second factor may follow
	// A second factor, or enrolment, may come before the session (auth_mfa.go).
	a.afterPassword(w, r, user, next)
}

// throttled reports how long the caller must wait before another login
// attempt for email from ip (0: go ahead), and the audit target a failure
// of this attempt is recorded under: the email, or, when the browser holds
// a device cookie for that account (see auth_device.go), the device. Failures
// are counted from the audit log, so every instance and restart sees the
// same counts:
//   - per account, the failures made without a device cookie since the
//     window began or the account's last good login, whichever is later;
//     with a device cookie, that device's failures instead, so failures
//     from elsewhere never lock out a browser the owner has used;
//   - per client IP, every failure in the window.
func (a *App) throttled(r *http.Request, email, ip string) (time.Duration, string, error) {
	now := a.now()
	window := a.cfg.ThrottleWindow
	since := now.Add(-window)
	ctx := r.Context()
	target := email
	if u, err := a.store.UserByEmail(ctx, email); err == nil {
		if u.LastLoginAt > since.UnixMilli() {
			// Failures before the owner's last successful login do not count.
			since = db.FromMS(u.LastLoginAt)
		}
		if device := a.trustedDevice(r, u.ID); device != "" {
			target = deviceTargetPrefix + device
		}
	}
	n, oldest, err := a.store.CountRecent(ctx, db.ActionLoginFailed, target, false, since)
	if err != nil {
		return 0, target, err
	}
	var wait time.Duration
	if n >= a.cfg.AccountFailures {
		wait = oldest.Add(window).Sub(now)
	}
	n, oldest, err = a.store.CountRecent(ctx, db.ActionLoginFailed, ip, true, now.Add(-window))
	if err != nil {
		return 0, target, err
	}
	if n >= a.cfg.IPFailures {
		if w := oldest.Add(window).Sub(now); w > wait {
			wait = w
		}
	}
	if wait > 0 && wait < time.Second {
		wait = time.Second
	}
	return wait, target, nil
}

func humanWait(d time.Duration) string {
	if d <= time.Minute {
		s := int(math.Ceil(d.Seconds()))
		if s == 1 {
			return "1 second"
		}
		return fmt.Sprintf("%d seconds", s)
	}
	m := int(math.Ceil(d.Minutes()))
	if m == 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", m)
}

func truncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// logout handles POST /logout: the server-side session is deleted, so a
// replayed cookie is anonymous.
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	v := viewerFrom(r.Context())
	if v == nil {
		v = pendingFrom(r.Context()) // a half-authenticated session ends too
	}
	if v != nil {
		v.Session.Options.MaxAge = -1
		if err := a.sessions.Save(r, w, v.Session); err != nil {
			a.serverError(w, r, err)
			return
		}
		_ = a.store.Audit(r.Context(), db.Actor{ID: v.User.ID, Email: v.User.Email, IP: a.clientIP(r)},
			db.Event{Action: db.ActionLogout, Target: v.User.Email})
	}
	a.redirect(w, r, "/login?out=1")
}

// showAccount renders GET /account.
func (a *App) showAccount(w http.ResponseWriter, r *http.Request) {
	notice := ""
	if r.URL.Query().Get("changed") == "1" {
		notice = "Your password has been changed. Your other devices have been logged out."
	}
	a.renderAccount(w, r, http.StatusOK, components.PasswordForm{}, notice)
}

func (a *App) renderAccount(w http.ResponseWriter, r *http.Request, status int, pf components.PasswordForm, notice string) {
	v := viewerFrom(r.Context())
	ctx := r.Context()
	groups, err := a.store.GroupsOfUser(ctx, v.User.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	sess, err := a.store.ListSessions(ctx, v.User.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	d := components.AccountData{User: v.User, Groups: groups, Sessions: sess, CurrentID: db.HashToken(v.Session.ID),
		NowMS: a.now().UnixMilli(), Password: pf, Notice: notice, SSOName: a.cfg.OIDCName}
	a.render(w, r, status, components.Page{Title: "Your account", Section: "account"}, components.AccountPage(d))
}

// showChangePassword renders GET /account/password: the forced change page
// for temporary passwords, or the account page's form.
func (a *App) showChangePassword(w http.ResponseWriter, r *http.Request) {
	v := viewerFrom(r.Context())
	if !v.User.MustChangePassword {
		http.Redirect(w, r, "/account#password", http.StatusSeeOther)
		return
	}
	a.render(w, r, http.StatusOK, components.Page{Title: "Choose a new password", Bare: true},
		components.ChangePasswordPage(components.PasswordForm{Forced: true}))
}

// changePassword handles POST /account/password: the current password is
// required; every session of the user is revoked and this browser gets a
// fresh one.
func (a *App) changePassword(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	v := viewerFrom(r.Context())
	ctx := r.Context()
	if !v.User.HasPassword() {
		// Someone created by their identity provider: there is no current
		// password to give, and guessing one is not a failed login.
		a.renderAccount(w, r, http.StatusConflict, components.PasswordForm{}, "")
		return
	}
	current, next, confirm := r.PostForm.Get("current"), r.PostForm.Get("new"), r.PostForm.Get("confirm")
	fail := func(status int, msg string) {
		pf := components.PasswordForm{Forced: v.User.MustChangePassword, Error: msg}
		if v.User.MustChangePassword {
			a.render(w, r, status, components.Page{Title: "Choose a new password", Bare: true}, components.ChangePasswordPage(pf))
			return
		}
		a.renderAccount(w, r, status, pf, "")
	}
	// The current password is a guess like a login's (someone holding a
	// stolen session may try it): the same throttle counts it, and a wrong
	// one is audited as a failed login.
	actor := db.Actor{ID: v.User.ID, Email: v.User.Email, IP: a.clientIP(r)}
	wait, failTarget, err := a.throttled(r, v.User.Email, actor.IP)
	if err != nil {
		a.serverError(w, r, err)
		return
	} else if wait > 0 {
		_ = a.store.Audit(ctx, actor, db.Event{Action: db.ActionLoginThrottled, Target: v.User.Email,
			Detail: map[string]string{"where": "password change"}})
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		fail(http.StatusTooManyRequests, fmt.Sprintf("Too many failed attempts. Try again in %s.", humanWait(wait)))
		return
	}
	ok, _, err := a.hasher.Verify(ctx, current, v.User.PasswordHash)
	switch {
	case errors.Is(err, db.ErrBusy):
		w.Header().Set("Retry-After", "2")
		fail(http.StatusServiceUnavailable, "Gatehouse is busy. Try again in a moment.")
		return
	case err != nil && !errors.Is(err, db.ErrBadHash):
		a.serverError(w, r, err)
		return
	case !ok:
		if err := a.store.Audit(ctx, actor, db.Event{Action: db.ActionLoginFailed, Target: failTarget,
			Detail: map[string]string{"reason": "wrong current password", "where": "password change"}}); err != nil {
			a.serverError(w, r, err)
			return
		}
		fail(http.StatusUnprocessableEntity, "Your current password is not correct.")
		return
	}
	if next == current && next == confirm {
		fail(http.StatusUnprocessableEntity, "The new password must differ from the current one.")
		return
	}
	hash, status, msg, err := a.newPasswordHash(w, r, next, confirm)
	if err != nil {
		a.serverError(w, r, err)
		return
	} else if msg != "" {
		fail(status, msg)
		return
	}
	if err := a.store.SetPassword(ctx, actor, v.User.ID, hash, false); err != nil {
		a.serverError(w, r, err)
		return
	}
	if _, err := a.sessions.LoginWith(w, r, v.User.ID, map[any]any{MethodKey: v.Method}); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.redirect(w, r, "/account?changed=1")
}

// newPasswordHash checks a new password and its confirmation against the
// policy and hashes it. When it fails, status and msg say what to answer
// (422 for a bad password, 503 with Retry-After set when hashing is busy);
// err is a server error to log.
func (a *App) newPasswordHash(w http.ResponseWriter, r *http.Request, pw, confirm string) (hash string, status int, msg string, err error) {
	if pw != confirm {
		return "", http.StatusUnprocessableEntity, "The two passwords do not match.", nil
	}
	if err := db.CheckPasswordPolicy(pw); err != nil {
		return "", http.StatusUnprocessableEntity, userMessage(err), nil
	}
	hash, err = a.hasher.Hash(r.Context(), pw)
	if errors.Is(err, db.ErrBusy) {
		w.Header().Set("Retry-After", "2")
		return "", http.StatusServiceUnavailable, "Gatehouse is busy. Try again in a moment.", nil
	}
	return hash, 0, "", err
}

// userMessage turns a validation error into a sentence for a form.
func userMessage(err error) string {
	return capitalize(strings.TrimSuffix(err.Error(), ".")) + "."
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
