package dashboards

import (
	"strconv"
	"testing"

	"gatehouse/db"
)

// TestGrantReasonRemembered: an allowed decision says which group (and
// identity provider group) granted it, the same sentence on every call,
// for each group, and after the remembered sentences were emptied.
func TestGrantReasonRemembered(t *testing.T) {
	d := &Dashboard{Slug: "d", Title: "D"}
	v := Viewer{UserID: 1, IsActive: true}
	decide := func(group, idp string) string {
		t.Helper()
		dec := Decide(v, d, nil, Facts{Granting: []db.GrantingGroup{
			{GroupName: "other"}, {GroupName: group, Member: true, IdPGroup: idp}}})
		if !dec.Allowed || dec.Via != group || dec.ViaIdP != idp {
			t.Fatalf("decision %+v, want allowed via %q (%q)", dec, group, idp)
		}
		return dec.Reason
	}
	cases := []struct{ group, idp, want string }{
		{"sales", "", `you are a member of "sales", which is granted this dashboard`},
		{"sales", "okta-sales", `you are a member of "sales" through the identity provider group "okta-sales", which is granted this dashboard`},
		{`q"uote`, "", `you are a member of "q\"uote", which is granted this dashboard`},
		{"ops", "", `you are a member of "ops", which is granted this dashboard`},
	}
	for round := 0; round < 2; round++ {
		for _, c := range cases {
			if got := decide(c.group, c.idp); got != c.want {
				t.Errorf("round %d: reason %q, want %q", round, got, c.want)
			}
		}
	}
	for i := range maxGrantReasons + 10 { // fills and empties the memory
		g := "g" + strconv.Itoa(i)
		if got, want := decide(g, ""), `you are a member of "`+g+`", which is granted this dashboard`; got != want {
			t.Fatalf("reason %q, want %q", got, want)
		}
	}
	if n := grantReasons.n.Load(); n > maxGrantReasons {
		t.Errorf("%d reasons remembered, bound %d", n, maxGrantReasons)
	}
	for _, c := range cases {
		if got := decide(c.group, c.idp); got != c.want {
			t.Errorf("after emptying: reason %q, want %q", got, c.want)
		}
	}
}
