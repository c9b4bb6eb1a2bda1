package app

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"gatehouse/components"
	"gatehouse/db"
)

// showForgot renders GET /password/forgot (404 without --smtp-url).
func (a *App) showForgot(w http.ResponseWriter, r *http.Request) {
	if a.mail == nil {
		a.notFound(w, r)
		return
	}
	a.render(w, r, http.StatusOK, components.Page{Title: "Reset your password", Bare: true}, components.ForgotPage(components.ForgotForm{}))
}

// forgotPassword handles POST /password/forgot: it queues a reset mail for
// the address and answers the same page, with the same status, whether or
// not an account has it. The request path never looks the address up: it
// writes the same two rows (outbox, audit) either way, and the outbox
// worker finds the account, or finds none and sends nothing.
func (a *App) forgotPassword(w http.ResponseWriter, r *http.Request) {
	if a.mail == nil {
		a.notFound(w, r)
		return
	}
	if !a.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	page := components.Page{Title: "Reset your password", Bare: true}
	email, err := db.NormalizeEmail(r.PostForm.Get("email"))
	if err != nil {
		a.render(w, r, http.StatusUnprocessableEntity, page, components.ForgotPage(components.ForgotForm{Error: userMessage(err)}))
		return
	}
	ip := a.clientIP(r)
	wait, err := a.forgotThrottled(r, email, ip)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if wait > 0 {
		a.metrics.throttled("password_reset")
		_ = a.store.Audit(ctx, db.Actor{IP: ip}, db.Event{Action: db.ActionPasswordForgotThrottled, Target: email})
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		a.render(w, r, http.StatusTooManyRequests, page, components.ForgotPage(components.ForgotForm{
			Error: fmt.Sprintf("Too many reset requests. Try again in %s.", humanWait(wait))}))
		return
	}
	if err := a.store.RequestPasswordReset(ctx, db.Actor{IP: ip}, email); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.mail.Kick()
	a.render(w, r, http.StatusOK, page, components.ForgotPage(components.ForgotForm{Sent: true}))
}

// forgotThrottled reports how long the caller must wait before asking for
// another reset of email from ip (0: go ahead). Requests are counted from
// the audit log by the address typed, so the limit is the same for
// addresses with and without an account, on every instance.
func (a *App) forgotThrottled(r *http.Request, email, ip string) (time.Duration, error) {
	now := a.now()
	window := a.cfg.ResetWindow
	var wait time.Duration
	for _, lim := range []struct {
		key   string
		byIP  bool
		limit int
	}{{email, false, a.cfg.ResetPerAccount}, {ip, true, a.cfg.ResetPerIP}} {
		n, oldest, err := a.store.CountRecent(r.Context(), db.ActionPasswordForgot, lim.key, lim.byIP, now.Add(-window))
		if err != nil {
			return 0, err
		}
		if n >= lim.limit {
			wait = max(wait, oldest.Add(window).Sub(now), time.Second)
		}
	}
	return wait, nil
}

// linkGone answers an emailed link that is unknown, used or expired.
func (a *App) linkGone(w http.ResponseWriter, r *http.Request, what string) {
	a.errorPage(w, r, http.StatusNotFound, "Link not valid",
		"This "+what+" link is unknown, expired or already used. Links work once, for a limited time; ask for a new one.")
}

// showResetWithLink renders GET /password/reset?token=T: the new-password
// form while the link is valid. Opening it does not use it up.
func (a *App) showResetWithLink(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	u, err := a.store.MailTokenUser(r.Context(), token, db.TokenReset)
	if errors.Is(err, db.ErrNotFound) {
		a.linkGone(w, r, "password reset")
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, components.Page{Title: "Choose a new password", Bare: true},
		components.ResetPage(components.ResetForm{Token: token, Email: u.Email}))
}

