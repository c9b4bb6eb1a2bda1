package app

import (
	"errors"
	"net/http"

	"gatehouse/app/scim"
	"gatehouse/components"
	"gatehouse/db"
)

// scimNotices are the SCIM page's ?msg= notices.
var scimNotices = map[string]string{
	"token-revoked": "Token revoked: the identity provider's next request with it is refused.",
}

// showSCIM serves GET /admin/scim: the SCIM base URL, the tokens with
// each one's last request and last error, and the form to make one.
func (a *App) showSCIM(w http.ResponseWriter, r *http.Request) {
	a.renderSCIM(w, r, http.StatusOK, components.AdminSCIMData{Notice: scimNotices[r.URL.Query().Get("msg")]})
}

// renderSCIM renders the SCIM page with d's form and notices, filling in
// the rest.
func (a *App) renderSCIM(w http.ResponseWriter, r *http.Request, status int, d components.AdminSCIMData) {
	ctx := r.Context()
	var err error
	if d.Tokens, err = a.store.ListSCIMTokens(ctx); err != nil {
		a.serverError(w, r, err)
		return
	}
	if _, d.Users, err = a.store.ListSCIMUsers(ctx, db.SCIMUserQuery{Limit: 1}); err != nil {
		a.serverError(w, r, err)
		return
	}
	if _, d.Groups, err = a.store.ListSCIMGroups(ctx, db.SCIMGroupQuery{Limit: 1, NoMembers: true}); err != nil {
		a.serverError(w, r, err)
		return
	}
	d.Endpoint = a.cfg.PublicURL() + scim.Prefix
	a.renderAdmin(w, r, status, "SCIM provisioning", "scim", components.AdminSCIMPage(d))
}

// createSCIMToken handles POST /admin/scim/tokens: the page again with
// the new token, shown once. A bad or taken name answers 422 with the
// form and the reason.
func (a *App) createSCIMToken(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	name := truncateRunes(r.PostForm.Get("name"), 200)
	tok, err := a.store.CreateSCIMToken(r.Context(), a.actor(r), name)
	switch {
	case errors.Is(err, db.ErrDuplicate):
		a.renderSCIM(w, r, http.StatusUnprocessableEntity, components.AdminSCIMData{Name: name,
			Error: "A token named “" + name + "” exists. Revoke it first, or choose another name."})
		return
	case err != nil && errors.Is(err, db.ErrUnavailable):
		a.serverError(w, r, err)
		return
	case err != nil:
		a.renderSCIM(w, r, http.StatusUnprocessableEntity, components.AdminSCIMData{Name: name, Error: capitalize(userMessage(err)) + "."})
		return
	}
	a.renderSCIM(w, r, http.StatusOK, components.AdminSCIMData{Created: name, Token: tok})
}

// revokeSCIMToken handles POST /admin/scim/tokens/{name}/revoke.
func (a *App) revokeSCIMToken(w http.ResponseWriter, r *http.Request) {
	err := a.store.RevokeSCIMToken(r.Context(), a.actor(r), r.PathValue("name"))
	if errors.Is(err, db.ErrNotFound) {
		a.notFound(w, r)
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.redirect(w, r, "/admin/scim?msg=token-revoked")
}
