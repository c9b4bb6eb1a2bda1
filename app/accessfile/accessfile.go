// Package accessfile reads and writes access files: the whole of who may
// see what in Gatehouse (groups with their description, managers and
// members, and grants) as YAML, for `gatehouse access export`, `plan` and
// `apply`. Reading keeps every value's line and column, so each problem in
// a file is reported where it is; a file with any problem is never applied.
//
// The format (docs/access-as-code.md, docs/access.schema.json):
//
//	version: 1
//	groups:
//	  - name: sales
//	    description: The sales team
//	    managers: [lee@example.com]
//	    idp_groups: [sales-team]
//	    members:
//	      - alice@example.com
//	      - {email: bob@example.com, expires: 2027-06-30}
//	grants:
//	  sales: [sales]
package accessfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/text/unicode/norm"

	"gatehouse/db"
)

// The keys a file, a group and a member may have (docs/access.schema.json
// lists the same; a test keeps them in step).
var (
	fileKeys   = []string{"version", "groups", "grants", "apps"}
	groupKeys  = []string{"name", "description", "managers", "idp_groups", "members"}
	memberKeys = []string{"email", "expires"}
	appKeys    = []string{"slug", "url", "title", "description", "user_header", "external_url"}
)

// MaxSize is the largest access file Gatehouse reads (10 MB).
const MaxSize = 10 << 20

// Version is the format version files carry as `version: 1`.
const Version = 1

// Problem is one thing wrong with a file, where it is (Line and Column are
// 1-based; Column is 0 when unknown).
type Problem struct {
	Line, Column int
	Msg          string
}

// Errors lists the problems found in a file: all of them, or the first
// maxProblems of Total.
type Errors struct {
	File     string
	Problems []Problem
	// Total counts every problem found, listed or not (0: as many as listed).
	Total int
}

// Count is how many problems the file has.
func (e *Errors) Count() int { return max(e.Total, len(e.Problems)) }

func (e *Errors) Error() string {
	if e.Count() == 1 {
		return e.Lines()[0]
	}
	return fmt.Sprintf("%s has %d problems; nothing was changed", e.File, e.Count())
}

// Lines returns one "FILE:LINE:COLUMN: problem" line per problem, in file order.
func (e *Errors) Lines() []string {
	ps := slices.Clone(e.Problems)
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	out := make([]string, len(ps))
	for i, p := range ps {
		if p.Column > 0 {
			out[i] = fmt.Sprintf("%s:%d:%d: %s", e.File, p.Line, p.Column, p.Msg)
		} else {
			out[i] = fmt.Sprintf("%s:%d: %s", e.File, p.Line, p.Msg)
		}
	}
	return out
}

// maxProblems stops a hopeless file from producing a million lines.
const maxProblems = 200

type problems struct {
	list  []Problem
	total int
}

func (p *problems) at(n *yaml.Node, format string, args ...any) {
	p.total++
	if len(p.list) < maxProblems {
		p.list = append(p.list, Problem{Line: n.Line, Column: n.Column, Msg: fmt.Sprintf(format, args...)})
	}
}

// File is a parsed access file, its values still carrying their positions.
type File struct {
	Groups []Group
	Grants []Grant
	// Apps are the file's apps; AppsListed is false when the file has no
	// `apps:` key, which leaves the database's apps as they are (files
	// written before apps existed keep working).
	Apps       []App
	AppsListed bool
	// problems are Parse's, which Resolve reports with its own.
	problems *problems
}

// Group is one group of a file.
type Group struct {
	// Name is the name as db.CleanGroupName makes it (NFC).
	Name        string
	Description string
	Managers    []Email
	IdPGroups   []string
	Members     []Member
	node        *yaml.Node
	// raw is the name as written; nameErr is CleanGroupName's refusal of
	// it, which Resolve reports unless a group is named exactly raw in the
	// database already (named before the rule: an export still applies).
	raw     string
	nameErr error
}

// App is one app of a file (checked as db.CleanApp checks it).
type App struct {
	db.StateApp
	node *yaml.Node
}

// Email is an email address in a file, lower-cased.
type Email struct {
	Email string
	node  *yaml.Node
}

