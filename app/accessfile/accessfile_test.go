package accessfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/db"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// facts is a database with ann, bob and cy, a group "ops" whose member cy
// has an expired membership, and a grant of "retired" (a dashboard this
// binary no longer serves) to ops.
func facts() Facts {
	past := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	return Facts{
		Have: db.AccessState{
			Groups: []db.StateGroup{{Name: "ops", Members: []db.StateMember{{Email: "cy@example.com", ExpiresAt: past}}}},
			Grants: []db.StateGrant{{Dashboard: "retired", Group: "ops"}},
		},
		Users:     map[string]int64{"ann@example.com": 1, "bob@example.com": 2, "cy@example.com": 3},
		Dashboard: func(s string) bool { return s == "sales" || s == "access" },
		Now:       now,
	}
}

func resolve(t *testing.T, src string) (db.AccessState, []string) {
	t.Helper()
	f, err := Parse("access.yaml", []byte(src))
	if f == nil {
		var fe *Errors
		if !errors.As(err, &fe) {
			t.Fatalf("Parse: %v", err)
		}
		return db.AccessState{}, fe.Lines()
	}
	st, err := f.Resolve("access.yaml", facts())
	if err != nil {
		var fe *Errors
		if !errors.As(err, &fe) {
			t.Fatalf("Resolve: %v", err)
		}
		return st, fe.Lines()
	}
	return st, nil
}

func TestParseGoodFile(t *testing.T) {
	st, problems := resolve(t, `version: 1
groups:
  - name: Sales
    description: The sales team
    managers: [Ann@Example.com]
    idp_groups: [sales-team, Sales Team]
    members:
      - bob@example.com
      - {email: ann@example.com, expires: 2027-06-30}
  - name: ops
    members:
      - {email: cy@example.com, expires: 2026-01-01}   # expired, but unchanged: kept
  - name: empty
    members:
grants:
  sales: [sales, ops]
  retired: [ops]   # no longer served, but already granted: kept
`)
	if problems != nil {
		t.Fatalf("problems: %q", problems)
	}
	want := db.AccessState{
		Groups: []db.StateGroup{
			{Name: "empty"},
			{Name: "ops", Members: []db.StateMember{{Email: "cy@example.com", ExpiresAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()}}},
			{Name: "Sales", Description: "The sales team", Managers: []string{"ann@example.com"}, IdPGroups: []string{"Sales Team", "sales-team"},
				Members: []db.StateMember{{Email: "ann@example.com", ExpiresAt: time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC).UnixMilli()}, {Email: "bob@example.com"}}},
		},
		Grants: []db.StateGrant{{Dashboard: "retired", Group: "ops"}, {Dashboard: "sales", Group: "ops"}, {Dashboard: "sales", Group: "Sales"}},
	}
	if got, exp := strings.TrimSpace(fmtState(st)), strings.TrimSpace(fmtState(want)); got != exp {
		t.Errorf("state:\n%s\nwant:\n%s", got, exp)
	}
}

func fmtState(st db.AccessState) string {
	out, _ := Export(st, "")
	return string(out)
}

