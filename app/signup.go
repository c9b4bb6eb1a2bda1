package app

import (
	"errors"
	"net/http"
	"slices"
	"strings"

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
	email, err := db.NormalizeEmail(f.Email)
	if err != nil {
		fail(http.StatusUnprocessableEntity, userMessage(err))
		return
	}
	if len(a.cfg.SignupDomains) > 0 {
		domain := email[strings.LastIndexByte(email, '@')+1:]
		if !slices.Contains(a.cfg.SignupDomains, domain) {
			fail(http.StatusUnprocessableEntity, "Sign-up is open only to addresses at "+strings.Join(a.cfg.SignupDomains, ", ")+".")
			return
		}
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
		a.kickMail()
		a.render(w, r, http.StatusOK, page, components.SignupSentPage(u.Email))
		return
	}
	if err := a.sessions.Login(w, r, u.ID); err != nil {
		a.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
