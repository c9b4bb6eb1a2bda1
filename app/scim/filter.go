package scim

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	filter "github.com/scim2/filter-parser/v2"

	"gatehouse/db"
)

// dottedValuePath is a filter of the PATCH-path form Entra sends,
// `emails[type eq "work"].value eq "x"`, which RFC 7644's filter grammar
// writes `emails[type eq "work" and value eq "x"]`.
var dottedValuePath = regexp.MustCompile(`^\s*([A-Za-z][\w:.-]*)\[([^\]]+)\]\.([A-Za-z]\w*)\s+([A-Za-z]{2})\b(.*)$`)

// parseFilter parses a list's filter ("" is none).
func parseFilter(raw string) (filter.Expression, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	if len(raw) > maxFilterLen {
		return nil, badRequest("invalidFilter", "The filter is longer than %d characters.", maxFilterLen)
	}
	if m := dottedValuePath.FindStringSubmatch(raw); m != nil && !strings.Contains(strings.ToLower(m[2]), " or ") {
		raw = m[1] + "[" + m[2] + " and " + m[3] + " " + m[4] + m[5] + "]"
	}
	e, err := filter.ParseFilter([]byte(raw))
	if err != nil {
		return nil, badRequest("invalidFilter", "The filter %q is not a SCIM filter (RFC 7644 §3.4.2.2).", raw)
	}
	return e, nil
}

// caseExact lists the attributes whose string values compare exactly;
// every other string compares ignoring case (RFC 7643 defaults).
var caseExact = map[string]bool{"id": true, "externalid": true, "$ref": true}

// match reports whether a resource (or a multi-valued attribute's
// element) satisfies e.
func match(e filter.Expression, res map[string]any) bool {
	switch e := e.(type) {
	case *filter.LogicalExpression:
		if e.Operator == filter.AND {
			return match(e.Left, res) && match(e.Right, res)
		}
		return match(e.Left, res) || match(e.Right, res)
	case *filter.NotExpression:
		return !match(e.Expression, res)
	case *filter.ValuePath:
		v, ok := lookup(res, e.AttributePath.AttributeName)
		if !ok {
			return false
		}
		for _, el := range elements(v) {
			if em, ok := el.(map[string]any); ok && match(e.ValueFilter, em) {
				if sub := e.AttributePath.SubAttributeName(); sub != "" {
					if _, ok := lookup(em, sub); !ok {
						continue
					}
				}
				return true
			}
		}
		return false
	case *filter.AttributeExpression:
		name := e.AttributePath.AttributeName
		v, ok := lookup(res, name)
		if !ok {
			return e.Operator == filter.NE
		}
		values := elements(v)
		attr := name
		if sub := e.AttributePath.SubAttributeName(); sub != "" {
			attr = sub
			var subs []any
			for _, el := range values {
				if em, ok := el.(map[string]any); ok {
					if sv, ok := lookup(em, sub); ok {
						subs = append(subs, sv)
					}
				}
			}
			values = subs
		} else if len(values) > 0 {
			// A multi-valued attribute of objects compares its "value"s.
			if _, ok := values[0].(map[string]any); ok {
				var subs []any
				for _, el := range values {
					if sv, ok := lookup(el.(map[string]any), "value"); ok {
						subs = append(subs, sv)
					}
				}
				values, attr = subs, "value"
			}
		}
		if e.Operator == filter.PR {
			for _, v := range values {
				if v != nil && v != "" {
					return true
				}
			}
			return false
		}
		if e.Operator == filter.NE {
			for _, v := range values {
				if compare(filter.EQ, attr, v, e.CompareValue) {
					return false
				}
			}
			return true
		}
		for _, v := range values {
			if compare(e.Operator, attr, v, e.CompareValue) {
				return true
			}
		}
	}
	return false
}

func elements(v any) []any {
	if list, ok := v.([]any); ok {
		return list
	}
	return []any{v}
}

