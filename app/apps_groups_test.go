package app

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"gatehouse/db"
)

// TestAppsGroupsHeaderKeepsCommas: a group name holding a comma reaches the
// upstream as one group in X-Forwarded-Groups (its comma sent as %2C), not
// as two.
func TestAppsGroupsHeaderKeepsCommas(t *testing.T) {
	e := newAppsEnv(t)
	ann := e.member(t, "ann@example.com")
	ctx := context.Background()
	emea, err := e.store.CreateGroup(ctx, db.Actor{Email: "test"}, "Sales, EMEA", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.AddMember(ctx, db.Actor{Email: "test"}, emea.ID, ann.ID, 0); err != nil {
		t.Fatal(err)
	}
	_, res, _ := e.signIn(t, "ann@example.com", "/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("signed in: %d", res.StatusCode)
	}
	header := e.up.last().Header.Get("X-Forwarded-Groups")
	var names []string
	for part := range strings.SplitSeq(header, ",") {
		name, err := url.PathUnescape(part)
		if err != nil {
			t.Fatalf("X-Forwarded-Groups %q: %v", header, err)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"Sales, EMEA", "sellers"}) || !strings.Contains(header, "Sales%2C EMEA") {
		t.Errorf("X-Forwarded-Groups %q reads as %q, want the two groups Sales, EMEA and sellers", header, names)
	}
}
