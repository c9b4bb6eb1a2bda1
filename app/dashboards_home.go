package app

import (
	"encoding/json"
	"net/http"

	"gatehouse/components"
	"gatehouse/db"
)

// home renders GET /: the viewer's name, groups and the dashboards they may
// open, with the others offered behind "Request access".
func (a *App) home(w http.ResponseWriter, r *http.Request) {
	v := viewerFrom(r.Context())
	ctx := r.Context()
	groups, err := a.store.GroupsOfUser(ctx, v.User.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	cards, err := a.dashboardCards(r, v)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	d := components.HomeData{User: v.User, Groups: groups, Dashboards: cards, NowMS: a.now().UnixMilli()}
	a.render(w, r, http.StatusOK, components.Page{Title: "Dashboards", Section: "home"}, components.HomePage(d))
}

// healthz answers 200 when the database answers, 503 otherwise.
func (a *App) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if err := a.store.Ping(r.Context()); err != nil {
		a.log.WarnContext(r.Context(), "health check failed", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"unavailable","database":"unreachable"}` + "\n"))
		return
	}
	_, _ = w.Write([]byte(`{"status":"ok","database":"ok","dialect":"` + a.store.Dialect + `"}` + "\n"))
}

// readyz answers 200 when this server should get traffic: the database
// answers and its schema is exactly the one this build expects (a rolling
// upgrade that migrated ahead, or a database not yet migrated, is 503).
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if err := a.store.Ready(r.Context()); err != nil {
		a.log.WarnContext(r.Context(), "readiness check failed", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		b, _ := json.Marshal(map[string]string{"status": "unavailable", "reason": db.Sentence(err)})
		_, _ = w.Write(append(b, '\n'))
		return
	}
	_, _ = w.Write([]byte(`{"status":"ok","database":"ok","schema":"current"}` + "\n"))
}
