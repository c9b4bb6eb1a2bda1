package app

import (
	"net/http"
	"strings"

	"gatehouse/app/scim"
	"gatehouse/db"
)

// newSCIM builds the SCIM handler (app/scim), which links existing
// accounts by the SSO sign-in's rule (--oidc-domains, --oidc-link).
func (a *App) newSCIM() {
	a.scim = scim.New(scim.Config{
		Store:    a.store,
		Log:      a.log,
		BaseURL:  a.cfg.PublicURL(),
		Policy:   db.SSOPolicy{Domains: a.cfg.OIDCDomains, NoEmailLink: a.cfg.OIDCLink == "never"},
		ClientIP: a.clientIP,
	})
}

// withSCIM sends requests under /scim/v2 to the SCIM handler, outside the
// browser's chain: no session is loaded, no cookie counts, no CSRF check
// is skipped for anything else. Only the request log and the metrics
// (every SCIM request under the one route label "/scim/v2") come first;
// the handler answers its own panics in SCIM JSON.
func (a *App) withSCIM(main http.Handler) http.Handler {
	h := a.metrics.instrument(chain(a.metrics.noteRoute(scim.Prefix, a.scim), a.logRequests))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == scim.Prefix || strings.HasPrefix(r.URL.Path, scim.Prefix+"/") {
			h.ServeHTTP(w, r)
			return
		}
		main.ServeHTTP(w, r)
	})
}
