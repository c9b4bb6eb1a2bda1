package app

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"gatehouse/components"
	"gatehouse/db"
)

// SetupTokenTTL is how long a first-run setup link stays valid.
const SetupTokenTTL = 30 * time.Minute

// SetupURL returns a fresh one-time setup URL when no active admin exists
// yet (and "" once one does).
func (a *App) SetupURL(ctx context.Context) (string, error) {
	n, err := a.store.CountActiveAdmins(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	token, err := a.store.NewSetupToken(ctx, SetupTokenTTL)
	if err != nil {
		return "", err
	}
	return a.cfg.PublicURL() + "/setup?token=" + url.QueryEscape(token), nil
}

func (a *App) setupGone(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusNotFound, components.Page{Title: "Setup link not valid", Bare: true}, components.SetupGone())
}

// showSetup renders GET /setup?token=T: the first-admin form while the token is valid.
func (a *App) showSetup(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	ok, err := a.store.SetupTokenValid(r.Context(), token)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if !ok {
		a.setupGone(w, r)
		return
	}
	a.render(w, r, http.StatusOK, components.Page{Title: "Set up", Bare: true}, components.SetupPage(components.SetupForm{Token: token}))
}

// setup handles POST /setup: creates the first admin, consumes the token
// and logs the new admin in.
func (a *App) setup(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	f := components.SetupForm{Token: r.PostForm.Get("token"), Email: truncateRunes(r.PostForm.Get("email"), 254), Name: truncateRunes(r.PostForm.Get("name"), 100)}
	ok, err := a.store.SetupTokenValid(ctx, f.Token)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if !ok {
		a.setupGone(w, r)
		return
	}
	fail := func(msg string) {
		f.Error = msg
		a.render(w, r, http.StatusUnprocessableEntity, components.Page{Title: "Set up", Bare: true}, components.SetupPage(f))
	}
	email, err := db.NormalizeEmail(f.Email)
	if err != nil {
		fail(userMessage(err))
		return
	}
	name, err := db.CleanName("name", f.Name, 0, 100)
	if err != nil {
		fail(userMessage(err))
		return
	}
	hash, status, msg, err := a.newPasswordHash(w, r, r.PostForm.Get("password"), r.PostForm.Get("confirm"))
	if err != nil {
		a.serverError(w, r, err)
		return
	} else if msg != "" {
		f.Error = msg
		a.render(w, r, status, components.Page{Title: "Set up", Bare: true}, components.SetupPage(f))
		return
	}
	u, err := a.store.CompleteSetup(ctx, f.Token, db.NewUser{Email: email, Name: name, PasswordHash: hash}, a.clientIP(r))
	switch {
	case errors.Is(err, db.ErrNotFound):
		a.setupGone(w, r)
		return
	case errors.Is(err, db.ErrDuplicate):
		fail("A user with this email already exists. Promote them on the server with “gatehouse users promote EMAIL” instead.")
		return
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	if err := a.sessions.Login(w, r, u.ID); err != nil {
		a.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
