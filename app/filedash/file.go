package filedash

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a file, at a place in it.
type Problem struct {
	File      string // the file's path as given
	Line, Col int    // 1-based; 0 when the problem is the whole file
	Message   string
}

// String formats the problem as FILE:LINE:COL: message (1:1 for a
// problem with the whole file), as compilers do, so editors jump to it.
func (p Problem) String() string {
	line, col := max(p.Line, 1), max(p.Col, 1)
	return p.File + ":" + strconv.Itoa(line) + ":" + strconv.Itoa(col) + ": " + p.Message
}

// Chart kinds a panel may draw.
const (
	ChartBar   = "bar"
	ChartLine  = "line"
	ChartStat  = "stat"
	ChartTable = "table"
)

// Filter kinds.
const (
	FilterDate   = "date"
	FilterSelect = "select"
	FilterText   = "text"
)

// Formats a column may be shown in.
var formats = []string{"number", "compact", "currency", "percent", "duration"}

// The keys a dashboard file, a panel and a filter may have
// (docs/dashboards.schema.json lists the same; a test keeps them equal).
var (
	fileKeys   = []string{"slug", "title", "description", "source", "panels", "filters"}
	panelKeys  = []string{"id", "title", "chart", "sql", "refresh", "require_group", "wide", "timeout", "row_limit", "formats"}
	filterKeys = []string{"name", "label", "type", "default", "options", "sql"}
)

// Parameters every query may use besides the dashboard's filters.
const (
	ParamViewerEmail  = "viewer_email"
	ParamViewerGroups = "viewer_groups"
	ParamNow          = "now"
)

var (
	slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
)

// File is one dashboard file, parsed and checked.
type File struct {
	Path        string // as read
	Name        string // the file's base name
	Slug        string
	Title       string
	Description string
	Source      string
	SourcePos   Problem // where `source:` is, for errors about it
	Panels      []*PanelSpec
	Filters     []*FilterSpec
	// Version is a hash of the file's bytes.
	Version string
}

// PanelSpec is one panel of a file.
type PanelSpec struct {
	ID           string
	Title        string
	Chart        string
	SQL          *Query
	Refresh      time.Duration
	RequireGroup string
	Wide         bool
	Timeout      time.Duration // 0: the server's default
	RowLimit     int           // 0: the server's default
	// Formats maps a column name to its format.
	Formats map[string]string
	Pos     Problem // where the panel's sql is
}

// FilterSpec is one filter of a file: a form field whose value every
// query may use as :NAME.
type FilterSpec struct {
	Name    string
	Label   string
	Type    string
	Default string
	Options []string
	SQL     *Query // a select's options, when not listed
	Pos     Problem
}

// parseDashboard parses a dashboard file's bytes.
func parseDashboard(path, name string, data []byte) (*File, []Problem) {
	sum := sha256.Sum256(data)
	f := &File{Path: path, Name: name, Version: hex.EncodeToString(sum[:8])}
	p := &parser{file: path}
	root := p.document(data)
	if root == nil {
		return nil, p.problems
	}
	m := p.mapping(root, fileKeys...)
	if m == nil {
		return nil, p.problems
	}
	f.Slug = p.str(root, m, "slug", true)
	if f.Slug != "" && !slugRE.MatchString(f.Slug) {
		p.at(m["slug"], "slug %q must be 1-64 of a-z, 0-9 and -, starting with a letter or digit", f.Slug)
	}
	f.Title = p.str(root, m, "title", true)
	f.Description = p.str(root, m, "description", false)
	f.Source = p.str(root, m, "source", true)
	if n := m["source"]; n != nil {
		f.SourcePos = Problem{File: path, Line: n.Line, Col: n.Column}
	}
	filterNames := map[string]bool{}
	if fl := m["filters"]; fl != nil {
		for _, fn := range p.list(fl) {
			if flt := p.filter(fn); flt != nil {
				if filterNames[flt.Name] {
					p.at(fn, "filter %q is listed twice", flt.Name)
				}
				filterNames[flt.Name] = true
				f.Filters = append(f.Filters, flt)
			}
		}
	}
	panels := m["panels"]
	if panels == nil {
		p.at(root, "panels: a dashboard needs at least one panel")
	} else {
		seen := map[string]bool{}
		items := p.list(panels)
		if len(items) == 0 && panels.Kind == yaml.SequenceNode {
			p.at(panels, "panels: a dashboard needs at least one panel")
		}
		for _, pn := range items {
			if ps := p.panel(pn); ps != nil {
				if seen[ps.ID] {
					p.at(pn, "panel id %q is used twice", ps.ID)
				}
				seen[ps.ID] = true
				f.Panels = append(f.Panels, ps)
			}
		}
	}
	// Every parameter a query names must exist.
	known := func(q *Query) {
		if q == nil {
			return
		}
		for _, n := range q.Params() {
			if n != ParamViewerEmail && n != ParamViewerGroups && n != ParamNow && !filterNames[n] {
				p.problems = append(p.problems, Problem{File: path, Line: q.Line, Col: q.Col,
					Message: fmt.Sprintf("unknown parameter :%s (use :viewer_email, :viewer_groups, :now or a filter's name)", n)})
			}
		}
	}
	for _, ps := range f.Panels {
		known(ps.SQL)
	}
	for _, flt := range f.Filters {
		known(flt.SQL)
	}
	if len(p.problems) > 0 {
		return nil, p.problems
	}
	return f, nil
}

