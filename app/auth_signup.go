package app

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/components"
	"gatehouse/db"
)

// signupFailedMessage is the one answer for an email that cannot be used,
// whether or not an account already has it.
const signupFailedMessage = "Could not create an account with this email. If you already have one, log in instead."

// signupReady reports whether registration may run: it is switched on
// (else 404) and its group, when configured, exists (else 503: a new
// account must never end up without the group by accident).
func (a *App) signupReady(w http.ResponseWriter, r *http.Request) bool {
	if !a.cfg.AllowSignup {
		a.notFound(w, r)
		return false
	}
	if a.cfg.SignupGroup == "" {
		return true
	}
	_, err := a.store.GroupByName(r.Context(), a.cfg.SignupGroup)
	switch {
	case errors.Is(err, db.ErrNotFound):
		a.signupUnavailable(w, r)
		return false
	case err != nil:
		a.serverError(w, r, err)
		return false
	}
	return true
}

// signupUnavailable logs that the sign-up group is missing and answers 503.
func (a *App) signupUnavailable(w http.ResponseWriter, r *http.Request) {
	a.log.ErrorContext(r.Context(), "sign-up refused: the sign-up group does not exist; create it or change --signup-group",
		"signup_group", a.cfg.SignupGroup)
	w.Header().Set("Retry-After", "3600")
	a.errorPage(w, r, http.StatusServiceUnavailable, "Sign-up is unavailable",
		"Sign-up is switched on but not set up completely, so no account can be created right now. The administrators have been told; try again later.")
}

// showSignup renders GET /signup (404 unless --allow-signup).
func (a *App) showSignup(w http.ResponseWriter, r *http.Request) {
	if !a.signupReady(w, r) {
		return
	}
	if viewerFrom(r.Context()) != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	a.render(w, r, http.StatusOK, components.Page{Title: "Create an account", Bare: true},
		components.SignupPage(components.SignupForm{Domains: a.cfg.SignupDomains, Confirm: a.mail != nil}))
}

// signup handles POST /signup: checks the email's domain and the password
// policy, creates the user in the sign-up group (one transaction, audited
// as user.signup) and logs them in.
func (a *App) signup(w http.ResponseWriter, r *http.Request) {
	if !a.signupReady(w, r) || !a.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	f := components.SignupForm{Email: truncateRunes(strings.TrimSpace(r.PostForm.Get("email")), 254),
		Name: truncateRunes(r.PostForm.Get("name"), 100), Domains: a.cfg.SignupDomains, Confirm: a.mail != nil}
	page := components.Page{Title: "Create an account", Bare: true}
	fail := func(status int, msg string) {
		f.Error = msg
		a.render(w, r, status, page, components.SignupPage(f))
	}
	// Sign-up trusts the typed address until mail confirms it, so each
	// client IP may create only so many accounts an hour; the check comes
	// before the password is hashed.
	if wait, err := a.signupThrottled(r); err != nil {
		a.serverError(w, r, err)
		return
	} else if wait > 0 {
		a.log.WarnContext(ctx, "sign-up throttled", "ip", a.clientIP(r))
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		fail(http.StatusTooManyRequests, fmt.Sprintf("Too many accounts were created from your network recently. Try again in %s.", humanWait(wait)))
		return
	}
	email, err := db.NormalizeEmail(f.Email)
	if err != nil {
		fail(http.StatusUnprocessableEntity, userMessage(err))
		return
	}
	domain := email[strings.LastIndexByte(email, '@')+1:]
	switch {
	case len(a.cfg.SignupDomains) > 0 && !slices.Contains(a.cfg.SignupDomains, domain):
		fail(http.StatusUnprocessableEntity, "Sign-up is open only to addresses at "+strings.Join(a.cfg.SignupDomains, ", ")+".")
		return
	case len(a.cfg.SignupDomains) == 0 && !strings.Contains(domain, "."):
		// A single-label domain is an intranet's: an admin who wants those
		// lists it in --signup-domains; from anyone else it is a typo.
		fail(http.StatusUnprocessableEntity, fmt.Sprintf("%q is not a valid email address: the domain needs a dot (example.com).", email))
		return
	}
	name, err := db.CleanName("name", f.Name, 0, 100)
	if err != nil {
		fail(http.StatusUnprocessableEntity, userMessage(err))
		return
	}
	hash, status, msg, err := a.newPasswordHash(w, r, r.PostForm.Get("password"), r.PostForm.Get("confirm"))
	if err != nil {
		a.serverError(w, r, err)
		return
	} else if msg != "" {
		fail(status, msg)
		return
	}
	nu := db.NewUser{Email: email, Name: name, PasswordHash: hash}
	var u db.User
	if a.mail != nil {
		// With mail the account works, and joins the group, only once
		// the emailed link is opened (confirmEmail).
		u, err = a.store.SignupPendingUser(ctx, db.Actor{IP: a.clientIP(r)}, nu)
	} else {
		u, err = a.store.SignupUser(ctx, db.Actor{IP: a.clientIP(r)}, nu, a.cfg.SignupGroup)
	}
	switch {
	case errors.Is(err, db.ErrDuplicate) && a.mail != nil:
		// The same answer as for a new address; the owner hears of it.
		a.signupExisting(w, r, email)
		return
	case errors.Is(err, db.ErrDuplicate):
		fail(http.StatusUnprocessableEntity, signupFailedMessage)
		return
	case errors.Is(err, db.ErrNotFound):
		// The group vanished between the check and the insert: nothing was created.
		a.signupUnavailable(w, r)
		return
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	if a.mail != nil {
		a.mail.Kick()
		a.render(w, r, http.StatusOK, page, components.SignupSentPage(u.Email))
		return
	}
	if err := a.sessions.Login(w, r, u.ID); err != nil {
		a.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// signupWindow is the period --signup-per-ip counts over.
const signupWindow = time.Hour

// signupThrottled reports how long the client must wait before another
// sign-up (0: go ahead): at most SignupsPerIP accounts per client IP per
// hour, counted from the audit log (user.signup rows carry the IP), so
// every instance shares the count.
func (a *App) signupThrottled(r *http.Request) (time.Duration, error) {
	if a.cfg.SignupsPerIP <= 0 {
		return 0, nil
	}
	now := a.now()
	n, oldest, err := a.store.CountRecent(r.Context(), db.ActionUserSignup, a.clientIP(r), true, now.Add(-signupWindow))
	if err != nil || n < a.cfg.SignupsPerIP {
		return 0, err
	}
	return max(oldest.Add(signupWindow).Sub(now), time.Second), nil
}
