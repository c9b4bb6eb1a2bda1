package filedash

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Query is a panel's or a filter's SQL, split at its named parameters
// (:name) so the driver binds every value: a parameter becomes a
// placeholder ($1 for PostgreSQL, ? otherwise), never text.
//
// A colon inside a string literal, a quoted identifier, a comment or a
// PostgreSQL dollar-quoted string is text, and so is a cast (::int).
type Query struct {
	Text      string
	Line, Col int // where the SQL starts in its file
	parts     []part
}

// part is literal SQL text or, when param is set, one parameter.
type part struct {
	text  string
	param string
}

// Params returns the parameter names the query uses, each once, in order.
func (q *Query) Params() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range q.parts {
		if p.param != "" && !seen[p.param] {
			seen[p.param] = true
			out = append(out, p.param)
		}
	}
	return out
}

// Uses reports whether the query names parameter name.
func (q *Query) Uses(name string) bool {
	for _, p := range q.parts {
		if p.param == name {
			return true
		}
	}
	return false
}

// parseQuery splits SQL text at its named parameters, for any of the
// dialects: MySQL's backslash escapes inside quotes are honoured too, which
// only matters for a colon that follows them inside a literal.
func parseQuery(text string) (*Query, error) {
	q := &Query{Text: text}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			q.parts = append(q.parts, part{text: lit.String()})
			lit.Reset()
		}
	}
	s := text
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			end := quotedEnd(s, i, c)
			if end < 0 {
				return nil, fmt.Errorf("the SQL has an unterminated %c quote", c)
			}
			lit.WriteString(s[i:end])
			i = end
		case c == '-' && strings.HasPrefix(s[i:], "--"), c == '#':
			end := strings.IndexByte(s[i:], '\n')
			if end < 0 {
				end = len(s) - i
			}
			lit.WriteString(s[i : i+end])
			i += end
		case c == '/' && strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return nil, errors.New("the SQL has an unterminated /* comment")
			}
			lit.WriteString(s[i : i+2+end+2])
			i += 2 + end + 2
		case c == '$':
			if tag, ok := dollarTag(s[i:]); ok {
				end := strings.Index(s[i+len(tag):], tag)
				if end < 0 {
					return nil, fmt.Errorf("the SQL has an unterminated %s string", tag)
				}
				n := len(tag) + end + len(tag)
				lit.WriteString(s[i : i+n])
				i += n
				continue
			}
			if i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
				return nil, errors.New("the SQL uses a positional parameter ($1): name it instead, such as :viewer_email or a filter's name")
			}
			lit.WriteByte(c)
			i++
		case c == '?':
			return nil, errors.New("the SQL uses a ? placeholder: use a named parameter instead, such as :viewer_email or a filter's name")
		case c == ':' && i+1 < len(s) && s[i+1] == ':':
			lit.WriteString("::") // a PostgreSQL cast
			i += 2
		case c == ':' && i+1 < len(s) && isNameStart(s[i+1]) && (i == 0 || !isNameByte(s[i-1])):
			j := i + 1
			for j < len(s) && isNameByte(s[j]) {
				j++
			}
			flush()
			q.parts = append(q.parts, part{param: s[i+1 : j]})
			i = j
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("the SQL is empty")
	}
	return q, nil
}

// quotedEnd returns the index just past the quote opened at s[i], or -1.
// A doubled quote is part of the text, as is a backslash-escaped one.
func quotedEnd(s string, i int, quote byte) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if quote == '\'' {
				j++
			}
		case quote:
			if j+1 < len(s) && s[j+1] == quote {
				j++
				continue
			}
			return j + 1
		}
	}
	return -1
}

// dollarTag returns the tag ($$ or $name$) opening a PostgreSQL
// dollar-quoted string at the start of s.
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '$':
			return s[:j+1], true
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || (j > 1 && c >= '0' && c <= '9'):
		default:
			return "", false
		}
	}
	return "", false
}

func isNameStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isNameByte(c byte) bool  { return isNameStart(c) || c >= '0' && c <= '9' }

// Values are what a query's parameters are bound to.
type Values struct {
	Email  string
	Groups []string
	Now    time.Time
	// Filters are the filter values by name.
	Filters map[string]string
}

// bind returns the query's text with placeholders for dialect and the
// arguments in their order. :viewer_groups becomes one placeholder per
// group, or NULL when there are none, so `IN (:viewer_groups)` matches
// nothing for a viewer without groups.
func (q *Query) bind(d dialect, v Values) (string, []any) {
	var b strings.Builder
	var args []any
	placeholder := func(val any) {
		args = append(args, val)
		if d == dialectPostgres {
			b.WriteString("$" + strconv.Itoa(len(args)))
		} else {
			b.WriteByte('?')
		}
	}
	for _, p := range q.parts {
		switch p.param {
		case "":
			b.WriteString(p.text)
		case ParamViewerEmail:
			placeholder(v.Email)
		case ParamNow:
			placeholder(v.Now.UTC())
		case ParamViewerGroups:
			if len(v.Groups) == 0 {
				b.WriteString("NULL")
			}
			for i, g := range v.Groups {
				if i > 0 {
					b.WriteString(", ")
				}
				placeholder(g)
			}
		default:
			placeholder(v.Filters[p.param])
		}
	}
	return b.String(), args
}

// dateValue reads a date filter's value: YYYY-MM-DD, "today" or
// "today-N" (N days before), at now.
func dateValue(s string, now time.Time) (string, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "today"); ok {
		days := 0
		if rest != "" {
			n, err := strconv.Atoi(strings.TrimPrefix(rest, "-"))
			if err != nil || !strings.HasPrefix(rest, "-") || n < 0 || n > 36600 {
				return "", fmt.Errorf("bad relative date %q", s)
			}
			days = n
		}
		return now.UTC().AddDate(0, 0, -days).Format(time.DateOnly), nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return "", err
	}
	return t.Format(time.DateOnly), nil
}
