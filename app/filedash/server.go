package filedash

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/a-h/templ"

	"gatehouse/app/dashboards"
)

// Defaults for a panel's query.
const (
	DefaultTimeout  = 5 * time.Second
	DefaultRowLimit = 10_000
	// defaultTTL is how long a panel without a refresh interval is cached.
	defaultTTL = 10 * time.Second
	// maxFilterLen bounds a filter value.
	maxFilterLen = 200
)

// Config is what Open needs.
type Config struct {
	Dir      string
	Registry *dashboards.Registry
	Log      *slog.Logger
	Timeout  time.Duration // per query; DefaultTimeout when 0
	RowLimit int           // per query; DefaultRowLimit when 0
	// Getenv reads ${VAR} in sources.yaml; os.Getenv when nil.
	Getenv func(string) string
}

// Server serves a dashboards directory: it registers its dashboards,
// runs their panels' queries, and reloads edited files.
type Server struct {
	cfg   Config
	cache *cache

	mu      sync.Mutex // serializes Reload
	sources map[string]*source
	loaded  map[string]*loaded // by file name: the last good version

	problems atomic.Pointer[[]Problem]

	groupsMu sync.Mutex
	groups   map[int64]groupsEntry // by user id
	// Queries counts the queries run against sources (panels and filter
	// options), for tests and the benchmark.
	Queries atomic.Int64
}

// loaded is one file as served.
type loaded struct {
	file   *File
	src    *source
	dash   *dashboards.Dashboard
	broken []Problem // set when a newer, broken edit is not served
}

// Open reads cfg.Dir, registers its dashboards and returns the server. A
// broken file is left out (its problems are in Problems and the log); a
// directory that cannot be read is an error.
func Open(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RowLimit <= 0 {
		cfg.RowLimit = DefaultRowLimit
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	s := &Server{cfg: cfg, cache: newCache(), sources: map[string]*source{}, loaded: map[string]*loaded{}}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Problems returns what is wrong in the directory now: files left out, and
// edits not served (the last good version is). Empty when all is well.
func (s *Server) Problems() []Problem {
	if p := s.problems.Load(); p != nil {
		return *p
	}
	return nil
}

// Dir returns the directory served.
func (s *Server) Dir() string { return s.cfg.Dir }

// Close closes the sources' connections.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, src := range s.sources {
		src.close()
	}
}

// Reload reads the directory again and serves what changed. A file that
// is now broken keeps its last good version; a removed file's dashboard
// goes away. It fails only when the directory cannot be read.
func (s *Server) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := Read(s.cfg.Dir, s.cfg.Getenv)
	if err != nil {
		return err
	}
	problems := d.AllProblems()
	// Sources: a broken sources.yaml keeps the sources served until now.
	if !d.SourcesBroken {
		next := map[string]*source{}
		for name, spec := range d.Sources {
			if old := s.sources[name]; old != nil && old.spec.DSN == spec.DSN {
				next[name] = old
				continue
			}
			next[name] = &source{spec: spec}
		}
		for name, old := range s.sources {
			if next[name] != old {
				defer old.close() // after the registry stops serving it
			}
		}
		s.sources = next
	}
	nextLoaded := map[string]*loaded{}
	var dashes []*dashboards.Dashboard
	slugs := map[string]string{}
	for _, name := range d.Names {
		l := s.loaded[name]
		if f := d.Files[name]; f != nil {
			src := s.sources[f.Source]
			if src == nil { // sources.yaml is broken and never named it
				problems = append(problems, Problem{File: f.Path, Line: f.SourcePos.Line, Col: f.SourcePos.Col,
					Message: fmt.Sprintf("source %q is not available", f.Source)})
			} else if l == nil || l.file.Version != f.Version || l.src != src {
				l = &loaded{file: f, src: src}
				l.dash = s.dashboard(l)
			} else {
				l = &loaded{file: l.file, src: l.src, dash: l.dash}
			}
		}
		if l == nil {
			continue
		}
		if what := s.cfg.Registry.Taken(l.file.Slug); what != "" {
			problems = append(problems, Problem{File: l.file.Path, Line: 1, Col: 1,
				Message: fmt.Sprintf("slug %q is taken by %s: choose another", l.file.Slug, what)})
			continue
		}
		if other, dup := slugs[l.file.Slug]; dup {
			if d.Files[name] != nil { // Read reported it already otherwise
				problems = append(problems, Problem{File: l.file.Path, Line: 1, Col: 1,
					Message: fmt.Sprintf("slug %q is already used by %s", l.file.Slug, other)})
			}
			continue
		}
		slugs[l.file.Slug] = name
		nextLoaded[name] = l
		dashes = append(dashes, l.dash)
	}
	if err := s.cfg.Registry.SetFiles(dashes); err != nil {
		return err
	}
	s.loaded = nextLoaded
	for _, p := range problems {
		s.cfg.Log.Error("dashboard file problem", "problem", p.String())
	}
	s.problems.Store(&problems)
	return nil
}

// dashboard builds the registry's dashboard for a loaded file.
func (s *Server) dashboard(l *loaded) *dashboards.Dashboard {
	f := l.file
	d := &dashboards.Dashboard{Slug: f.Slug, Title: f.Title, Description: f.Description, Version: f.Version}
	for _, p := range f.Panels {
		d.Panels = append(d.Panels, &dashboards.Panel{ID: p.ID, Title: p.Title, Refresh: p.Refresh,
			RequireGroup: p.RequireGroup, Wide: p.Wide, Data: s.panelData(l, p)})
	}
	if len(f.Filters) > 0 {
		d.Filters = func(ctx context.Context, q dashboards.Query) (templ.Component, url.Values, error) {
			return s.filterForm(ctx, l, q)
		}
	}
	return d
}