// resetPasswordWithLink handles POST /password/reset: with a valid link
// and a new password that passes the policy it sets the password, uses the
// link up and ends every session of the user, then sends them to log in.
func (a *App) resetPasswordWithLink(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	token := r.PostForm.Get("token")
	u, err := a.store.MailTokenUser(ctx, token, db.TokenReset)
	if errors.Is(err, db.ErrNotFound) {
		a.linkGone(w, r, "password reset")
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	hash, status, msg, err := a.newPasswordHash(w, r, r.PostForm.Get("new"), r.PostForm.Get("confirm"))
	if err != nil {
		a.serverError(w, r, err)
		return
	} else if msg != "" {
		a.render(w, r, status, components.Page{Title: "Choose a new password", Bare: true},
			components.ResetPage(components.ResetForm{Token: token, Email: u.Email, Error: msg}))
		return
	}
	_, err = a.store.ResetPasswordWithToken(ctx, token, hash, a.cfg.SignupGroup, a.clientIP(r))
	if errors.Is(err, db.ErrNotFound) {
		a.linkGone(w, r, "password reset") // used by a concurrent request
		return
	} else if errors.Is(err, db.ErrGroupMissing) {
		a.signupUnavailable(w, r) // an unconfirmed sign-up, and its group is gone
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.redirect(w, r, "/login?reset=1")
}

// showConfirmEmail renders GET /signup/confirm?token=T: a button that
// confirms the address (opening the link alone changes nothing, so a mail
// scanner following it cannot use it up).
func (a *App) showConfirmEmail(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	u, err := a.store.MailTokenUser(r.Context(), token, db.TokenVerify)
	if errors.Is(err, db.ErrNotFound) {
		a.linkGone(w, r, "confirmation")
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, components.Page{Title: "Confirm your email", Bare: true},
		components.ConfirmEmailPage(token, u.Email))
}

// confirmEmail handles POST /signup/confirm: the sign-up's address is
// confirmed, the account joins the sign-up group and is logged in.
func (a *App) confirmEmail(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	ip := a.clientIP(r)
	u, err := a.store.ConfirmEmail(ctx, r.PostForm.Get("token"), a.cfg.SignupGroup, ip)
	switch {
	case errors.Is(err, db.ErrNotFound):
		a.linkGone(w, r, "confirmation")
		return
	case errors.Is(err, db.ErrGroupMissing):
		a.signupUnavailable(w, r)
		return
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	// Logged in as after a password: enrolment in a second factor comes
	// first where --require-mfa asks for it.
	a.afterPassword(w, r, u, "/")
}

// resendConfirmation queues a new confirmation link for a pending sign-up
// that logged in with the right password, at most one per 10 minutes. It
// reports whether it queued one.
func (a *App) resendConfirmation(r *http.Request, u db.User) bool {
	if a.mail == nil {
		return false
	}
	ctx := r.Context()
	n, err := a.store.CountRecentMail(ctx, db.MailSignupVerify, u.Email, a.now().Add(-10*time.Minute))
	if err != nil || n > 0 {
		if err != nil {
			a.log.WarnContext(ctx, "checking recent confirmation mail failed", "err", err)
		}
		return false
	}
	if err := a.store.QueueMail(ctx, db.MailSignupVerify, u.Email, u.ID); err != nil {
		a.log.WarnContext(ctx, "queueing a confirmation mail failed", "err", err)
		return false
	}
	a.mail.Kick()
	return true
}

// signupExisting answers a sign-up with an address that has an account,
// when mail is on, exactly as a new sign-up is answered, and mails the
// owner (at most once an hour) that someone tried.
func (a *App) signupExisting(w http.ResponseWriter, r *http.Request, email string) {
	ctx := r.Context()
	n, err := a.store.CountRecentMail(ctx, db.MailSignupExists, email, a.now().Add(-time.Hour))
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if err := a.store.SignupExisting(ctx, db.Actor{IP: a.clientIP(r)}, email, n == 0); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.mail.Kick()
	a.render(w, r, http.StatusOK, components.Page{Title: "Create an account", Bare: true}, components.SignupSentPage(email))
}
