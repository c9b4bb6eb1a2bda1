package scim

import (
	"net/http"
	"slices"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// patchOp is one operation of a PATCH request (RFC 7644 §3.5.2).
type patchOp struct {
	op    string // add, replace or remove: IdPs send "Replace", "Add" (Entra)
	path  *filter.Path
	value any
}

// readPatch reads and checks a PatchOp body.
func readPatch(r *http.Request) ([]patchOp, error) {
	body, err := readJSON(r)
	if err != nil {
		return nil, err
	}
	schemas, _ := lookup(body, "schemas")
	list, _ := schemas.([]any)
	if !slices.ContainsFunc(list, func(v any) bool { s, _ := v.(string); return strings.EqualFold(s, schemaPatch) }) {
		return nil, badRequest("invalidSyntax", "A PATCH body's schemas must name %s.", schemaPatch)
	}
	raw, _ := lookup(body, "Operations")
	opsIn, ok := raw.([]any)
	if !ok || len(opsIn) == 0 {
		return nil, badRequest("invalidSyntax", "A PATCH body needs Operations: a list of one or more operations.")
	}
	if len(opsIn) > maxOperations {
		return nil, badRequest("invalidValue", "A PATCH may hold at most %d operations.", maxOperations)
	}
	ops := make([]patchOp, 0, len(opsIn))
	for i, o := range opsIn {
		m, ok := o.(map[string]any)
		if !ok {
			return nil, badRequest("invalidSyntax", "Operation %d is not an object.", i+1)
		}
		opName, _ := str(m, "op")
		op := patchOp{op: strings.ToLower(strings.TrimSpace(opName))}
		if op.op != "add" && op.op != "replace" && op.op != "remove" {
			return nil, badRequest("invalidValue", "Operation %d: op must be add, replace or remove, not %q.", i+1, opName)
		}
		if v, present := lookup(m, "path"); present && v != nil {
			s, ok := v.(string)
			if !ok {
				return nil, badRequest("invalidPath", "Operation %d: path must be a string.", i+1)
			}
			if strings.TrimSpace(s) != "" {
				p, err := filter.ParsePath([]byte(strings.TrimSpace(s)))
				if err != nil {
					return nil, badRequest("invalidPath", "Operation %d: %q is not a SCIM attribute path.", i+1, s)
				}
				op.path = &p
			}
		}
		v, hasValue := lookup(m, "value")
		op.value = v
		switch {
		case op.op == "remove" && op.path == nil:
			return nil, badRequest("noTarget", "Operation %d: remove needs a path.", i+1)
		case op.op != "remove" && (!hasValue || v == nil):
			return nil, badRequest("invalidValue", "Operation %d: %s needs a value.", i+1, op.op)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// multiValued lists the multi-valued attributes of User and Group.
var multiValued = map[string]bool{"emails": true, "phonenumbers": true, "addresses": true, "ims": true, "photos": true,
	"groups": true, "entitlements": true, "roles": true, "x509certificates": true, "members": true}

// applyPatch applies ops, in order, to a resource as SCIM shows it. The
// caller then reads back what Gatehouse keeps, so operations on
// attributes it does not keep succeed and change nothing.
func applyPatch(res map[string]any, ops []patchOp) error {
	for i, o := range ops {
		if o.path != nil {
			if err := applyPath(res, o.op, o.path, o.value); err != nil {
				return withOp(err, i)
			}
			continue
		}
		m, ok := o.value.(map[string]any)
		if !ok {
			return badRequest("invalidValue", "Operation %d: without a path, the value must be an object of attributes.", i+1)
		}
		if err := applyPathless(res, o.op, m); err != nil {
			return withOp(err, i)
		}
	}
	return nil
}

func withOp(err error, i int) error {
	if e, ok := err.(*Error); ok {
		return &Error{Status: e.Status, SCIMType: e.SCIMType, Detail: "Operation " + itoa(i+1) + ": " + e.Detail}
	}
	return err
}

// applyPathless applies a path-less add or replace: each key of m is an
// attribute path (Entra sends dotted ones such as "name.givenName"), or a
// schema URN holding attributes of that schema.
func applyPathless(res map[string]any, op string, m map[string]any) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := m[k]
		if isCoreURI(k) {
			if inner, ok := v.(map[string]any); ok {
				if err := applyPathless(res, op, inner); err != nil {
					return err
				}
				continue
			}
		}
		if strings.HasPrefix(strings.ToLower(k), "urn:") {
			if inner, ok := v.(map[string]any); ok {
				ext, _ := res[k].(map[string]any)
				if ext == nil {
					ext = map[string]any{}
				}
				for ik, iv := range inner {
					ext[ik] = iv
				}
				res[k] = ext
				continue
			}
		}
		p, err := filter.ParsePath([]byte(k))
		if err != nil {
			return badRequest("invalidPath", "%q is not a SCIM attribute path.", k)
		}
		if err := applyPath(res, op, &p, v); err != nil {
			return err
		}
	}
	return nil
}

// applyPath applies one operation at a path.
func applyPath(res map[string]any, op string, p *filter.Path, value any) error {
	container := res
	if uri := p.AttributePath.URI(); uri != "" && !isCoreURI(uri) {
		ext, _ := res[uri].(map[string]any)
		if ext == nil {
			ext = map[string]any{}
			res[uri] = ext
		}
		container = ext
	}
	attr := p.AttributePath.AttributeName
	key := keyOf(container, attr)
	sub := p.AttributePath.SubAttributeName()
	if p.SubAttribute != nil {
		sub = *p.SubAttribute
	}
	multi := multiValued[strings.ToLower(attr)]
	if cur, ok := container[key].([]any); ok && cur != nil {
		multi = true
	}

	if p.ValueExpression != nil {
		return applyFiltered(container, key, op, p.ValueExpression, sub, value)
	}
	if sub != "" {
		apply := func(m map[string]any) {
			sk := keyOf(m, sub)
			if op == "remove" {
				delete(m, sk)
			} else {
				m[sk] = value
			}
		}
		switch cur := container[key].(type) {
		case map[string]any:
			apply(cur)
		case []any:
			for _, el := range cur {
				if m, ok := el.(map[string]any); ok {
					apply(m)
				}
			}
		default:
			if op != "remove" {
				m := map[string]any{}
				apply(m)
				container[key] = m
			}
		}
		return nil
	}
	switch op {
	case "remove":
		if cur, ok := container[key].([]any); ok && value != nil {
			// Entra removes members by listing them in value.
			drop := valuesOf(value)
			kept := cur[:0:0]
			for _, el := range cur {
				if !drop[elementValue(el)] {
					kept = append(kept, el)
				}
			}
			container[key] = kept
			return nil
		}
		delete(container, key)
	case "add":
		if !multi {
			container[key] = merge(container[key], value)
			return nil
		}
		cur, _ := container[key].([]any)
		have := valuesOf(cur)
		for _, el := range elements(value) {
			if v := elementValue(el); v != "" && have[v] {
				continue
			}
			have[elementValue(el)] = true
			cur = append(cur, el)
		}
		if cur == nil {
			cur = []any{}
		}
		container[key] = cur
	case "replace":
		if multi {
			container[key] = append([]any{}, elements(value)...)
			return nil
		}
		container[key] = merge(container[key], value)
	}
	return nil
}

// merge is the value of a complex attribute after add or replace: the
// sub-attributes given replace those present, others stay (RFC 7644
// §3.5.2.3); anything else is replaced whole.
func merge(cur, value any) any {
	cm, ok1 := cur.(map[string]any)
	vm, ok2 := value.(map[string]any)
	if !ok1 || !ok2 {
		return value
	}
	out := map[string]any{}
	for k, v := range cm {
		out[k] = v
	}
	for k, v := range vm {
		out[keyOf(out, k)] = v
	}
	return out
}

// applyFiltered applies an operation to the elements of a multi-valued
// attribute that match f (emails[type eq "work"], members[value eq "7"]).
func applyFiltered(container map[string]any, key, op string, f filter.Expression, sub string, value any) error {
	cur, _ := container[key].([]any)
	var hit []int
	for i, el := range cur {
		if m, ok := el.(map[string]any); ok && match(f, m) {
			hit = append(hit, i)
		}
	}
	switch {
	case op == "remove" && sub == "":
		kept := cur[:0:0]
		for i, el := range cur {
			if !slices.Contains(hit, i) {
				kept = append(kept, el)
			}
		}
		container[key] = kept
	case op == "remove":
		for _, i := range hit {
			delete(cur[i].(map[string]any), keyOf(cur[i].(map[string]any), sub))
		}
	case len(hit) == 0:
		// Nothing matches: an element the filter describes is made when
		// the filter says only what it is (emails[type eq "work"]).
		terms, ok := eqTerms(f)
		if !ok {
			return &Error{Status: http.StatusBadRequest, SCIMType: "noTarget", Detail: "No value matches the path's filter."}
		}
		el := map[string]any{}
		for k, v := range terms {
			el[k] = v
		}
		if sub != "" {
			el[sub] = value
		} else if vm, ok := value.(map[string]any); ok {
			for k, v := range vm {
				el[k] = v
			}
		} else {
			return badRequest("invalidValue", "The value for a filtered path without a sub-attribute must be an object.")
		}
		container[key] = append(cur, el)
	default:
		for _, i := range hit {
			m := cur[i].(map[string]any)
			if sub != "" {
				m[keyOf(m, sub)] = value
				continue
			}
			vm, ok := value.(map[string]any)
			if !ok {
				return badRequest("invalidValue", "The value for a filtered path without a sub-attribute must be an object.")
			}
			if op == "replace" {
				cur[i] = merge(map[string]any{}, vm)
			} else {
				cur[i] = merge(m, vm)
			}
		}
	}
	return nil
}

// elementValue is the "value" of a multi-valued attribute's element.
func elementValue(el any) string {
	if m, ok := el.(map[string]any); ok {
		v, _ := lookup(m, "value")
		return toString(v)
	}
	return toString(el)
}

// valuesOf is the set of "value"s of one element or a list of them.
func valuesOf(v any) map[string]bool {
	out := map[string]bool{}
	if v == nil {
		return out
	}
	for _, el := range elements(v) {
		if s := elementValue(el); s != "" {
			out[s] = true
		}
	}
	return out
}

func itoa(i int) string { return toString(float64(i)) }
