package filedash

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Report is what Check found.
type Report struct {
	Dashboards int
	Sources    int
	Problems   []Problem
}

// Check validates dir as `gatehouse dashboards check` does: every file's
// YAML and format, then each source is reached and each query prepared
// by its database (which parses and plans it against the schema, without
// running it). getenv reads ${VAR} (os.Getenv when nil).
func Check(ctx context.Context, dir string, getenv func(string) string) (Report, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	d, err := Read(dir, getenv)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Dashboards: len(d.Files), Sources: len(d.Sources), Problems: d.AllProblems()}
	if d.Sources == nil && !d.SourcesBroken && len(d.Names) > 0 {
		rep.Problems = append(rep.Problems, Problem{File: filepath.Join(dir, SourcesFile), Message: "the file is missing: name the dashboards' sources there"})
	}
	sources := map[string]*source{}
	names := make([]string, 0, len(d.Sources))
	for name := range d.Sources {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		src := &source{spec: d.Sources[name]}
		defer src.close()
		if err := src.ping(ctx); err != nil {
			pr := src.spec.Pos
			pr.Message = fmt.Sprintf("source %q cannot be reached: %s", name, oneLine(err.Error()))
			rep.Problems = append(rep.Problems, pr)
			continue
		}
		sources[name] = src
	}
	fileNames := make([]string, 0, len(d.Files))
	for n := range d.Files {
		fileNames = append(fileNames, n)
	}
	sort.Strings(fileNames)
	sample := Values{Email: "check@example.com", Groups: []string{"check"}, Now: time.Now(), Filters: map[string]string{}}
	for _, n := range fileNames {
		f := d.Files[n]
		src := sources[f.Source]
		if src == nil {
			continue // reported with the source
		}
		check := func(what string, q *Query) {
			if q == nil {
				return
			}
			if err := onlyReads(q.Text); err != nil {
				rep.Problems = append(rep.Problems, Problem{File: f.Path, Line: q.Line, Col: q.Col,
					Message: fmt.Sprintf("%s: %v", what, err)})
				return
			}
			text, args := q.bind(src.spec.dialect, sample)
			if err := src.explain(ctx, text, args); err != nil {
				rep.Problems = append(rep.Problems, Problem{File: f.Path, Line: q.Line, Col: q.Col,
					Message: fmt.Sprintf("%s: %s says: %s", what, src.spec.dialect, oneLine(err.Error()))})
			}
		}
		for _, flt := range f.Filters {
			check("filter "+flt.Name, flt.SQL)
		}
		for _, p := range f.Panels {
			check("panel "+p.ID, p.SQL)
		}
	}
	return rep, nil
}

// Starter is the commented file `gatehouse dashboards new SLUG` writes.
func Starter(slug string) string {
	title := strings.ToUpper(slug[:1]) + strings.ReplaceAll(slug[1:], "-", " ")
	return `# A Gatehouse dashboard. Every panel runs its SQL against "source" (named in
# sources.yaml in this directory) when a viewer allowed to see it asks.
# Grant it to groups like any dashboard: gatehouse grants add ` + slug + ` GROUP
# Check it: gatehouse dashboards check    Format: docs/dashboards.md
slug: ` + slug + `            # in URLs and grants: a-z, 0-9 and -
title: ` + title + `
description: What this dashboard shows.
source: main               # a name from sources.yaml

# Optional: a form above the panels; each value is a parameter (:region, :since).
# filters:
#   - name: since
#     type: date            # date | select | text
#     default: today-30     # YYYY-MM-DD, today or today-N
#   - name: region
#     type: select
#     sql: SELECT DISTINCT region FROM orders ORDER BY region

panels:
  - id: overview
    title: Overview
    chart: stat             # bar | line | stat | table
    refresh: 1m             # optional: how often an open page reloads it (and the cache lasts)
    sql: |
      SELECT count(*) AS rows FROM orders
  - id: by-region
    title: By region
    chart: bar              # bar and line: first column the label, second the value
    # require_group: leads  # optional: one more group for this panel
    # formats: {value: currency}   # number | compact | currency | percent | duration
    sql: |
      -- Parameters are bound by the database driver, never pasted into the SQL:
      -- :viewer_email, :viewer_groups (a list: use IN (:viewer_groups)), :now
      -- and each filter's name.
      SELECT region AS label, count(*) AS value FROM orders
      WHERE region IN (:viewer_groups)
      GROUP BY region ORDER BY region
`
}

// onlyReads refuses a query that does not start with SELECT, WITH or
// VALUES. The read-only transaction is not enough on its own: MariaDB runs
// DROP, TRUNCATE, ALTER, RENAME, GRANT and SET PASSWORD inside a READ ONLY
// transaction (each commits it first).
func onlyReads(text string) error {
	switch kw := firstKeyword(text); kw {
	case "SELECT", "WITH", "VALUES":
		return nil
	case "":
		return errors.New("only a SELECT can run here (every query runs in a read-only transaction)")
	default:
		return fmt.Errorf("only a SELECT can run here (every query runs in a read-only transaction), not %s", kw)
	}
}

// firstKeyword returns the query's first word, upper-cased, past comments,
// white space and opening parentheses.
func firstKeyword(q string) string {
	for {
		q = strings.TrimLeft(q, " \t\r\n(")
		switch {
		case strings.HasPrefix(q, "--"):
			if i := strings.IndexByte(q, '\n'); i >= 0 {
				q = q[i+1:]
				continue
			}
			return ""
		case strings.HasPrefix(q, "/*!"), strings.HasPrefix(q, "/*M!"), strings.HasPrefix(q, "/*m!"):
			// MySQL and MariaDB run what such a comment holds.
			return "/*!"
		case strings.HasPrefix(q, "/*"):
			if i := strings.Index(q, "*/"); i >= 0 {
				q = q[i+2:]
				continue
			}
			return ""
		}
		end := strings.IndexFunc(q, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') })
		if end < 0 {
			end = len(q)
		}
		return strings.ToUpper(q[:end])
	}
}
