package filedash

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// TestSchemaKnowsTheKeys: docs/dashboards.schema.json, which editors use
// to complete files, allows exactly the keys the parser accepts.
func TestSchemaKnowsTheKeys(t *testing.T) {
	raw, err := os.ReadFile("../../docs/dashboards.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	type object struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	var schema struct {
		object
		Defs struct {
			Panel  object `json:"panel"`
			Filter object `json:"filter"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what   string
		schema object
		parser []string
	}{{"file", schema.object, fileKeys}, {"panel", schema.Defs.Panel, panelKeys}, {"filter", schema.Defs.Filter, filterKeys}} {
		var got []string
		for k := range c.schema.Properties {
			got = append(got, k)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(c.parser))
		if !slices.Equal(got, want) {
			t.Errorf("schema %s keys %q, parser %q", c.what, got, want)
		}
	}
}

// TestParseQuery: named parameters are found outside literals, quoted
// names, comments and dollar quotes, and casts stay casts.
func TestParseQuery(t *testing.T) {
	for _, c := range []struct {
		sql    string
		pg     string
		params []string
		args   int
	}{
		{"SELECT :viewer_email", "SELECT $1", []string{"viewer_email"}, 1},
		{"SELECT amount::text, ':now' FROM t WHERE a = :region", "SELECT amount::text, ':now' FROM t WHERE a = $1", []string{"region"}, 1},
		{"SELECT \"a:b\" -- :c\n, /* :d */ $$ :e $$, $x$ :f $x$ FROM t WHERE g IN (:viewer_groups)", "SELECT \"a:b\" -- :c\n, /* :d */ $$ :e $$, $x$ :f $x$ FROM t WHERE g IN ($1, $2)", []string{"viewer_groups"}, 2},
		{"SELECT 'it''s :x', 'a\\':y' FROM t WHERE :now > d AND :now < e", "SELECT 'it''s :x', 'a\\':y' FROM t WHERE $1 > d AND $2 < e", []string{"now"}, 2},
	} {
		q, err := parseQuery(c.sql)
		if err != nil {
			t.Errorf("%q: %v", c.sql, err)
			continue
		}
		if got := q.Params(); !slices.Equal(got, c.params) {
			t.Errorf("%q: params %q, want %q", c.sql, got, c.params)
		}
		text, args := q.bind(dialectPostgres, Values{Groups: []string{"a", "b"}, Filters: map[string]string{"region": "x"}})
		if text != c.pg {
			t.Errorf("%q bound as %q, want %q", c.sql, text, c.pg)
		}
		if len(args) != c.args {
			t.Errorf("%q: %d args, want %d", c.sql, len(args), c.args)
		}
	}
	for _, bad := range []string{"SELECT 'open", "SELECT /* open", "SELECT $1", "SELECT ?", "   "} {
		if _, err := parseQuery(bad); err == nil {
			t.Errorf("%q parsed without an error", bad)
		}
	}
	q, _ := parseQuery("SELECT 1 WHERE g IN (:viewer_groups) AND e = :viewer_email")
	text, args := q.bind(dialectMySQL, Values{Email: "x'); DROP TABLE t; --"})
	if text != "SELECT 1 WHERE g IN (NULL) AND e = ?" || len(args) != 1 || args[0] != "x'); DROP TABLE t; --" {
		t.Errorf("bound as %q %q", text, args)
	}
}