// compare applies op to an attribute's value and a filter's value.
func compare(op filter.CompareOperator, attr string, have, want any) bool {
	switch h := have.(type) {
	case string:
		w, ok := want.(string)
		if !ok {
			// Some IdPs quote numbers and booleans the other way round.
			w = toString(want)
		}
		if !caseExact[strings.ToLower(attr)] {
			h, w = strings.ToLower(h), strings.ToLower(w)
		}
		switch op {
		case filter.EQ:
			return h == w
		case filter.CO:
			return strings.Contains(h, w)
		case filter.SW:
			return strings.HasPrefix(h, w)
		case filter.EW:
			return strings.HasSuffix(h, w)
		case filter.GT:
			return h > w
		case filter.GE:
			return h >= w
		case filter.LT:
			return h < w
		case filter.LE:
			return h <= w
		}
	case bool:
		w, ok := boolean(want)
		return ok && op == filter.EQ && h == w
	}
	return false
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case int:
		return strconv.Itoa(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case json.Number:
		return v.String()
	}
	return ""
}

// eqTerms returns the `attr eq "value"` terms of e when e is nothing but
// such terms joined by and (attribute names lower-cased, sub-attributes
// dotted), and whether it is.
func eqTerms(e filter.Expression) (map[string]string, bool) {
	terms := map[string]string{}
	var walk func(filter.Expression) bool
	walk = func(e filter.Expression) bool {
		switch e := e.(type) {
		case *filter.LogicalExpression:
			return e.Operator == filter.AND && walk(e.Left) && walk(e.Right)
		case *filter.AttributeExpression:
			s, ok := e.CompareValue.(string)
			if e.Operator != filter.EQ || !ok || e.AttributePath.URIPrefix != nil && !isCoreURI(e.AttributePath.URI()) {
				return false
			}
			key := strings.ToLower(e.AttributePath.AttributeName)
			if sub := e.AttributePath.SubAttributeName(); sub != "" {
				key += "." + strings.ToLower(sub)
			}
			if _, dup := terms[key]; dup {
				return false
			}
			terms[key] = s
			return true
		case *filter.ValuePath:
			// emails[type eq "work" and value eq "x"] and members[value eq "7"]
			inner, ok := eqTerms(e.ValueFilter)
			if !ok {
				return false
			}
			name := strings.ToLower(e.AttributePath.AttributeName)
			for k, v := range inner {
				terms[name+"."+k] = v // a "type" term leaves the query inexact
			}
			return true
		}
		return false
	}
	if !walk(e) {
		return nil, false
	}
	return terms, true
}

func isCoreURI(uri string) bool { return uri == schemaUser || uri == schemaGroup }

// narrowUsers turns a filter into a store query. exact says the query
// alone answers the filter; otherwise it only narrows what match must
// still check (the zero query: every user).
func narrowUsers(f filter.Expression) (q db.SCIMUserQuery, exact bool) {
	if f == nil {
		return q, true
	}
	terms, ok := eqTerms(f)
	if !ok {
		return q, false
	}
	exact = true
	for k, v := range terms {
		switch k {
		case "id":
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil || id <= 0 {
				id = -1 // matches nothing
			}
			q.ID = id
		case "username":
			q.UserName = v
		case "externalid":
			q.ExternalID = v
		case "emails", "emails.value":
			q.Email = v
		default:
			exact = false
		}
	}
	if !exact {
		// Keep only what narrows safely: every term above is still an
		// and-ed condition of the filter.
		return q, false
	}
	return q, true
}

// narrowGroups is narrowUsers for groups.
func narrowGroups(f filter.Expression) (q db.SCIMGroupQuery, exact bool) {
	if f == nil {
		return q, true
	}
	terms, ok := eqTerms(f)
	if !ok {
		return q, false
	}
	exact = true
	for k, v := range terms {
		switch k {
		case "id":
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil || id <= 0 {
				id = -1
			}
			q.ID = id
		case "displayname":
			q.DisplayName = v
		case "externalid":
			q.ExternalID = v
		case "members", "members.value":
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil || id <= 0 {
				id = -1
			}
			q.MemberID = id
		default:
			exact = false
		}
	}
	return q, exact
}

// page is a list's startIndex (1-based) and count.
type page struct{ start, count int }

// listQuery reads what a list request asks for: the page, the attributes
// to answer with, and the filter (nil for none).
func listQuery(r *http.Request) (page, projector, filter.Expression, error) {
	pg, err := parsePage(r)
	if err != nil {
		return page{}, projector{}, nil, err
	}
	proj, err := projection(r)
	if err != nil {
		return page{}, projector{}, nil, err
	}
	f, err := parseFilter(r.URL.Query().Get("filter"))
	return pg, proj, f, err
}