// Member is a membership in a file; ExpiresAt is Unix ms (0: never).
type Member struct {
	Email
	ExpiresAt int64
	expires   *yaml.Node
}

// Grant is one dashboard → group pair of a file.
type Grant struct {
	Dashboard string
	Group     string
	dashNode  *yaml.Node
	groupNode *yaml.Node
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// Read reads a file of at most MaxSize bytes from r and parses it.
func Read(name string, r io.Reader) (*File, []byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > MaxSize {
		return nil, nil, &Errors{File: name, Problems: []Problem{{Line: 1, Msg: fmt.Sprintf("the file is larger than %d MB; access files are limited to that size", MaxSize>>20)}}}
	}
	f, err := Parse(name, data)
	return f, data, err
}

// Parse reads an access file's YAML and checks its shape: known keys only,
// the right kinds of values, valid names, emails and dates, no group,
// member, manager or grant listed twice. Whether the emails, dashboards and
// expiries make sense for a database is Resolve's job.
//
// When the YAML itself is readable, the File is returned even with
// problems (then the error is *Errors), so that Resolve can add its own
// and a user sees every problem at once.
func Parse(name string, data []byte) (*File, error) {
	fail := func(line int, msg string) error {
		return &Errors{File: name, Problems: []Problem{{Line: line, Msg: msg}}}
	}
	if len(data) > MaxSize {
		return nil, fail(1, fmt.Sprintf("the file is larger than %d MB; access files are limited to that size", MaxSize>>20))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail(1, "the file is empty; an access file starts with `version: 1`")
		}
		line := 1
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		return nil, fail(line, "not valid YAML: "+strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fail(extra.Line, "a second YAML document; an access file is one document")
	}
	p := &problems{}
	f := &File{}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if !isMap(p, root, "the file") {
		return nil, &Errors{File: name, Problems: p.list}
	}
	f.problems = p
	fields := mapping(p, root, "the file", fileKeys...)
	if v := fields["version"]; v == nil {
		p.at(root, "missing `version: %d` (it says which format the file is in)", Version)
	} else if v.Kind != yaml.ScalarNode || v.Value != strconv.Itoa(Version) {
		p.at(v, "version must be %d", Version)
	}
	groupsAt := map[string]*yaml.Node{}
	if n := fields["groups"]; n != nil && isSeq(p, n, "groups") {
		for _, gn := range n.Content {
			g := parseGroup(p, gn)
			if g.Name == "" {
				continue
			}
			key := groupKey(g.Name)
			if first := groupsAt[key]; first != nil {
				p.at(g.node, "group %q is listed twice (first at line %d)", g.Name, first.Line)
				continue
			}
			groupsAt[key] = g.node
			// Kept even with problems (which stop any apply), so Resolve
			// checks its members and grants too.
			f.Groups = append(f.Groups, g)
		}
	}
	if n := fields["grants"]; n != nil && isMap(p, n, "grants") {
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			dn, gs := n.Content[i], n.Content[i+1]
			if !isString(p, dn, "a dashboard") {
				continue
			}
			if first := seen[dn.Value]; first != nil {
				p.at(dn, "dashboard %q is listed twice under grants (first at line %d)", dn.Value, first.Line)
				continue
			}
			seen[dn.Value] = dn
			if !isSeq(p, gs, "the groups granted "+strconv.Quote(dn.Value)) {
				continue
			}
			granted := map[string]*yaml.Node{}
			for _, g := range gs.Content {
				if !isString(p, g, "a group name") {
					continue
				}
				key := groupKey(g.Value)
				if first := granted[key]; first != nil {
					p.at(g, "group %q is granted %q twice (first at line %d)", g.Value, dn.Value, first.Line)
					continue
				}
				granted[key] = g
				f.Grants = append(f.Grants, Grant{Dashboard: dn.Value, Group: g.Value, dashNode: dn, groupNode: g})
			}
		}
	}
	if n := fields["apps"]; n != nil && isSeq(p, n, "apps") {
		f.AppsListed = true
		seen := map[string]*yaml.Node{}
		for _, an := range n.Content {
			a, ok := parseApp(p, an)
			if !ok {
				continue
			}
			if first := seen[a.Slug]; first != nil {
				p.at(a.node, "app %q is listed twice (first at line %d)", a.Slug, first.Line)
				continue
			}
			seen[a.Slug] = a.node
			f.Apps = append(f.Apps, a)
		}
	}
	if len(p.list) > 0 {
		return f, &Errors{File: name, Problems: p.list, Total: p.total}
	}
	return f, nil
}

