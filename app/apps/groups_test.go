package apps

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestGroupsHeader(t *testing.T) {
	for _, tc := range []struct {
		groups []string
		want   string
	}{
		{nil, ""},
		{[]string{"sellers"}, "sellers"},
		{[]string{"leads", "sellers"}, "leads,sellers"},
		{[]string{"Sales, EMEA", "ops"}, "Sales%2C EMEA,ops"},
		{[]string{"100% owners", "a%2Cb"}, "100%25 owners,a%252Cb"},
		{[]string{"Ventes été"}, "Ventes été"},
	} {
		got := groupsHeader(tc.groups)
		if got != tc.want {
			t.Errorf("groupsHeader(%q) = %q, want %q", tc.groups, got, tc.want)
		}
		// Split on commas and percent-decode: the names come back.
		var back []string
		if got != "" {
			for part := range strings.SplitSeq(got, ",") {
				name, err := url.PathUnescape(part)
				if err != nil {
					t.Fatalf("%q: %v", part, err)
				}
				back = append(back, name)
			}
		}
		if !slices.Equal(back, tc.groups) {
			t.Errorf("%q read back as %q", got, back)
		}
	}
}