// TestBadFiles: every kind of problem is reported with its line and
// column, all of them at once.
func TestBadFiles(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"unknown email", "version: 1\ngroups:\n  - name: a\n    members: [nobody@example.com]\n",
			[]string{"access.yaml:4:15: unknown email nobody@example.com: there is no such user"}},
		{"unknown manager email", "version: 1\ngroups:\n  - name: a\n    managers:\n      - zed@example.com\n",
			[]string{"access.yaml:5:9: unknown email zed@example.com"}},
		{"unknown dashboard", "version: 1\ngroups:\n  - name: a\ngrants:\n  nope: [a]\n",
			[]string{`access.yaml:5:3: unknown dashboard "nope"`}},
		{"grant to a group not in the file", "version: 1\ngroups:\n  - name: a\ngrants:\n  sales: [b]\n",
			[]string{`access.yaml:5:11: grant of "sales" to group "b", which is not in the file's groups`}},
		{"group twice regardless of case", "version: 1\ngroups:\n  - name: Ops\n  - name: ops\n",
			[]string{`access.yaml:4:11: group "ops" is listed twice (first at line 3)`}},
		{"member twice", "version: 1\ngroups:\n  - name: a\n    members:\n      - ann@example.com\n      - {email: ANN@example.com}\n",
			[]string{`access.yaml:6:9: ann@example.com is listed twice as a member of "a" (first at line 5)`}},
		{"manager twice", "version: 1\ngroups:\n  - name: a\n    managers: [ann@example.com, ann@example.com]\n",
			[]string{`access.yaml:4:33: ann@example.com is listed twice as a manager of "a"`}},
		{"IdP group twice", "version: 1\ngroups:\n  - name: a\n    idp_groups: [x, y, x]\n",
			[]string{`access.yaml:4:24: IdP group "x" is listed twice for "a" (first at line 4)`}},
		{"grant twice", "version: 1\ngroups:\n  - name: a\ngrants:\n  sales: [a, A]\n",
			[]string{`access.yaml:5:14: group "A" is granted "sales" twice (first at line 5)`}},
		{"expiry in the past", "version: 1\ngroups:\n  - name: a\n    members:\n      - {email: ann@example.com, expires: 2026-11-01}\n",
			[]string{"access.yaml:5:43: expiry 2026-11-01 is not in the future"}},
		{"expired membership changed to another past date", "version: 1\ngroups:\n  - name: ops\n    members:\n      - {email: cy@example.com, expires: 2026-02-01}\n",
			[]string{"access.yaml:5:42: expiry 2026-02-01 is not in the future"}},
		{"bad date", "version: 1\ngroups:\n  - name: a\n    members:\n      - {email: ann@example.com, expires: 31/12/2027}\n",
			[]string{`access.yaml:5:43: "31/12/2027" is not a date like 2027-06-30`}},
		{"impossible date", "version: 1\ngroups:\n  - name: a\n    members:\n      - email: ann@example.com\n        expires: 2027-02-30\n",
			[]string{`access.yaml:6:18: "2027-02-30" is not a date like 2027-06-30`}},
		{"unknown top-level key", "version: 1\ngroup:\n  - name: a\n",
			[]string{`access.yaml:2:1: unknown key "group" in the file (known: version, groups, grants, apps)`}},
		{"unknown group key", "version: 1\ngroups:\n  - name: a\n    colour: red\n",
			[]string{`access.yaml:4:5: unknown key "colour" in a group`}},
		{"unknown member key", "version: 1\ngroups:\n  - name: a\n    members:\n      - {email: ann@example.com, until: 2027-01-01}\n",
			[]string{`access.yaml:5:34: unknown key "until" in a member`}},
		{"key twice", "version: 1\ngroups:\n  - name: a\n    name: b\n",
			[]string{`access.yaml:4:5: key "name" appears twice in a group`}},
		{"missing version", "groups: []\n", []string{"access.yaml:1:1: missing `version: 1`"}},
		{"wrong version", "version: 2\n", []string{"access.yaml:1:10: version must be 1"}},
		{"bad email", "version: 1\ngroups:\n  - name: a\n    members: [not-an-email]\n",
			[]string{`access.yaml:4:15: "not-an-email" is not a valid email address`}},
		{"bad group name", "version: 1\ngroups:\n  - name: \"" + strings.Repeat("x", 65) + "\"\n",
			[]string{"access.yaml:3:11: group name must be at most 64 characters"}},
		{"zero-width character in a group name", "version: 1\ngroups:\n  - name: \"SALES\\u200b\"\n",
			[]string{"access.yaml:3:11: group name must not contain invisible characters (it contains U+200B)"}},
		{"byte order mark before a group name", "version: 1\ngroups:\n  - name: \"\\ufeffsales\"\n",
			[]string{"access.yaml:3:11: group name starts with an invisible byte order mark (U+FEFF)"}},
		{"bidi control in a group name", "version: 1\ngroups:\n  - name: \"sales\\u202e\"\n",
			[]string{"access.yaml:3:11: group name must not contain bidi controls, which reorder text on screen (it contains U+202E)"}},
		{"one group name in two Unicode forms", "version: 1\ngroups:\n  - name: Caf\u00e9\n  - name: Cafe\u0301\n",
			[]string{"access.yaml:4:11: group \"Caf\u00e9\" is listed twice (first at line 3)"}},
		{"group without a name", "version: 1\ngroups:\n  - description: x\n", []string{"access.yaml:3:5: a group needs a name"}},
		{"members not a list", "version: 1\ngroups:\n  - name: a\n    members: ann@example.com\n",
			[]string{"access.yaml:4:14: members must be a list"}},
		{"not YAML", "version: 1\ngroups: [\n", []string{"access.yaml:2: not valid YAML"}},
		{"two documents", "version: 1\n---\nversion: 1\n", []string{"access.yaml:2: a second YAML document"}},
		{"empty", "", []string{"access.yaml:1: the file is empty"}},
		{"alias", "version: 1\ngroups:\n  - &g {name: a}\n  - *g\n", []string{"access.yaml:4:5: aliases (*name) are not supported"}},
		{"every problem at once", "version: 1\ngroups:\n  - name: a\n    colour: red\n    members: [nobody@example.com]\ngrants:\n  nope: [a]\n", []string{
			`access.yaml:4:5: unknown key "colour"`, "access.yaml:5:15: unknown email nobody@example.com", `access.yaml:7:3: unknown dashboard "nope"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, problems := resolve(t, tc.src)
			if len(problems) != len(tc.want) {
				t.Fatalf("problems %q, want %d like %q", problems, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(problems[i], w) {
					t.Errorf("problem %q, want it to start with %q", problems[i], w)
				}
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	big := strings.NewReader("version: 1\n# " + strings.Repeat("x", MaxSize) + "\n")
	_, _, err := Read("big.yaml", big)
	var fe *Errors
	if !errors.As(err, &fe) || !strings.Contains(fe.Lines()[0], "big.yaml:1: the file is larger than 10 MB") {
		t.Errorf("a file over 10 MB: %v", err)
	}
}

// TestExportIsStable: an export reads back as the same state, and two
// exports of equal states in any order are byte for byte the same.
func TestExportIsStable(t *testing.T) {
	a := db.AccessState{
		Groups: []db.StateGroup{
			{Name: "zeta", Members: []db.StateMember{{Email: "b@example.com"}, {Email: "a@example.com", ExpiresAt: time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC).UnixMilli()}}},
			{Name: "true", Description: "a name YAML would read as a boolean", Managers: []string{"b@example.com", "a@example.com"}},
			{Name: "2024", Description: "#not a comment: really"},
		},
		Grants: []db.StateGrant{{Dashboard: "sales", Group: "zeta"}, {Dashboard: "access", Group: "true"}, {Dashboard: "sales", Group: "2024"}},
	}
	b := db.AccessState{Groups: []db.StateGroup{a.Groups[2], a.Groups[0], a.Groups[1]}, Grants: []db.StateGrant{a.Grants[2], a.Grants[1], a.Grants[0]}}
	outA, err := Export(a, "header")
	if err != nil {
		t.Fatal(err)
	}
	outB, _ := Export(b, "header")
	if string(outA) != string(outB) {
		t.Errorf("exports differ:\n%s\n---\n%s", outA, outB)
	}
	f, err := Parse("x.yaml", outA)
	if err != nil {
		t.Fatalf("export does not parse: %v\n%s", err, outA)
	}
	fs := facts()
	fs.Dashboard = func(string) bool { return true }
	fs.Users = map[string]int64{"a@example.com": 1, "b@example.com": 2}
	st, err := f.Resolve("x.yaml", fs)
	if err != nil {
		t.Fatal(err)
	}
	if plan := db.DiffAccess(st, a); len(plan.Changes) != 0 {
		t.Errorf("export read back differs: %v", plan.Changes)
	}
	if !strings.Contains(string(outA), "- {email: a@example.com, expires: '2027-01-02T03:04:05.000Z'}") {
		t.Errorf("an expiry not at midnight is not kept exactly:\n%s", outA)
	}
}

// BenchmarkFileAtScale exports, parses and resolves a file of 1,000
// groups and 100,000 memberships:
//
//	go test -run '^$' -bench FileAtScale ./app/accessfile
func BenchmarkFileAtScale(b *testing.B) {
	st := db.AccessState{}
	users := map[string]int64{}
	for u := range 20000 {
		users[fmt.Sprintf("user%05d@example.com", u)] = int64(u + 1)
	}
	for g := range 1000 {
		sg := db.StateGroup{Name: fmt.Sprintf("team %04d", g), Description: "a team"}
		for m := range 100 {
			sg.Members = append(sg.Members, db.StateMember{Email: fmt.Sprintf("user%05d@example.com", (g*100+m*37)%20000)})
		}
		st.Groups = append(st.Groups, sg)
	}
	st.Normalize()
	data, err := Export(st, "")
	if err != nil {
		b.Fatal(err)
	}
	fs := Facts{Users: users, Dashboard: func(string) bool { return true }, Now: now}
	b.Run("export", func(b *testing.B) {
		for b.Loop() {
			if _, err := Export(st, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse-and-resolve", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			f, err := Parse("x.yaml", data)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Resolve("x.yaml", fs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestManyProblemsAreCounted(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\ngroups:\n  - name: a\n    members:\n")
	for i := range 300 {
		fmt.Fprintf(&b, "      - nobody%d@example.com\n", i)
	}
	f, err := Parse("x.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Resolve("x.yaml", facts())
	var fe *Errors
	if !errors.As(err, &fe) || fe.Count() != 300 || len(fe.Problems) != maxProblems || !strings.Contains(fe.Error(), "300 problems") {
		t.Errorf("300 unknown emails: %v", err)
	}
}

// TestSchemaKnowsTheKeys: docs/access.schema.json, which editors use to
// complete files, allows exactly the keys the parser accepts.
func TestSchemaKnowsTheKeys(t *testing.T) {
	raw, err := os.ReadFile("../../docs/access.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       struct {
			Group struct {
				Properties map[string]struct {
					Items struct {
						OneOf []struct {
							Properties map[string]json.RawMessage `json:"properties"`
						} `json:"oneOf"`
					} `json:"items"`
				} `json:"properties"`
			} `json:"group"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	keys := func(m any) []string {
		var out []string
		switch m := m.(type) {
		case map[string]json.RawMessage:
			for k := range m {
				out = append(out, k)
			}
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
	if got := keys(schema.Properties); !slices.Equal(got, sorted(fileKeys)) {
		t.Errorf("schema file keys %q, parser %q", got, fileKeys)
	}
	var groupProps []string
	for k := range schema.Defs.Group.Properties {
		groupProps = append(groupProps, k)
	}
	if slices.Sort(groupProps); !slices.Equal(groupProps, sorted(groupKeys)) {
		t.Errorf("schema group keys %q, parser %q", groupProps, groupKeys)
	}
	members := schema.Defs.Group.Properties["members"].Items.OneOf
	if len(members) != 2 || !slices.Equal(keys(members[1].Properties), sorted(memberKeys)) {
		t.Errorf("schema member keys do not match the parser's %q", memberKeys)
	}
}

// TestGroupNamesInFiles: a file's group names are read in NFC (a grant may
// name the group in either form), and a name CleanGroupName refuses is
// still accepted when the database has a group named exactly so (from
// before the rule), so an export of that database applies unchanged.
func TestGroupNamesInFiles(t *testing.T) {
	fx := facts()
	fx.Have.Groups = append(fx.Have.Groups, db.StateGroup{Name: "legacy\u200b"})
	f, err := Parse("access.yaml", []byte("version: 1\ngroups:\n  - name: \"legacy\\u200b\"\n  - name: Cafe\u0301\n"+
		"grants:\n  sales: [\"cafe\u0301\", \"LEGACY\\u200b\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Resolve("access.yaml", fx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmtState(st), "version: 1\ngroups:\n  - name: Caf\u00e9\n  - name: legacy\u200b\ngrants:\n  sales:\n    - Caf\u00e9\n    - legacy\u200b\n"; got != want {
		t.Errorf("state:\n%q\nwant\n%q", got, want)
	}
	// Without that group in the database, the name is refused.
	if _, err := f.Resolve("access.yaml", facts()); err == nil || !strings.Contains(err.Error(), "access.yaml:3:11: group name must not contain invisible characters") {
		t.Errorf("a new group named with a zero-width space: %v", err)
	}
}