// groupKey is how a file's group names are compared: regardless of case,
// in NFC.
func groupKey(name string) string { return strings.ToLower(norm.NFC.String(name)) }

// parseApp reads one app: slug, url and title required, checked as
// `gatehouse apps add` checks them.
func parseApp(p *problems, n *yaml.Node) (App, bool) {
	a := App{node: n}
	if !isMap(p, n, "an app") {
		return a, false
	}
	fields := mapping(p, n, "an app", appKeys...)
	str := func(key string, required bool) string {
		v := fields[key]
		if v == nil {
			if required {
				p.at(n, "an app needs a %s", key)
			}
			return ""
		}
		if !isString(p, v, "an app's "+key) {
			return ""
		}
		return v.Value
	}
	raw := db.App{Slug: str("slug", true), Upstream: str("url", true), Title: str("title", true),
		Description: str("description", false), UserHeader: str("user_header", false), ExternalURL: str("external_url", false)}
	if raw.Slug == "" || raw.Upstream == "" || raw.Title == "" {
		return a, false
	}
	if sn := fields["slug"]; sn != nil {
		a.node = sn
	}
	clean, err := db.CleanApp(raw)
	if err != nil {
		p.at(a.node, "%v", err)
		return a, false
	}
	a.StateApp = db.StateApp{Slug: clean.Slug, URL: clean.Upstream, Title: clean.Title, Description: clean.Description, UserHeader: clean.UserHeader, ExternalURL: clean.ExternalURL}
	return a, true
}

// parseGroup reads one group; its Name is empty when it has none usable.
func parseGroup(p *problems, n *yaml.Node) Group {
	g := Group{node: n}
	if !isMap(p, n, "a group") {
		return g
	}
	fields := mapping(p, n, "a group", groupKeys...)
	nameNode := fields["name"]
	if nameNode == nil {
		p.at(n, "a group needs a name")
		return g
	}
	if !isString(p, nameNode, "a group name") {
		return g
	}
	g.node = nameNode
	g.raw, g.Name = nameNode.Value, nameNode.Value
	name, err := db.CleanGroupName(nameNode.Value)
	switch {
	case err != nil:
		g.nameErr = err
	case strings.TrimSpace(nameNode.Value) != nameNode.Value:
		p.at(nameNode, "group name %q has spaces around it", nameNode.Value)
	default:
		g.Name = name // in NFC
	}
	if d := fields["description"]; d != nil && isString(p, d, "a description") {
		desc, err := db.CleanName("description", d.Value, 0, db.MaxDescriptionLen)
		if err != nil {
			p.at(d, "%v", err)
		} else if desc != d.Value {
			p.at(d, "the description has spaces around it")
		}
		g.Description = d.Value
	}
	if ms := fields["managers"]; ms != nil && isSeq(p, ms, "managers") {
		seen := map[string]*yaml.Node{}
		for _, m := range ms.Content {
			if e, ok := parseEmail(p, m); ok {
				if first := seen[e.Email]; first != nil {
					p.at(m, "%s is listed twice as a manager of %q (first at line %d)", e.Email, g.Name, first.Line)
					continue
				}
				seen[e.Email] = m
				g.Managers = append(g.Managers, e)
			}
		}
	}
	if ms := fields["idp_groups"]; ms != nil && isSeq(p, ms, "idp_groups") {
		seen := map[string]*yaml.Node{}
		for _, m := range ms.Content {
			if !isString(p, m, "an IdP group") {
				continue
			}
			name, err := db.CleanIdPGroup(m.Value)
			switch {
			case err != nil:
				p.at(m, "%v", err)
			case name != m.Value:
				p.at(m, "IdP group %q has spaces around it", m.Value)
			case seen[name] != nil:
				p.at(m, "IdP group %q is listed twice for %q (first at line %d)", name, g.Name, seen[name].Line)
			default:
				seen[name] = m
				g.IdPGroups = append(g.IdPGroups, name)
			}
		}
	}
	if ms := fields["members"]; ms != nil && isSeq(p, ms, "members") {
		seen := map[string]*yaml.Node{}
		for _, m := range ms.Content {
			mem, ok := parseMember(p, m)
			if !ok {
				continue
			}
			if first := seen[mem.Email.Email]; first != nil {
				p.at(m, "%s is listed twice as a member of %q (first at line %d)", mem.Email.Email, g.Name, first.Line)
				continue
			}
			seen[mem.Email.Email] = m
			g.Members = append(g.Members, mem)
		}
	}
	return g
}

