package scim

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"gatehouse/db"
)

// userResource is how SCIM shows a user.
func (h *Handler) userResource(u db.SCIMUser) map[string]any {
	name := map[string]any{}
	if u.GivenName != "" {
		name["givenName"] = u.GivenName
	}
	if u.FamilyName != "" {
		name["familyName"] = u.FamilyName
	}
	if u.Name != "" {
		name["formatted"] = u.Name
	}
	groups := make([]any, 0, len(u.Groups))
	for _, g := range u.Groups {
		id := strconv.FormatInt(g.ID, 10)
		groups = append(groups, map[string]any{"value": id, "display": g.Display, "$ref": h.location("Groups", g.ID), "type": "direct"})
	}
	m := map[string]any{
		"schemas":  []any{schemaUser},
		"id":       strconv.FormatInt(u.ID, 10),
		"userName": u.UserName,
		"active":   u.Active,
		"emails":   []any{map[string]any{"value": u.Email, "type": "work", "primary": true}},
		"groups":   groups,
		"meta": map[string]any{"resourceType": "User", "created": stamp(u.Created), "lastModified": stamp(u.Updated),
			"location": h.location("Users", u.ID)},
	}
	if u.ExternalID != "" {
		m["externalId"] = u.ExternalID
	}
	if len(name) > 0 {
		m["name"] = name
	}
	if u.Name != "" {
		m["displayName"] = u.Name
	}
	return m
}

// userFrom reads the attributes Gatehouse keeps from a User resource (a
// request body, or a resource after a PATCH) onto base. The account's
// email is the primary email, else the work one, else the first, else the
// userName when it is an email address. active absent keeps base's.
func userFrom(m map[string]any, base db.SCIMUser) (db.SCIMUser, error) {
	u := base
	userName, ok := str(m, "userName")
	if !ok {
		return u, badRequest("invalidValue", "userName is required and must be a string.")
	}
	var err error
	if u.UserName, err = db.CleanName("userName", userName, 1, 256); err != nil {
		return u, badRequest("invalidValue", "%s.", plain(err))
	}
	u.ExternalID = ""
	if v, present := lookup(m, "externalId"); present && v != nil {
		s, ok := v.(string)
		if !ok {
			return u, badRequest("invalidValue", "externalId must be a string.")
		}
		if u.ExternalID, err = db.CleanName("externalId", s, 0, 256); err != nil {
			return u, badRequest("invalidValue", "%s.", plain(err))
		}
	}
	u.GivenName, u.FamilyName = "", ""
	formatted := ""
	if v, present := lookup(m, "name"); present && v != nil {
		nm, ok := v.(map[string]any)
		if !ok {
			return u, badRequest("invalidValue", "name must be an object.")
		}
		for _, f := range []struct {
			key string
			dst *string
		}{{"givenName", &u.GivenName}, {"familyName", &u.FamilyName}, {"formatted", &formatted}} {
			if s, ok := str(nm, f.key); ok {
				if *f.dst, err = db.CleanName("name."+f.key, s, 0, 100); err != nil {
					return u, badRequest("invalidValue", "%s.", plain(err))
				}
			}
		}
	}
	display, _ := str(m, "displayName")
	switch {
	case strings.TrimSpace(display) != "":
		u.Name = display
	case formatted != "":
		u.Name = formatted
	default:
		u.Name = strings.TrimSpace(u.GivenName + " " + u.FamilyName)
	}
	if u.Name, err = db.CleanName("displayName", u.Name, 0, 100); err != nil {
		return u, badRequest("invalidValue", "%s.", plain(err))
	}
	if v, present := lookup(m, "active"); present && v != nil {
		b, ok := boolean(v)
		if !ok {
			return u, badRequest("invalidValue", "active must be true or false.")
		}
		u.Active = b
	}
	email, err := accountEmail(m, u.UserName)
	if err != nil {
		return u, err
	}
	u.Email = email
	return u, nil
}

// accountEmail picks the account's email from emails, else userName.
func accountEmail(m map[string]any, userName string) (string, error) {
	var pick string
	if v, present := lookup(m, "emails"); present && v != nil {
		list, ok := v.([]any)
		if !ok {
			return "", badRequest("invalidValue", "emails must be a list.")
		}
		rank := 0
		for _, e := range list {
			em, ok := e.(map[string]any)
			if !ok {
				return "", badRequest("invalidValue", "Each of emails must be an object with a value.")
			}
			val, ok := str(em, "value")
			if !ok || strings.TrimSpace(val) == "" {
				continue
			}
			r := 1
			if t, _ := str(em, "type"); strings.EqualFold(t, "work") {
				r = 2
			}
			if p, present := lookup(em, "primary"); present {
				if b, ok := boolean(p); ok && b {
					r = 3
				}
			}
			if r > rank {
				rank, pick = r, val
			}
		}
	}
	if pick == "" {
		pick = userName
	}
	email, err := db.NormalizeEmail(pick)
	if err != nil {
		return "", badRequest("invalidValue", "Gatehouse needs an email address for each user: give one in emails, or make userName one (%s).", plain(err))
	}
	return email, nil
}

