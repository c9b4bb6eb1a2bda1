package app

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"gatehouse/components"
	"gatehouse/db"
)

// auditActionChoices are the audit filter's options: every action, then
// the families ("user." matches every user.* action).
func auditActionChoices() []string {
	out := append([]string(nil), db.Actions...)
	return append(out, "login.", "user.", "group.", "member.", "grant.", "request.", "mfa.", "password.")
}

// showAudit renders GET /admin/audit: the audit log newest first, filtered
// by actor (contains), action and a date range (UTC days, both included),
// 50 per page. For htmx (the filters) it answers the table alone.
func (a *App) showAudit(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	d := components.AuditData{Actor: truncateRunes(strings.TrimSpace(v.Get("actor")), 254), Action: strings.TrimSpace(v.Get("action")),
		From: strings.TrimSpace(v.Get("from")), To: strings.TrimSpace(v.Get("to")), Actions: auditActionChoices()}
	f := db.AuditFilter{Actor: d.Actor, Action: d.Action, Limit: adminPerPage}
	status := http.StatusOK
	var bad []string
	if d.From != "" {
		t, err := time.Parse("2006-01-02", d.From)
		if err != nil {
			bad = append(bad, "“From” is not a date like 2026-12-31")
		}
		f.Since = t
	}
	if d.To != "" {
		t, err := time.Parse("2006-01-02", d.To)
		if err != nil {
			bad = append(bad, "“To” is not a date like 2026-12-31")
		} else {
			f.Until = t.AddDate(0, 0, 1)
		}
	}
	if d.Action != "" && !knownAction(d.Action) {
		// An action this list does not know yet (a newer instance wrote
		// it) still filters; offer it in the select too.
		d.Action = truncateRunes(d.Action, 64)
		d.Actions = append(d.Actions, d.Action)
	}
	page := pageParam(r, "page")
	f.Offset = (page - 1) * adminPerPage
	if len(bad) > 0 {
		status, d.Error = http.StatusUnprocessableEntity, strings.Join(bad, "; ")+"."
	} else {
		events, more, err := a.store.ListAuditPage(r.Context(), f)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		d.Events = events
		query := url.Values{}
		for k, val := range map[string]string{"actor": d.Actor, "action": d.Action, "from": d.From, "to": d.To} {
			if val != "" {
				query.Set(k, val)
			}
		}
		d.Pager = components.Pager{Path: "/admin/audit", Query: query, Page: page, PerPage: adminPerPage, Total: -1, HasNext: more,
			Shown: len(events), Noun: "events"}
	}
	if isHTMX(r) {
		a.renderFragment(w, r, status, components.AdminAuditTable(d))
		return
	}
	a.renderAdmin(w, r, status, "Audit log", "audit", components.AdminAuditPage(d))
}

func knownAction(action string) bool {
	for _, a := range auditActionChoices() {
		if a == action {
			return true
		}
	}
	return false
}