func parsePage(r *http.Request) (page, error) {
	p := page{start: 1, count: defaultListCount}
	q := r.URL.Query()
	if s := q.Get("startIndex"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return p, badRequest("invalidValue", "startIndex must be a whole number.")
		}
		p.start = max(n, 1) // RFC 7644 §3.4.2.4: below 1 is 1
	}
	if s := q.Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return p, badRequest("invalidValue", "count must be a whole number.")
		}
		p.count = min(max(n, 0), maxCount) // negative is 0
	}
	return p, nil
}

func pageOf(all []map[string]any, p page) []map[string]any {
	from := p.start - 1
	if from >= len(all) || p.count == 0 {
		return nil
	}
	return all[from:min(len(all), from+p.count)]
}

// writeList answers a ListResponse.
func writeList(w http.ResponseWriter, total int, p page, resources []map[string]any, proj projector) {
	list := make([]any, 0, len(resources))
	for _, res := range resources {
		list = append(list, proj.apply(res))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":      []any{schemaList},
		"totalResults": total,
		"startIndex":   p.start,
		"itemsPerPage": len(list),
		"Resources":    list,
	})
}

// projector applies attributes= or excludedAttributes= to a resource.
type projector struct {
	include map[string]map[string]bool // attribute → sub-attributes (nil: the whole attribute)
	exclude map[string]map[string]bool
}

// projection reads attributes and excludedAttributes (names may carry the
// resource's schema URN).
func projection(r *http.Request) (projector, error) {
	var p projector
	read := func(param string) (map[string]map[string]bool, error) {
		raw := r.URL.Query().Get(param)
		if strings.TrimSpace(raw) == "" {
			return nil, nil
		}
		names := strings.Split(raw, ",")
		if len(names) > maxAttributeNames {
			return nil, badRequest("invalidValue", "%s names too many attributes.", param)
		}
		out := map[string]map[string]bool{}
		for _, n := range names {
			n = strings.ToLower(strings.TrimSpace(n))
			for _, urn := range []string{schemaUser, schemaGroup} {
				n = strings.TrimPrefix(n, strings.ToLower(urn)+":")
			}
			attr, sub, dotted := strings.Cut(n, ".")
			if attr == "" {
				return nil, badRequest("invalidValue", "%s has an empty attribute name.", param)
			}
			if dotted {
				if out[attr] == nil {
					if _, whole := out[attr]; whole {
						continue
					}
					out[attr] = map[string]bool{}
				}
				out[attr][sub] = true
			} else {
				out[attr] = nil
			}
		}
		return out, nil
	}
	var err error
	if p.include, err = read("attributes"); err != nil {
		return p, err
	}
	if p.exclude, err = read("excludedAttributes"); err != nil {
		return p, err
	}
	return p, nil
}

// wants reports whether the projection keeps attr (lower case) at all.
func (p projector) wants(attr string) bool {
	if p.include != nil {
		_, ok := p.include[attr]
		return ok
	}
	if p.exclude != nil {
		subs, ok := p.exclude[attr]
		return !ok || subs != nil
	}
	return true
}

// always are returned whatever attributes says (RFC 7643 §7: returned "always").
var always = map[string]bool{"id": true, "schemas": true, "meta": true}

func (p projector) apply(res map[string]any) map[string]any {
	if p.include == nil && p.exclude == nil {
		return res
	}
	out := map[string]any{}
	for k, v := range res {
		lk := strings.ToLower(k)
		if always[lk] {
			out[k] = v
			continue
		}
		if p.include != nil {
			subs, ok := p.include[lk]
			if !ok {
				continue
			}
			v = pick(v, subs, true)
		}
		if p.exclude != nil {
			if subs, ok := p.exclude[lk]; ok {
				if subs == nil {
					continue
				}
				v = pick(v, subs, false)
			}
		}
		out[k] = v
	}
	return out
}

// pick keeps (keep) or drops the sub-attributes subs of a complex or
// multi-valued attribute; nil subs keep it whole.
func pick(v any, subs map[string]bool, keep bool) any {
	if subs == nil {
		return v
	}
	one := func(m map[string]any) map[string]any {
		out := map[string]any{}
		for k, sv := range m {
			if subs[strings.ToLower(k)] == keep {
				out[k] = sv
			}
		}
		return out
	}
	switch v := v.(type) {
	case map[string]any:
		return one(v)
	case []any:
		out := make([]any, 0, len(v))
		for _, el := range v {
			if m, ok := el.(map[string]any); ok {
				out = append(out, one(m))
			}
		}
		return out
	}
	return v
}