// parseMember reads `- alice@example.com` or
// `- {email: bob@example.com, expires: 2027-06-30}`.
func parseMember(p *problems, n *yaml.Node) (Member, bool) {
	if n.Kind == yaml.ScalarNode {
		e, ok := parseEmail(p, n)
		return Member{Email: e}, ok
	}
	if n.Kind != yaml.MappingNode {
		p.at(n, "a member is an email, or {email: …, expires: YYYY-MM-DD}")
		return Member{}, false
	}
	fields := mapping(p, n, "a member", memberKeys...)
	en := fields["email"]
	if en == nil {
		p.at(n, "a member needs an email")
		return Member{}, false
	}
	e, ok := parseEmail(p, en)
	m := Member{Email: e}
	if x := fields["expires"]; x != nil {
		m.expires = x
		if x.Kind != yaml.ScalarNode || x.Tag == "!!null" || x.Value == "" {
			p.at(x, "expires must be a date like 2027-06-30")
			return m, false
		}
		t, err := ParseExpiry(x.Value)
		if err != nil {
			p.at(x, "%v", err)
			return m, false
		}
		m.ExpiresAt = t
	}
	return m, ok
}

// ParseExpiry reads an expiry as access files write it: a date (the
// membership ends at the start of that day, UTC) or an RFC 3339 time.
func ParseExpiry(s string) (int64, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.UnixMilli(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixMilli(), nil
	}
	return 0, fmt.Errorf("%q is not a date like 2027-06-30", s)
}

func parseEmail(p *problems, n *yaml.Node) (Email, bool) {
	if !isString(p, n, "an email") {
		return Email{}, false
	}
	e, err := db.NormalizeEmail(n.Value)
	if err != nil {
		p.at(n, "%v", err)
		return Email{}, false
	}
	return Email{Email: e, node: n}, true
}

// mapping returns a mapping's values by key, reporting unknown and
// repeated keys.
func mapping(p *problems, n *yaml.Node, what string, keys ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Kind != yaml.ScalarNode || !slices.Contains(keys, k.Value):
			p.at(k, "unknown key %q in %s (known: %s)", k.Value, what, strings.Join(keys, ", "))
		case out[k.Value] != nil:
			p.at(k, "key %q appears twice in %s", k.Value, what)
		default:
			out[k.Value] = v
		}
	}
	return out
}

func isMap(p *problems, n *yaml.Node, what string) bool {
	if n.Kind == yaml.AliasNode {
		p.at(n, "aliases (*name) are not supported in access files")
		return false
	}
	if n.Kind != yaml.MappingNode {
		p.at(n, "%s must be a mapping (key: value lines)", what)
		return false
	}
	return true
}

func isSeq(p *problems, n *yaml.Node, what string) bool {
	if n.Kind == yaml.AliasNode {
		p.at(n, "aliases (*name) are not supported in access files")
		return false
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		n.Content = nil // `members:` with nothing: an empty list
		n.Kind = yaml.SequenceNode
		return true
	}
	if n.Kind != yaml.SequenceNode {
		p.at(n, "%s must be a list (lines starting with -)", what)
		return false
	}
	return true
}

func isString(p *problems, n *yaml.Node, what string) bool {
	if n.Kind == yaml.AliasNode {
		p.at(n, "aliases (*name) are not supported in access files")
		return false
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.at(n, "%s must be a single value", what)
		return false
	}
	return true
}

