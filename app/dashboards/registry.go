// Package dashboards holds the dashboard registry, the access decision
// every dashboard and panel request goes through, and the built-in and demo
// dashboards.
package dashboards

import (
	"context"
	"fmt"
	"maps"
	"net/url"
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
	// Version, set for a dashboard loaded from a file (app/filedash),
	// changes whenever its file does, so an open page of it refreshes.
	Version string
	// Filters, when set, returns the form shown above the panels and the
	// filter values it holds (from q.Params, or their defaults), which the
	// page passes on to every panel's Query.Params (file dashboards'
	// `filters:`). It runs only for a viewer allowed the dashboard.
	Filters func(ctx context.Context, q Query) (templ.Component, url.Values, error)
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
	// Params are the request's query parameters: the dashboard's filter
	// values, for panels that have filters.
	Params url.Values
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

	// files are the dashboards loaded from files (app/filedash), replaced
	// as a whole by SetFiles; filesChanged is closed and replaced then.
	files        atomic.Pointer[registrySet]
	filesChanged atomic.Pointer[chan struct{}]
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
	r.files.Store(&registrySet{bySlug: map[string]*Dashboard{}})
	ch := make(chan struct{})
	r.filesChanged.Store(&ch)
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
	files := r.files.Load().bySlug
	for _, d := range ds {
		if err := validDashboard(d); err != nil {
			return err
		}
		if _, dup := next.bySlug[d.Slug]; dup || files[d.Slug] != nil {
			return fmt.Errorf("dashboard %q is registered twice", d.Slug)
		}
		next.bySlug[d.Slug] = d
		next.order = append(next.order, d)
	}
	return nil
}

// validDashboard checks a dashboard's slug and panels.
func validDashboard(d *Dashboard) error {
	if !slugRE.MatchString(d.Slug) {
		return fmt.Errorf("dashboard slug %q must be 1-64 of a-z, 0-9 and -", d.Slug)
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
	return nil
}

// Taken says what already holds slug among the dashboards registered in
// code and the apps ("" when nothing does): a file dashboard may not
// take it.
func (r *Registry) Taken(slug string) string {
	if r.set.Load().bySlug[slug] != nil {
		return "a built-in dashboard"
	}
	if as := r.currentApps(); as != nil && as.bySlug[slug] != nil {
		return "an app"
	}
	return ""
}

// SetFiles replaces the dashboards loaded from files with ds, all at
// once, and wakes every FilesChanged waiter. It returns an error, and
// changes nothing, when one is invalid, repeats a slug or takes the slug
// of a dashboard registered in code or of an app.
func (r *Registry) SetFiles(ds []*Dashboard) error {
	next := &registrySet{bySlug: make(map[string]*Dashboard, len(ds))}
	for _, d := range ds {
		if err := validDashboard(d); err != nil {
			return err
		}
		if what := r.Taken(d.Slug); what != "" {
			return fmt.Errorf("dashboard %q: the slug is taken by %s", d.Slug, what)
		}
		if next.bySlug[d.Slug] != nil {
			return fmt.Errorf("dashboard %q is defined twice", d.Slug)
		}
		next.bySlug[d.Slug] = d
		next.order = append(next.order, d)
	}
	r.files.Store(next)
	ch := make(chan struct{})
	old := r.filesChanged.Swap(&ch)
	close(*old)
	return nil
}

// FilesChanged returns a channel closed the next time SetFiles replaces
// the file dashboards (an open page of one then refreshes itself).
func (r *Registry) FilesChanged() <-chan struct{} {
	return *r.filesChanged.Load()
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
	if d := r.files.Load().bySlug[slug]; d != nil {
		return d
	}
	if as := r.currentApps(); as != nil {
		return as.bySlug[slug]
	}
	return nil
}

// All returns the dashboards in registration order, then the file
// dashboards by file name, then the apps by slug.
func (r *Registry) All() []*Dashboard {
	all := append([]*Dashboard(nil), r.set.Load().order...)
	all = append(all, r.files.Load().order...)
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
	static, files := r.set.Load().bySlug, r.files.Load().bySlug
	as := &appSet{version: version, bySlug: make(map[string]*Dashboard, len(apps))}
	for _, a := range apps {
		if static[a.Slug] != nil || files[a.Slug] != nil {
			continue // a dashboard in code or a file owns the slug
		}
		d := &Dashboard{Slug: a.Slug, Title: a.Title, Description: a.Description,
			App: &App{Upstream: a.Upstream, UserHeader: a.UserHeader, ExternalURL: a.ExternalURL}}
		as.order = append(as.order, d)
		as.bySlug[a.Slug] = d
	}
	return as
}