func (p *parser) panel(n *yaml.Node) *PanelSpec {
	m := p.mapping(n, panelKeys...)
	if m == nil {
		return nil
	}
	before := len(p.problems)
	ps := &PanelSpec{ID: p.str(n, m, "id", true), Title: p.str(n, m, "title", true), Chart: p.str(n, m, "chart", true),
		RequireGroup: p.str(n, m, "require_group", false)}
	if ps.ID != "" && !slugRE.MatchString(ps.ID) {
		p.at(m["id"], "panel id %q must be 1-64 of a-z, 0-9 and -", ps.ID)
	}
	switch ps.Chart {
	case "", ChartBar, ChartLine, ChartStat, ChartTable:
	default:
		p.at(m["chart"], "chart %q must be one of bar, line, stat, table", ps.Chart)
	}
	ps.Wide = ps.Chart == ChartTable || ps.Chart == ChartLine
	if w := m["wide"]; w != nil {
		switch w.Value {
		case "true":
			ps.Wide = true
		case "false":
			ps.Wide = false
		default:
			p.at(w, "wide must be true or false")
		}
	}
	ps.Refresh = p.duration(m["refresh"], "refresh", time.Second, 24*time.Hour)
	ps.Timeout = p.duration(m["timeout"], "timeout", 10*time.Millisecond, 5*time.Minute)
	if rl := m["row_limit"]; rl != nil {
		n, err := strconv.Atoi(rl.Value)
		if err != nil || n < 1 || n > 1_000_000 || rl.Kind != yaml.ScalarNode {
			p.at(rl, "row_limit must be a whole number from 1 to 1000000")
		}
		ps.RowLimit = n
	}
	if fm := m["formats"]; fm != nil {
		if fm.Kind != yaml.MappingNode {
			p.at(fm, "formats must map column names to one of %s", strings.Join(formats, ", "))
		} else {
			ps.Formats = map[string]string{}
			for i := 0; i+1 < len(fm.Content); i += 2 {
				k, v := fm.Content[i], fm.Content[i+1]
				if !validFormat(v.Value) || v.Kind != yaml.ScalarNode {
					p.at(v, "format %q of column %q must be one of %s", v.Value, k.Value, strings.Join(formats, ", "))
				}
				ps.Formats[k.Value] = v.Value
			}
		}
	}
	ps.SQL = p.sql(n, m, "sql", true)
	if len(p.problems) > before {
		return nil
	}
	return ps
}

func validFormat(s string) bool {
	for _, f := range formats {
		if s == f {
			return true
		}
	}
	return false
}

func (p *parser) filter(n *yaml.Node) *FilterSpec {
	m := p.mapping(n, filterKeys...)
	if m == nil {
		return nil
	}
	before := len(p.problems)
	f := &FilterSpec{Name: p.str(n, m, "name", true), Label: p.str(n, m, "label", false),
		Type: p.str(n, m, "type", true), Default: p.str(n, m, "default", false),
		Pos: Problem{File: p.file, Line: n.Line, Col: n.Column}}
	if f.Name != "" && !nameRE.MatchString(f.Name) {
		p.at(m["name"], "filter name %q must be 1-40 of a-z, 0-9 and _, starting with a letter", f.Name)
	}
	if f.Name == ParamViewerEmail || f.Name == ParamViewerGroups || f.Name == ParamNow {
		p.at(m["name"], "filter name %q is taken by a built-in parameter", f.Name)
	}
	if f.Label == "" {
		f.Label = f.Name
	}
	switch f.Type {
	case FilterDate:
		if f.Default != "" {
			if _, err := dateValue(f.Default, time.Now()); err != nil {
				p.at(m["default"], "default %q must be a date YYYY-MM-DD, today, or today-N (days)", f.Default)
			}
		}
	case FilterText:
	case FilterSelect:
		if o := m["options"]; o != nil {
			for _, on := range p.list(o) {
				if on.Kind != yaml.ScalarNode {
					p.at(on, "each option must be a plain value")
					continue
				}
				f.Options = append(f.Options, on.Value)
			}
		}
		f.SQL = p.sql(n, m, "sql", false)
		if (f.SQL == nil) == (m["options"] == nil) {
			p.at(n, "a select filter needs either options: or sql:, not both")
		}
	case "":
	default:
		p.at(m["type"], "filter type %q must be one of date, select, text", f.Type)
	}
	if f.Type != FilterSelect && (m["options"] != nil || m["sql"] != nil) {
		p.at(n, "only a select filter has options or sql")
	}
	if len(p.problems) > before {
		return nil
	}
	return f
}

