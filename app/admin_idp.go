package app

import (
	"errors"
	"fmt"
	"net/http"

	"gatehouse/components"
	"gatehouse/db"
)

// idpGroupsData is the identity provider mappings a group's page shows to
// admins (nil for a manager who is not one: mappings are for admins).
func (a *App) idpGroupsData(r *http.Request, g db.Group) (*components.IdPGroupsData, error) {
	if v := viewerFrom(r.Context()); v == nil || !v.User.IsAdmin {
		return nil, nil
	}
	mapped, err := a.store.IdPGroupsOf(r.Context(), g.ID)
	if err != nil {
		return nil, err
	}
	return &components.IdPGroupsData{GroupID: g.ID, Enabled: a.oidc != nil, Mapped: mapped}, nil
}

// mapIdPGroup handles POST /admin/groups/{id}/idp-groups: an identity
// provider group (form field idp_group) feeds the group from each member's
// next SSO sign-in. A bad name is 422, one already mapped 409; both show the
// page again with the reason.
func (a *App) mapIdPGroup(w http.ResponseWriter, r *http.Request) {
	a.changeIdPMapping(w, r, true)
}

// unmapIdPGroup handles POST /admin/groups/{id}/idp-groups/remove.
func (a *App) unmapIdPGroup(w http.ResponseWriter, r *http.Request) {
	a.changeIdPMapping(w, r, false)
}

func (a *App) changeIdPMapping(w http.ResponseWriter, r *http.Request, add bool) {
	g, ok := a.groupFromPath(w, r)
	if !ok || !a.parseForm(w, r) {
		return
	}
	raw := r.PostForm.Get("idp_group")
	fail := func(status int, msg string) {
		a.renderGroupPage(w, r, status, g, func(d *components.GroupPageData) {
			if d.IdP != nil {
				d.IdP.Value, d.IdP.Error = truncateRunes(raw, db.MaxIdPGroupLen), msg
			}
		})
	}
	name, err := db.CleanIdPGroup(raw)
	if err != nil {
		fail(http.StatusUnprocessableEntity, userMessage(err))
		return
	}
	msg := "idp-mapped"
	if add {
		err = a.store.MapIdPGroup(r.Context(), a.actor(r), g.ID, name)
	} else {
		msg = "idp-unmapped"
		err = a.store.UnmapIdPGroup(r.Context(), a.actor(r), g.ID, name)
	}
	switch {
	case add && errors.Is(err, db.ErrDuplicate):
		fail(http.StatusConflict, fmt.Sprintf("The identity provider group “%s” already feeds this group.", name))
		return
	case !add && errors.Is(err, db.ErrNotFound):
		fail(http.StatusNotFound, fmt.Sprintf("The identity provider group “%s” does not feed this group.", name))
		return
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	a.redirect(w, r, fmt.Sprintf("/admin/groups/%d?msg=%s#idp-groups", g.ID, msg))
}
