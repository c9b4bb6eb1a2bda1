package filedash

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/a-h/templ"

	"gatehouse/app/dashboards"
)

// filterField is one field of a dashboard's filter form.
type filterField struct {
	Name, Label, Type, Value string
	Options                  []string
}

// filterValues reads the dashboard's filter values from q.Params, with
// each filter's default where a value is missing. A bad value gives the
// sentence the panel shows instead of its data.
func (s *Server) filterValues(ctx context.Context, l *loaded, q dashboards.Query) (Values, string) {
	vals := Values{Filters: make(map[string]string, len(l.file.Filters))}
	for _, f := range l.file.Filters {
		v := strings.TrimSpace(q.Params.Get(f.Name))
		if v == "" {
			v = f.Default
		}
		if len(v) > maxFilterLen {
			return vals, "The filter " + f.Label + " is too long."
		}
		switch f.Type {
		case FilterDate:
			if v != "" {
				d, err := dateValue(v, q.Now)
				if err != nil {
					return vals, "The filter " + f.Label + " must be a date (YYYY-MM-DD)."
				}
				v = d
			}
		case FilterSelect:
			if v != "" {
				opts, msg := s.options(ctx, l, f, q)
				if msg != "" {
					return vals, msg
				}
				if !slices.Contains(opts, v) {
					return vals, "The filter " + f.Label + " has no option " + v + "."
				}
			}
		}
		vals.Filters[f.Name] = v
	}
	return vals, ""
}

// options returns a select filter's options: listed in the file, or its
// query's first column (cached like a panel, per viewer groups when the
// query uses them).
func (s *Server) options(ctx context.Context, l *loaded, f *FilterSpec, q dashboards.Query) ([]string, string) {
	if f.SQL == nil {
		return f.Options, ""
	}
	vals := Values{Now: q.Now}
	var kb strings.Builder
	keyPart(&kb, "options", l.file.Slug, l.file.Version, f.Name)
	if f.SQL.Uses(ParamViewerGroups) {
		groups, err := s.viewerGroups(ctx, q)
		if err != nil {
			return nil, "The filter " + f.Label + "'s options could not be loaded."
		}
		vals.Groups = groups
		keyPart(&kb, "g", strconv.Itoa(len(groups)))
		keyPart(&kb, groups...)
	}
	if f.SQL.Uses(ParamViewerEmail) {
		vals.Email = q.Viewer.Email
		keyPart(&kb, "e", strings.ToLower(q.Viewer.Email))
	}
	// Options are cached as their rendered form: one option per line.
	body := s.cache.load(kb.String(), q.Now, defaultTTL, false, func() rendered {
		timeout, limit := s.limits(nil)
		sqlText, args := f.SQL.bind(l.src.spec.dialect, vals)
		s.Queries.Add(1)
		res, err := l.src.run(context.WithoutCancel(ctx), sqlText, args, timeout, min(limit, 1000))
		if err != nil || len(res.columns) == 0 {
			s.cfg.Log.Warn("dashboard filter options failed", "file", l.file.Path, "dashboard", l.file.Slug, "filter", f.Name, "err", err)
			return rendered{body: dashboards.Rendered("\x00"), failed: true}
		}
		var b strings.Builder
		for _, row := range res.rows {
			b.WriteString(strings.ReplaceAll(text(row[0]), "\n", " ") + "\n")
		}
		return rendered{body: dashboards.Rendered(b.String())}
	})
	if string(body) == "\x00" {
		return nil, "The filter " + f.Label + "'s options could not be loaded."
	}
	return strings.Split(strings.TrimSuffix(string(body), "\n"), "\n"), ""
}

// filterForm is a file dashboard's Filters function: the form and the
// values the panels get.
func (s *Server) filterForm(ctx context.Context, l *loaded, q dashboards.Query) (templ.Component, url.Values, error) {
	vals, msg := s.filterValues(ctx, l, q)
	query := url.Values{}
	var fields []filterField
	for _, f := range l.file.Filters {
		v := vals.Filters[f.Name]
		if msg != "" { // a bad value: show what was sent, the panels say why
			v = q.Params.Get(f.Name)
		}
		field := filterField{Name: f.Name, Label: f.Label, Type: f.Type, Value: v}
		if f.Type == FilterSelect {
			field.Options, _ = s.options(ctx, l, f, q)
		}
		fields = append(fields, field)
		query.Set(f.Name, v)
	}
	return filtersForm("/dashboards/"+l.file.Slug, fields), query, nil
}