// Facts are what Resolve checks a file against.
type Facts struct {
	// Have is the database's current state.
	Have db.AccessState
	// Users are the database's users, email → id.
	Users map[string]int64
	// Dashboard reports whether this binary serves a dashboard slug.
	Dashboard func(slug string) bool
	// Now is the time expiries must come after.
	Now time.Time
}

// Resolve checks a parsed file against a database and returns the state it
// asks for, or every problem: an email with no user (a file never creates
// users), a dashboard this binary does not serve, a grant to a group not in
// the file, an expiry that is not in the future. A grant on an unknown
// dashboard, or an expiry in the past, that is already in the database
// unchanged is kept, so an exported file always applies.
func (f *File) Resolve(name string, facts Facts) (db.AccessState, error) {
	p := &problems{}
	if f.problems != nil {
		p.list, p.total = slices.Clone(f.problems.list), f.problems.total
	}
	nowMS := facts.Now.UnixMilli()
	haveExpiry := map[string]int64{}
	haveGrant := map[string]bool{}
	for _, g := range facts.Have.Groups {
		for _, m := range g.Members {
			haveExpiry[strings.ToLower(g.Name)+"\x00"+m.Email] = m.ExpiresAt
		}
	}
	for _, gr := range facts.Have.Grants {
		haveGrant[gr.Dashboard+"\x00"+strings.ToLower(gr.Group)] = true
	}
	user := func(e Email) {
		if _, ok := facts.Users[e.Email]; !ok {
			p.at(e.node, "unknown email %s: there is no such user (a file never creates users; 'gatehouse users create' does)", e.Email)
		}
	}
	haveName := map[string]bool{}
	for _, g := range facts.Have.Groups {
		haveName[g.Name] = true
	}
	var st db.AccessState
	names := map[string]string{}
	for _, g := range f.Groups {
		name := g.Name
		switch {
		case haveName[g.raw]:
			name = g.raw // as the database has it, even from before the rules of CleanGroupName
		case g.nameErr != nil:
			p.at(g.node, "%v", g.nameErr)
		}
		key := strings.ToLower(name)
		names[key], names[groupKey(name)] = name, name
		sg := db.StateGroup{Name: name, Description: g.Description, IdPGroups: g.IdPGroups}
		for _, m := range g.Managers {
			user(m)
			sg.Managers = append(sg.Managers, m.Email)
		}
		for _, m := range g.Members {
			user(m.Email)
			if m.ExpiresAt != 0 && m.ExpiresAt <= nowMS {
				if have, ok := haveExpiry[key+"\x00"+m.Email.Email]; !ok || have != m.ExpiresAt {
					p.at(m.expires, "expiry %s is not in the future", m.expires.Value)
				}
			}
			sg.Members = append(sg.Members, db.StateMember{Email: m.Email.Email, ExpiresAt: m.ExpiresAt})
		}
		st.Groups = append(st.Groups, sg)
	}
	fileApps := map[string]bool{}
	if f.AppsListed {
		haveApp := map[string]bool{}
		for _, a := range facts.Have.Apps {
			haveApp[a.Slug] = true
		}
		for _, a := range f.Apps {
			if facts.Dashboard(a.Slug) && !haveApp[a.Slug] {
				p.at(a.node, "app %q: that slug is already a dashboard's", a.Slug)
				continue
			}
			fileApps[a.Slug] = true
			st.Apps = append(st.Apps, a.StateApp)
		}
	} else {
		st.Apps = slices.Clone(facts.Have.Apps)
	}
	unknown := map[string]bool{}
	for _, gr := range f.Grants {
		key := strings.ToLower(gr.Group)
		canonical, ok := names[key]
		if !ok {
			canonical, ok = names[groupKey(gr.Group)]
		}
		if ok {
			key = strings.ToLower(canonical)
		}
		if !ok {
			p.at(gr.groupNode, "grant of %q to group %q, which is not in the file's groups", gr.Dashboard, gr.Group)
		}
		if !facts.Dashboard(gr.Dashboard) && !fileApps[gr.Dashboard] && !haveGrant[gr.Dashboard+"\x00"+key] {
			if !unknown[gr.Dashboard] { // said once, at its key
				unknown[gr.Dashboard] = true
				p.at(gr.dashNode, "unknown dashboard %q: this gatehouse does not serve it ('gatehouse dashboards list' shows them)", gr.Dashboard)
			}
			ok = false
		}
		if !ok {
			continue
		}
		st.Grants = append(st.Grants, db.StateGrant{Dashboard: gr.Dashboard, Group: canonical})
	}
	if len(p.list) > 0 {
		return st, &Errors{File: name, Problems: p.list, Total: p.total}
	}
	st.Normalize()
	return st, nil
}