// parser collects problems while walking a YAML document.
type parser struct {
	file     string
	lines    []string
	problems []Problem
}

func (p *parser) at(n *yaml.Node, format string, args ...any) {
	pr := Problem{File: p.file, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		pr.Line, pr.Col = n.Line, n.Column
	}
	p.problems = append(p.problems, pr)
}

// document parses data to its root node, or records why it cannot.
func (p *parser) document(data []byte) *yaml.Node {
	p.lines = strings.Split(string(data), "\n")
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		p.problems = append(p.problems, yamlProblem(p.file, err))
		return nil
	}
	if len(doc.Content) == 0 {
		p.problems = append(p.problems, Problem{File: p.file, Line: 1, Col: 1, Message: "the file is empty"})
		return nil
	}
	return doc.Content[0]
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlProblem turns a YAML syntax error into a Problem at its line.
func yamlProblem(file string, err error) Problem {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{File: file, Line: line, Col: 1, Message: "YAML: " + m[2]}
	}
	return Problem{File: file, Line: 1, Col: 1, Message: "YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// mapping returns n's keys (each mapped to its value node), recording
// unknown and repeated keys; nil when n is not a mapping.
func (p *parser) mapping(n *yaml.Node, known ...string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.at(n, "expected a mapping of %s", strings.Join(known, ", "))
		return nil
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ok := false
		for _, name := range known {
			ok = ok || k.Value == name
		}
		switch {
		case !ok:
			p.at(k, "unknown key %q (expected one of %s)", k.Value, strings.Join(known, ", "))
		case out[k.Value] != nil:
			p.at(k, "key %q is repeated", k.Value)
		default:
			out[k.Value] = v
		}
	}
	return out
}

// list returns a sequence's items, recording a problem when n is not one.
func (p *parser) list(n *yaml.Node) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		p.at(n, "expected a list")
		return nil
	}
	return n.Content
}

// str returns key's plain value from m (a mapping at n).
func (p *parser) str(n *yaml.Node, m map[string]*yaml.Node, key string, required bool) string {
	v := m[key]
	if v == nil {
		if required {
			p.at(n, "%s is required", key)
		}
		return ""
	}
	if v.Kind != yaml.ScalarNode {
		p.at(v, "%s must be a plain value", key)
		return ""
	}
	if required && strings.TrimSpace(v.Value) == "" {
		p.at(v, "%s must not be empty", key)
	}
	return v.Value
}

func (p *parser) duration(n *yaml.Node, key string, lo, hi time.Duration) time.Duration {
	if n == nil {
		return 0
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode || d < lo || d > hi {
		p.at(n, "%s must be a duration such as 30s or 5m, from %s to %s", key, lo, hi)
		return 0
	}
	return d
}

// sql parses key's SQL with its named parameters.
func (p *parser) sql(n *yaml.Node, m map[string]*yaml.Node, key string, required bool) *Query {
	text := p.str(n, m, key, required)
	if text == "" {
		return nil
	}
	v := m[key]
	line, col := v.Line, v.Column
	if v.Style == yaml.LiteralStyle || v.Style == yaml.FoldedStyle {
		line++ // the text starts on the line after `|`, indented
		if line-1 < len(p.lines) {
			l := p.lines[line-1]
			col = len(l) - len(strings.TrimLeft(l, " ")) + 1
		}
	}
	q, err := parseQuery(text)
	if err != nil {
		p.problems = append(p.problems, Problem{File: p.file, Line: line, Col: col, Message: err.Error()})
		return nil
	}
	q.Line, q.Col = line, col
	return q
}
