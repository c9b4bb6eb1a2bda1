package app

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/a-h/templ"

	"gatehouse/components"
	"gatehouse/db"
)

// adminPerPage is the page size of every admin list.
const adminPerPage = 50

// adminNotices are the messages a post/redirect/get lands with (?msg=…):
// fixed texts keyed by a code, so nothing from the URL is echoed.
var adminNotices = map[string]string{
	"group-created":    "Group created. Add its members below.",
	"group-saved":      "Group saved.",
	"group-deleted":    "Group deleted with its memberships and grants.",
	"idp-mapped":       "Identity provider group mapped. Memberships follow it from each member's next SSO sign-in.",
	"idp-unmapped":     "Identity provider group unmapped. The members it added stay until removed here.",
	"member-added":     "Member added.",
	"member-removed":   "Member removed. Their access through this group ended.",
	"expiry-saved":     "Membership expiry saved.",
	"groups-saved":     "Group membership saved.",
	"user-renamed":     "Name saved.",
	"user-activated":   "User reactivated.",
	"user-deactivated": "User deactivated and logged out everywhere.",
	"user-promoted":    "User is now an admin.",
	"user-demoted":     "User is no longer an admin.",
	"session-revoked":  "Session revoked.",
	"mfa-reset":        "Second factors reset. The user was logged out everywhere.",
	"grant-saved":      "Dashboard access saved.",
	"request-approved": "Request approved.",
	"request-denied":   "Request denied.",
	"manager-added":    "Manager added.",
	"manager-removed":  "Manager removed. They lost the group on their next request.",
}

func notice(r *http.Request) string { return adminNotices[r.URL.Query().Get("msg")] }

// renderAdmin renders an admin page: the admin tabs and body in the layout,
// or (for htmx) the same without the layout.
func (a *App) renderAdmin(w http.ResponseWriter, r *http.Request, status int, title, tab string, body templ.Component) {
	frame := components.AdminShell(tab)
	if !isAdmin(r) {
		frame = components.ManagerShell(tab) // a group manager: no admin tabs
	}
	shell := templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		return frame.Render(templ.WithChildren(ctx, body), w)
	})
	a.render(w, r, status, components.Page{Title: title, Section: "admin"}, shell)
}

// pathID reads a numeric path value; false means the id cannot exist (404).
func pathID(r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	return id, err == nil && id > 0
}

// pageParam reads ?page= (1-based); anything else is page 1.
func pageParam(r *http.Request, name string) int {
	n, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil || n < 1 {
		return 1
	}
	if n > 1_000_000 {
		n = 1_000_000
	}
	return n
}

// searchParam reads a trimmed search string, bounded in length.
func searchParam(v url.Values, name string) string {
	return truncateRunes(strings.TrimSpace(v.Get(name)), 100)
}

// lastValue returns a form field's last value: checkboxes come after a
// hidden "off" of the same name, so the last one wins.
func lastValue(v url.Values, name string) string {
	vs := v[name]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// boolField reads an on/off style field: "on"/"true" or "off"/"false".
func boolField(v url.Values, name string) (value, ok bool) {
	switch lastValue(v, name) {
	case "on", "true", "1":
		return true, true
	case "off", "false", "0":
		return false, true
	}
	return false, false
}

// busy answers 503 when the password hasher has no free slot.
func (a *App) busy(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", "2")
	a.errorPage(w, r, http.StatusServiceUnavailable, "Busy", "Gatehouse is busy. Nothing was changed; try again in a moment.")
}

// temporaryPassword makes a temporary password and its hash for a new or
// reset account. When hashing is busy (503) or fails (500) it answers and
// ok is false: nothing has been changed yet.
func (a *App) temporaryPassword(w http.ResponseWriter, r *http.Request) (temp, hash string, ok bool) {
	temp = db.TemporaryPassword()
	hash, err := a.hasher.Hash(r.Context(), temp)
	if errors.Is(err, db.ErrBusy) {
		a.busy(w, r)
		return "", "", false
	} else if err != nil {
		a.serverError(w, r, err)
		return "", "", false
	}
	return temp, hash, true
}

// adminOverview renders GET /admin: headline counts, what needs attention
// and the latest audit events.
func (a *App) adminOverview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	totals, err := a.store.CountTotals(ctx)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	sessions, err := a.store.CountActiveSessions(ctx)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	pending, err := a.store.CountPendingRequests(ctx)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	grants, err := a.store.ListGrants(ctx)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	granted := map[string]bool{}
	for _, g := range grants {
		granted[g.Dashboard] = true
	}
	var ungranted []string
	for _, d := range a.registry.All() {
		if !granted[d.Slug] {
			ungranted = append(ungranted, d.Slug)
		}
	}
	recent, _, err := a.store.ListAuditPage(ctx, db.AuditFilter{Limit: 10})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	d := components.AdminOverviewData{Totals: totals, Sessions: sessions, Pending: pending, Ungranted: ungranted,
		Recent: recent, Notice: notice(r), FileProblems: a.fileProblems()}
	a.renderAdmin(w, r, http.StatusOK, "Admin", "overview", components.AdminOverview(d))
}

// joinComponents renders components one after another (a fragment and
// its out-of-band companions).
func joinComponents(cs ...templ.Component) templ.Component {
	return templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		for _, c := range cs {
			if err := c.Render(ctx, w); err != nil {
				return err
			}
		}
		return nil
	})
}

// pageRequest returns r with the query of the page an htmx request was sent
// from (its HX-Current-URL), so a list re-rendered after a change keeps the
// filters and the page number the admin is looking at. Plain requests, and
// a current URL on another path, are returned as they are.
func pageRequest(r *http.Request, path string) *http.Request {
	cur := r.Header.Get("HX-Current-URL")
	if !isHTMX(r) || cur == "" {
		return r
	}
	u, err := url.Parse(cur)
	if err != nil || u.Path != path {
		return r
	}
	r2 := new(http.Request)
	*r2 = *r
	u2 := *r.URL
	u2.RawQuery = u.RawQuery
	r2.URL = &u2
	return r2
}

// retarget makes an htmx answer replace target (a CSS selector) instead of
// the element the form named: a refused change answers with the one row
// that says why, where success re-renders a whole list.
func retarget(w http.ResponseWriter, target string) {
	w.Header().Set("HX-Retarget", target)
	w.Header().Set("HX-Reswap", "outerHTML")
}