// Export writes st as an access file, in a stable order (groups by name,
// members and managers by email, grants by dashboard and group), so a diff
// of two exports shows only what changed, one line per change.
func Export(st db.AccessState, header string) ([]byte, error) {
	st.Normalize()
	// Strings are tagged so the encoder quotes one that would read back as
	// something else (a group named "true" or "2024"). One holding a rune
	// the text output escapes (db.UnsafeRune) is double-quoted, where the
	// encoder escapes C1 controls and escapeUnsafeYAML the bidi controls.
	str := func(s string) *yaml.Node {
		n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
		if strings.ContainsFunc(s, db.UnsafeRune) {
			n.Style = yaml.DoubleQuotedStyle
		}
		return n
	}
	kv := func(m *yaml.Node, k string, v *yaml.Node) { m.Content = append(m.Content, str(k), v) }
	root := &yaml.Node{Kind: yaml.MappingNode, HeadComment: header}
	kv(root, "version", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(Version)})
	groups := &yaml.Node{Kind: yaml.SequenceNode}
	for _, g := range st.Groups {
		gn := &yaml.Node{Kind: yaml.MappingNode}
		kv(gn, "name", str(g.Name))
		if g.Description != "" {
			kv(gn, "description", str(g.Description))
		}
		if len(g.Managers) > 0 {
			ms := &yaml.Node{Kind: yaml.SequenceNode}
			for _, m := range g.Managers {
				ms.Content = append(ms.Content, str(m))
			}
			kv(gn, "managers", ms)
		}
		if len(g.IdPGroups) > 0 {
			ms := &yaml.Node{Kind: yaml.SequenceNode}
			for _, m := range g.IdPGroups {
				ms.Content = append(ms.Content, str(m))
			}
			kv(gn, "idp_groups", ms)
		}
		if len(g.Members) > 0 {
			ms := &yaml.Node{Kind: yaml.SequenceNode}
			for _, m := range g.Members {
				if m.ExpiresAt == 0 {
					ms.Content = append(ms.Content, str(m.Email))
					continue
				}
				mn := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
				kv(mn, "email", str(m.Email))
				kv(mn, "expires", &yaml.Node{Kind: yaml.ScalarNode, Value: db.FormatExpiry(m.ExpiresAt)}) // a plain date
				ms.Content = append(ms.Content, mn)
			}
			kv(gn, "members", ms)
		}
		groups.Content = append(groups.Content, gn)
	}
	kv(root, "groups", groups)
	grants := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i < len(st.Grants); {
		d := st.Grants[i].Dashboard
		gs := &yaml.Node{Kind: yaml.SequenceNode}
		for ; i < len(st.Grants) && st.Grants[i].Dashboard == d; i++ {
			gs.Content = append(gs.Content, str(st.Grants[i].Group))
		}
		kv(grants, d, gs)
	}
	kv(root, "grants", grants)
	if len(st.Apps) > 0 {
		apps := &yaml.Node{Kind: yaml.SequenceNode}
		for _, a := range st.Apps {
			an := &yaml.Node{Kind: yaml.MappingNode}
			kv(an, "slug", str(a.Slug))
			kv(an, "url", str(a.URL))
			kv(an, "title", str(a.Title))
			if a.Description != "" {
				kv(an, "description", str(a.Description))
			}
			if a.UserHeader != "" {
				kv(an, "user_header", str(a.UserHeader))
			}
			if a.ExternalURL != "" {
				kv(an, "external_url", str(a.ExternalURL))
			}
			apps.Content = append(apps.Content, an)
		}
		kv(root, "apps", apps)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return db.EscapeUnsafe(buf.Bytes()), nil
}