// panelData is a panel's Data function: the query's rendered result from
// the cache, or the query run once for every viewer asking at the time.
// A query that fails renders its message inside the panel (never an
// error, so the panel answers 200); only the viewer's groups failing to
// load is an error.
func (s *Server) panelData(l *loaded, p *PanelSpec) func(context.Context, dashboards.Query) (templ.Component, error) {
	return func(ctx context.Context, q dashboards.Query) (templ.Component, error) {
		vals, msg := s.filterValues(ctx, l, q)
		if msg != "" {
			return panelError(msg), nil
		}
		// Every part of the key is length-prefixed: a filter value holding
		// the separators cannot make one viewer's key another's.
		var key strings.Builder
		keyPart(&key, "panel", l.file.Slug, l.file.Version, p.ID)
		for _, f := range l.file.Filters {
			if p.SQL.Uses(f.Name) { // a filter the panel ignores does not split its cache
				keyPart(&key, "f", f.Name, vals.Filters[f.Name])
			}
		}
		if p.SQL.Uses(ParamViewerGroups) {
			groups, err := s.viewerGroups(ctx, q)
			if err != nil {
				return nil, err
			}
			vals.Groups = groups
			// Cached per distinct set of groups, never across sets.
			keyPart(&key, "g", strconv.Itoa(len(groups)))
			keyPart(&key, groups...)
		}
		if p.SQL.Uses(ParamViewerEmail) {
			vals.Email = q.Viewer.Email
			keyPart(&key, "e", strings.ToLower(q.Viewer.Email))
		}
		ttl := p.Refresh
		if ttl <= 0 {
			ttl = defaultTTL
		}
		return s.cache.load(key.String(), q.Now, ttl, q.Viewer.IsAdmin, func() rendered {
			vals.Now = q.Now
			return s.runPanel(context.WithoutCancel(ctx), l, p, vals)
		}), nil
	}
}

// keyPart appends each of parts to a cache key as its length, a colon and
// itself, so no value can be read as several or as the end of another.
func keyPart(b *strings.Builder, parts ...string) {
	for _, p := range parts {
		b.WriteString(strconv.Itoa(len(p)))
		b.WriteByte(':')
		b.WriteString(p)
	}
}

// runPanel runs a panel's query and renders it, or its failure. A failure
// names its cause (the database's words) to admins only: to everyone else
// it says where to find it, since the cause may name tables and columns
// the dashboard does not show.
func (s *Server) runPanel(ctx context.Context, l *loaded, p *PanelSpec, vals Values) rendered {
	timeout, limit := s.limits(p)
	text, args := p.SQL.bind(l.src.spec.dialect, vals)
	s.Queries.Add(1)
	res, err := l.src.run(ctx, text, args, timeout, limit)
	var c templ.Component
	if err == nil {
		c, err = renderPanel(p, "fd-"+l.file.Slug+"-"+p.ID, res)
	}
	if err != nil {
		s.cfg.Log.Warn("dashboard panel query failed", "file", l.file.Path, "dashboard", l.file.Slug, "panel", p.ID, "err", err)
		viewers, admins := userError(err, timeout)
		return rendered{body: renderError(ctx, viewers), admin: renderError(ctx, admins), failed: true}
	}
	var buf bytes.Buffer
	if err := c.Render(ctx, &buf); err != nil {
		return rendered{body: renderError(ctx, "This panel could not be drawn."), failed: true}
	}
	return rendered{body: buf.Bytes()}
}

func renderError(ctx context.Context, message string) dashboards.Rendered {
	var buf bytes.Buffer
	_ = panelError(message).Render(ctx, &buf) // a string into a buffer
	return buf.Bytes()
}

func (s *Server) limits(p *PanelSpec) (time.Duration, int) {
	timeout, limit := s.cfg.Timeout, s.cfg.RowLimit
	if p != nil && p.Timeout > 0 {
		timeout = p.Timeout
	}
	if p != nil && p.RowLimit > 0 {
		limit = p.RowLimit
	}
	return timeout, limit
}

// viewerGroups returns the names of the groups the viewer is an unexpired
// member of, sorted. They are kept per viewer until the authorization
// version moves (any change to memberships, by any process) or the
// earliest of the memberships expires, so a cached panel costs no query.
func (s *Server) viewerGroups(ctx context.Context, q dashboards.Query) ([]string, error) {
	version, err := q.Store.AuthzVersion(ctx)
	if err != nil {
		return nil, err
	}
	nowMS := q.Now.UnixMilli()
	s.groupsMu.Lock()
	e, ok := s.groups[q.Viewer.UserID]
	s.groupsMu.Unlock()
	if ok && e.version == version && nowMS < e.until {
		return e.names, nil
	}
	ugs, err := q.Store.GroupsOfUser(ctx, q.Viewer.UserID)
	if err != nil {
		return nil, err
	}
	e = groupsEntry{version: version, until: math.MaxInt64, names: make([]string, 0, len(ugs))}
	for _, g := range ugs {
		if g.ExpiresAt == 0 || g.ExpiresAt > nowMS {
			e.names = append(e.names, g.Name)
			if g.ExpiresAt != 0 {
				e.until = min(e.until, g.ExpiresAt)
			}
		}
	}
	s.groupsMu.Lock()
	if s.groups == nil || len(s.groups) >= maxEntries {
		s.groups = map[int64]groupsEntry{}
	}
	s.groups[q.Viewer.UserID] = e
	s.groupsMu.Unlock()
	return e.names, nil
}

// groupsEntry is a viewer's groups as of an authorization version.
type groupsEntry struct {
	version int64
	until   int64 // Unix ms: the earliest expiry among them
	names   []string
}