func (h *Handler) getUser(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(r)
	if !ok {
		h.fail(w, r, db.ErrNotFound)
		return
	}
	us, _, err := h.cfg.Store.ListSCIMUsers(r.Context(), db.SCIMUserQuery{ID: id})
	if err == nil && len(us) == 0 {
		err = db.ErrNotFound
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	proj, perr := projection(r)
	if perr != nil {
		h.fail(w, r, perr)
		return
	}
	writeJSON(w, http.StatusOK, proj.apply(h.userResource(us[0])))
}

func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request) {
	page, proj, f, err := listQuery(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q, exact := narrowUsers(f)
	var users []db.SCIMUser
	var total int
	if exact {
		q.Offset, q.Limit = page.start-1, max(page.count, 1)
	}
	users, total, err = h.cfg.Store.ListSCIMUsers(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var out []map[string]any
	if exact {
		if page.count > 0 {
			for _, u := range users {
				out = append(out, h.userResource(u))
			}
		}
	} else {
		var all []map[string]any
		for _, u := range users {
			if res := h.userResource(u); match(f, res) {
				all = append(all, res)
			}
		}
		total = len(all)
		out = pageOf(all, page)
	}
	writeList(w, total, page, out, proj)
}

func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) {
	body, err := readJSON(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	u, err := userFrom(body, db.SCIMUser{Active: true})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var out db.SCIMUser
	err = h.cfg.Store.SCIM(r.Context(), h.actor(r), func(ctx context.Context, t *db.SCIMTx) error {
		out, _, err = t.CreateUser(ctx, u, h.cfg.Policy)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", h.location("Users", out.ID))
	writeJSON(w, http.StatusCreated, h.userResource(out))
}

func (h *Handler) replaceUser(w http.ResponseWriter, r *http.Request) {
	body, err := readJSON(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.changeUser(w, r, func(before db.SCIMUser) (db.SCIMUser, error) {
		return userFrom(body, before)
	})
}

func (h *Handler) patchUser(w http.ResponseWriter, r *http.Request) {
	ops, err := readPatch(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.changeUser(w, r, func(before db.SCIMUser) (db.SCIMUser, error) {
		res := h.userResource(before)
		// The account's email is shown as the one work email; a PATCH of
		// emails starts from it.
		if err := applyPatch(res, ops); err != nil {
			return before, err
		}
		return userFrom(res, before)
	})
}

// changeUser reads a user, works out its new state with change and saves
// it, all in one transaction, and answers the user as it now is.
func (h *Handler) changeUser(w http.ResponseWriter, r *http.Request, change func(db.SCIMUser) (db.SCIMUser, error)) {
	if out, ok := changeResource(h, w, r, (*db.SCIMTx).User, (*db.SCIMTx).SaveUser, change); ok {
		writeJSON(w, http.StatusOK, h.userResource(out))
	}
}

// changeResource reads the resource the path names with load, works out its
// new state with change, saves it with save and reads it again, all in one
// transaction. On failure it has answered with the SCIM error (ok false).
func changeResource[T any](h *Handler, w http.ResponseWriter, r *http.Request,
	load func(*db.SCIMTx, context.Context, int64) (T, error),
	save func(*db.SCIMTx, context.Context, T, T) error,
	change func(T) (T, error)) (out T, ok bool) {
	id, ok := parseID(r)
	if !ok {
		h.fail(w, r, db.ErrNotFound)
		return out, false
	}
	err := h.cfg.Store.SCIM(r.Context(), h.actor(r), func(ctx context.Context, t *db.SCIMTx) error {
		before, err := load(t, ctx, id)
		if err != nil {
			return err
		}
		after, err := change(before)
		if err != nil {
			return err
		}
		if err := save(t, ctx, before, after); err != nil {
			return err
		}
		out, err = load(t, ctx, id)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return out, false
	}
	return out, true
}

func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(r)
	if !ok {
		h.fail(w, r, db.ErrNotFound)
		return
	}
	err := h.cfg.Store.SCIM(r.Context(), h.actor(r), func(ctx context.Context, t *db.SCIMTx) error {
		return t.DeleteUser(ctx, id)
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// lookup finds key in m ignoring case (SCIM attribute names are
// case-insensitive).
func lookup(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// keyOf returns the key m uses for key (ignoring case), or key.
func keyOf(m map[string]any, key string) string {
	if _, ok := m[key]; ok {
		return key
	}
	for k := range m {
		if strings.EqualFold(k, key) {
			return k
		}
	}
	return key
}

func str(m map[string]any, key string) (string, bool) {
	v, ok := lookup(m, key)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

// boolean reads a JSON boolean, or the strings "true" and "false" in any
// case (Entra sent "False" before its 2020 fixes).
func boolean(v any) (bool, bool) {
	switch b := v.(type) {
	case bool:
		return b, true
	case string:
		switch strings.ToLower(strings.TrimSpace(b)) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}

// number reads a JSON number.
func number(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case float64:
		return int64(n), float64(int64(n)) == n
	}
	return 0, false
}
