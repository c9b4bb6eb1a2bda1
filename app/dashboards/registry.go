// Package dashboards holds the dashboard registry, the access decision
// every dashboard and panel request goes through, and the built-in and demo
// dashboards.
package dashboards

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/a-h/templ"

	"gatehouse/db"
)

// Dashboard is a page of panels that groups are granted.
type Dashboard struct {
	// Slug names the dashboard in URLs and grants: [a-z0-9-], 1–64 chars.
	Slug        string
	Title       string
	Description string
	Panels      []*Panel
	// App is set for an app: a dashboard whose content comes from an
	// upstream URL and is served at its own origin (app/apps). Apps have
	// no panels; they are stored in the database, not registered in code.
	App *App
}

// App is what makes a dashboard an app.
type App struct {
	// Upstream is the URL the app's content is fetched from.
	Upstream string
	// UserHeader is one more header carrying the viewer's email ("" none).
	UserHeader string
	// ExternalURL is where a team's own proxy serves the app behind
	// forward authentication ("" none); it ends in "/".
	ExternalURL string
}

// Panel is one htmx fragment of a dashboard.
type Panel struct {
	// ID names the panel in its URL: [a-z0-9-].
	ID    string
	Title string
	// Refresh is how often an open dashboard reloads the panel (0: never).
	Refresh time.Duration
	// RequireGroup, when set, is one more group the viewer must be an
	// unexpired member of (admins pass) to see this panel.
	RequireGroup string
	// Wide panels span the full dashboard width.
	Wide bool
	// Data reads the panel's data and returns what to render. It runs only
	// after the access decision allowed the viewer.
	Data func(ctx context.Context, q Query) (templ.Component, error)
}

// Query is what a panel's Data function gets: the store, the viewer it
// renders for and the clock.
type Query struct {
	Store  *db.Store
	Viewer Viewer
	Now    time.Time
}

// Panel returns the dashboard's panel with id, or nil.
func (d *Dashboard) Panel(id string) *Panel {
	for _, p := range d.Panels {
		if p.ID == id {
			return p
		}
	}
	return nil
}

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// Registry is the set of dashboards a server serves, in registration order.
// Every panel request looks its dashboard up, so readers take no lock: they
// read the current set, which Register replaces (dashboards are registered
// at start-up, served for the process's life).
//
// Apps come from the database instead (FollowApps, LoadApps): they join the
// set after the dashboards registered in code, which win a shared slug.
type Registry struct {
	mu  sync.Mutex // serializes Register
	set atomic.Pointer[registrySet]

	// appStore, when set, is read for apps whenever the authorization
	// version has moved since they were last read (apps_authz triggers
	// move it), so an app added by any process is served at once.
	appStore *db.Store
	appMu    sync.Mutex // serializes reloads
	apps     atomic.Pointer[appSet]
}

// appSet is the apps read at one authorization version.
type appSet struct {
	version int64
	order   []*Dashboard
	bySlug  map[string]*Dashboard
}

// registrySet is one registered set of dashboards, never changed once
// published.
type registrySet struct {
	order  []*Dashboard
	bySlug map[string]*Dashboard
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{}
	r.set.Store(&registrySet{bySlug: map[string]*Dashboard{}})
	return r
}

// Register adds dashboards. It returns an error for a bad or duplicate slug
// or panel id, or a panel without Data; the dashboards before the bad one
// stay registered.
func (r *Registry) Register(ds ...*Dashboard) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.set.Load()
	next := &registrySet{order: slices.Clone(old.order), bySlug: maps.Clone(old.bySlug)}
	defer r.set.Store(next)
	for _, d := range ds {
		if !slugRE.MatchString(d.Slug) {
			return fmt.Errorf("dashboard slug %q must be 1-64 of a-z, 0-9 and -", d.Slug)
		}
		if _, dup := next.bySlug[d.Slug]; dup {
			return fmt.Errorf("dashboard %q is registered twice", d.Slug)
		}
		seen := map[string]bool{}
		for _, p := range d.Panels {
			if !slugRE.MatchString(p.ID) || seen[p.ID] {
				return fmt.Errorf("dashboard %q: panel id %q is invalid or repeated", d.Slug, p.ID)
			}
			if p.Data == nil {
				return fmt.Errorf("dashboard %q: panel %q has no Data function", d.Slug, p.ID)
			}
			seen[p.ID] = true
		}
		next.bySlug[d.Slug] = d
		next.order = append(next.order, d)
	}
	return nil
}

// MustRegister is Register that panics on error, for built-in dashboards.
func (r *Registry) MustRegister(ds ...*Dashboard) {
	if err := r.Register(ds...); err != nil {
		panic(err)
	}
}

// Get returns the dashboard (or app) with slug, or nil.
func (r *Registry) Get(slug string) *Dashboard {
	if d := r.set.Load().bySlug[slug]; d != nil {
		return d
	}
	if as := r.currentApps(); as != nil {
		return as.bySlug[slug]
	}
	return nil
}

// All returns the dashboards in registration order, then the apps by slug.
func (r *Registry) All() []*Dashboard {
	all := append([]*Dashboard(nil), r.set.Load().order...)
	if as := r.currentApps(); as != nil {
		all = append(all, as.order...)
	}
	return all
}

// FollowApps makes the registry serve the apps stored in s, read again
// whenever the authorization version has moved (any change by any process:
// the CLI's `apps add`, another instance), so no restart is needed.
// Call it once, before the registry is shared.
func (r *Registry) FollowApps(s *db.Store) {
	r.appStore = s
}

// LoadApps reads the apps stored in s once and serves them from then on
// (for commands, which read a consistent set and exit).
func (r *Registry) LoadApps(ctx context.Context, s *db.Store) error {
	apps, err := s.ListApps(ctx)
	if err != nil {
		return err
	}
	r.apps.Store(r.buildApps(0, apps))
	return nil
}

// currentApps returns the apps as of the current authorization version,
// reading them again when it moved. When the database cannot be read it
// keeps serving the apps it read last.
func (r *Registry) currentApps() *appSet {
	cur := r.apps.Load()
	if r.appStore == nil {
		return cur
	}
	ctx := context.Background()
	v, err := r.appStore.AuthzVersion(ctx)
	if err != nil || (cur != nil && cur.version == v) {
		return cur
	}
	r.appMu.Lock()
	defer r.appMu.Unlock()
	if cur = r.apps.Load(); cur != nil && cur.version >= v {
		return cur
	}
	apps, err := r.appStore.ListApps(ctx)
	if err != nil {
		return cur
	}
	next := r.buildApps(v, apps)
	r.apps.Store(next)
	return next
}

func (r *Registry) buildApps(version int64, apps []db.App) *appSet {
	static := r.set.Load().bySlug
	as := &appSet{version: version, bySlug: make(map[string]*Dashboard, len(apps))}
	for _, a := range apps {
		if static[a.Slug] != nil {
			continue // a dashboard in code owns the slug
		}
		d := &Dashboard{Slug: a.Slug, Title: a.Title, Description: a.Description,
			App: &App{Upstream: a.Upstream, UserHeader: a.UserHeader, ExternalURL: a.ExternalURL}}
		as.order = append(as.order, d)
		as.bySlug[a.Slug] = d
	}
	return as
}
