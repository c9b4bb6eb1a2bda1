package scim

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"gatehouse/db"
)

// groupResource is how SCIM shows a pushed group.
func (h *Handler) groupResource(g db.SCIMGroup, members bool) map[string]any {
	m := map[string]any{
		"schemas":     []any{schemaGroup},
		"id":          strconv.FormatInt(g.ID, 10),
		"displayName": g.DisplayName,
		"meta": map[string]any{"resourceType": "Group", "created": stamp(g.Created), "lastModified": stamp(g.Updated),
			"location": h.location("Groups", g.ID)},
	}
	if g.ExternalID != "" {
		m["externalId"] = g.ExternalID
	}
	if members {
		list := make([]any, 0, len(g.Members))
		for _, u := range g.Members {
			list = append(list, map[string]any{"value": strconv.FormatInt(u.ID, 10), "display": u.Display,
				"$ref": h.location("Users", u.ID), "type": "User"})
		}
		m["members"] = list
	}
	return m
}

// groupFrom reads a Group resource onto base: displayName (the IdP group
// name `groups map` names), externalId and members (users by SCIM id).
func groupFrom(m map[string]any, base db.SCIMGroup) (db.SCIMGroup, error) {
	g := base
	name, ok := str(m, "displayName")
	if !ok {
		return g, badRequest("invalidValue", "displayName is required and must be a string.")
	}
	var err error
	if g.DisplayName, err = db.CleanIdPGroup(name); err != nil {
		return g, badRequest("invalidValue", "displayName: %s.", plain(err))
	}
	g.ExternalID = ""
	if v, present := lookup(m, "externalId"); present && v != nil {
		s, ok := v.(string)
		if !ok {
			return g, badRequest("invalidValue", "externalId must be a string.")
		}
		if g.ExternalID, err = db.CleanName("externalId", s, 0, 256); err != nil {
			return g, badRequest("invalidValue", "%s.", plain(err))
		}
	}
	g.Members = nil
	if v, present := lookup(m, "members"); present && v != nil {
		list, ok := v.([]any)
		if !ok {
			return g, badRequest("invalidValue", "members must be a list.")
		}
		for _, el := range list {
			id, err := memberID(el)
			if err != nil {
				return g, err
			}
			g.Members = append(g.Members, db.SCIMRef{ID: id})
		}
	}
	return g, nil
}

// memberID reads a member's value: a user's SCIM id.
func memberID(el any) (int64, error) {
	em, ok := el.(map[string]any)
	if !ok {
		return 0, badRequest("invalidValue", "Each member must be an object with a value (a user's id).")
	}
	v, _ := lookup(em, "value")
	s := strings.TrimSpace(toString(v))
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("invalidValue", "Member %q: no such user (a member must be a user provisioned over SCIM).", s)
	}
	return id, nil
}

func (h *Handler) getGroup(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(r)
	if !ok {
		h.fail(w, r, db.ErrNotFound)
		return
	}
	proj, err := projection(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	withMembers := proj.wants("members")
	gs, _, err := h.cfg.Store.ListSCIMGroups(r.Context(), db.SCIMGroupQuery{ID: id, NoMembers: !withMembers})
	if err == nil && len(gs) == 0 {
		err = db.ErrNotFound
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, proj.apply(h.groupResource(gs[0], withMembers)))
}

func (h *Handler) listGroups(w http.ResponseWriter, r *http.Request) {
	page, proj, f, err := listQuery(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	withMembers := proj.wants("members")
	q, exact := narrowGroups(f)
	q.NoMembers = !withMembers && exact
	if exact {
		q.Offset, q.Limit = page.start-1, max(page.count, 1)
	}
	groups, total, err := h.cfg.Store.ListSCIMGroups(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var out []map[string]any
	if exact {
		if page.count > 0 {
			for _, g := range groups {
				out = append(out, h.groupResource(g, withMembers))
			}
		}
	} else {
		var all []map[string]any
		for _, g := range groups {
			if res := h.groupResource(g, true); match(f, res) {
				if !withMembers {
					delete(res, "members")
				}
				all = append(all, res)
			}
		}
		total = len(all)
		out = pageOf(all, page)
	}
	writeList(w, total, page, out, proj)
}

func (h *Handler) createGroup(w http.ResponseWriter, r *http.Request) {
	body, err := readJSON(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	g, err := groupFrom(body, db.SCIMGroup{})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var out db.SCIMGroup
	err = h.cfg.Store.SCIM(r.Context(), h.actor(r), func(ctx context.Context, t *db.SCIMTx) error {
		out, err = t.CreateGroup(ctx, g)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", h.location("Groups", out.ID))
	writeJSON(w, http.StatusCreated, h.groupResource(out, true))
}

func (h *Handler) replaceGroup(w http.ResponseWriter, r *http.Request) {
	body, err := readJSON(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.changeGroup(w, r, true, func(before db.SCIMGroup) (db.SCIMGroup, error) {
		return groupFrom(body, before)
	})
}

// patchGroup answers 204: a group's member list can be long, and Okta
// and Entra both take 204 for a PATCH.
func (h *Handler) patchGroup(w http.ResponseWriter, r *http.Request) {
	ops, err := readPatch(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.changeGroup(w, r, false, func(before db.SCIMGroup) (db.SCIMGroup, error) {
		res := h.groupResource(before, true)
		if err := applyPatch(res, ops); err != nil {
			return before, err
		}
		return groupFrom(res, before)
	})
}

// changeGroup reads a group, works out its new state with change and
// saves it, in one transaction; answer says whether to answer the group as
// it now is (200) or nothing (204).
func (h *Handler) changeGroup(w http.ResponseWriter, r *http.Request, answer bool, change func(db.SCIMGroup) (db.SCIMGroup, error)) {
	out, ok := changeResource(h, w, r, (*db.SCIMTx).Group, (*db.SCIMTx).SaveGroup, change)
	if !ok {
		return
	}
	if !answer {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, h.groupResource(out, true))
}

func (h *Handler) deleteGroup(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(r)
	if !ok {
		h.fail(w, r, db.ErrNotFound)
		return
	}
	err := h.cfg.Store.SCIM(r.Context(), h.actor(r), func(ctx context.Context, t *db.SCIMTx) error {
		return t.DeleteGroup(ctx, id)
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
