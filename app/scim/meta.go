package scim

import (
	"net/http"
)

// serviceProviderConfig says what this SCIM service does (RFC 7643 §5).
func (h *Handler) serviceProviderConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":          []any{schemaSPC},
		"documentationUri": "https://www.rfc-editor.org/rfc/rfc7644",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": maxCount},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": false},
		"etag":             map[string]any{"supported": false},
		"authenticationSchemes": []any{map[string]any{
			"type": "oauthbearertoken", "name": "Bearer token", "primary": true,
			"description": "A token made by 'gatehouse scim token create NAME', sent as Authorization: Bearer TOKEN.",
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": h.cfg.BaseURL + Prefix + "/ServiceProviderConfig"},
	})
}

func (h *Handler) resourceTypeList() []map[string]any {
	return []map[string]any{
		{"schemas": []any{schemaResType}, "id": "User", "name": "User", "endpoint": "/Users",
			"description": "A person who signs in to Gatehouse", "schema": schemaUser,
			"schemaExtensions": []any{map[string]any{"schema": schemaEnterprise, "required": false}},
			"meta":             map[string]any{"resourceType": "ResourceType", "location": h.cfg.BaseURL + Prefix + "/ResourceTypes/User"}},
		{"schemas": []any{schemaResType}, "id": "Group", "name": "Group", "endpoint": "/Groups",
			"description": "A group at the identity provider; `gatehouse groups map` makes it feed Gatehouse groups", "schema": schemaGroup,
			"meta": map[string]any{"resourceType": "ResourceType", "location": h.cfg.BaseURL + Prefix + "/ResourceTypes/Group"}},
	}
}

func (h *Handler) resourceTypes(w http.ResponseWriter, r *http.Request) {
	list := h.resourceTypeList()
	writeList(w, len(list), page{start: 1, count: len(list)}, list, projector{})
}

func (h *Handler) resourceType(w http.ResponseWriter, r *http.Request) {
	for _, rt := range h.resourceTypeList() {
		if rt["id"] == r.PathValue("id") {
			writeJSON(w, http.StatusOK, rt)
			return
		}
	}
	h.fail(w, r, &Error{Status: http.StatusNotFound, Detail: "No such resource type."})
}

// attribute describes one attribute for /Schemas.
func attribute(name, typ string, multi, required bool, mutability, uniqueness string, caseExact bool, subs ...map[string]any) map[string]any {
	a := map[string]any{"name": name, "type": typ, "multiValued": multi, "required": required, "caseExact": caseExact,
		"mutability": mutability, "returned": "default", "uniqueness": uniqueness, "description": ""}
	if len(subs) > 0 {
		list := make([]any, len(subs))
		for i, s := range subs {
			list[i] = s
		}
		a["subAttributes"] = list
	}
	if typ == "reference" {
		a["referenceTypes"] = []any{"User", "Group"}
	}
	return a
}

func (h *Handler) schemaList() []map[string]any {
	str := func(name string) map[string]any {
		return attribute(name, "string", false, false, "readWrite", "none", false)
	}
	user := map[string]any{
		"schemas": []any{schemaSchema}, "id": schemaUser, "name": "User", "description": "User Account",
		"attributes": []any{
			attribute("userName", "string", false, true, "readWrite", "server", false),
			attribute("name", "complex", false, false, "readWrite", "none", false, str("formatted"), str("familyName"), str("givenName")),
			str("displayName"),
			attribute("active", "boolean", false, false, "readWrite", "none", false),
			attribute("emails", "complex", true, false, "readWrite", "none", false, str("value"), str("type"),
				attribute("primary", "boolean", false, false, "readWrite", "none", false)),
			attribute("groups", "complex", true, false, "readOnly", "none", false,
				attribute("value", "string", false, false, "readOnly", "none", true), attribute("display", "string", false, false, "readOnly", "none", false),
				attribute("$ref", "reference", false, false, "readOnly", "none", true)),
		},
		"meta": map[string]any{"resourceType": "Schema", "location": h.cfg.BaseURL + Prefix + "/Schemas/" + schemaUser},
	}
	group := map[string]any{
		"schemas": []any{schemaSchema}, "id": schemaGroup, "name": "Group", "description": "Group",
		"attributes": []any{
			attribute("displayName", "string", false, true, "readWrite", "server", false),
			attribute("members", "complex", true, false, "readWrite", "none", false,
				attribute("value", "string", false, false, "immutable", "none", true), attribute("display", "string", false, false, "readOnly", "none", false),
				attribute("$ref", "reference", false, false, "immutable", "none", true)),
		},
		"meta": map[string]any{"resourceType": "Schema", "location": h.cfg.BaseURL + Prefix + "/Schemas/" + schemaGroup},
	}
	return []map[string]any{user, group}
}

func (h *Handler) schemas(w http.ResponseWriter, r *http.Request) {
	list := h.schemaList()
	writeList(w, len(list), page{start: 1, count: len(list)}, list, projector{})
}

func (h *Handler) schema(w http.ResponseWriter, r *http.Request) {
	for _, s := range h.schemaList() {
		if s["id"] == r.PathValue("id") {
			writeJSON(w, http.StatusOK, s)
			return
		}
	}
	h.fail(w, r, &Error{Status: http.StatusNotFound, Detail: "No such schema."})
}
