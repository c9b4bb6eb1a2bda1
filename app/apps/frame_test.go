package apps

import (
	"slices"
	"testing"
)

func TestWithFrameAncestors(t *testing.T) {
	const fa = "frame-ancestors https://gatehouse.example 'self'"
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"no policy", nil, []string{fa}},
		{"none other kept", []string{"default-src 'self'; frame-ancestors 'none'"}, []string{"default-src 'self'; " + fa}},
		{"added where missing", []string{"script-src 'self' 'unsafe-eval'"}, []string{"script-src 'self' 'unsafe-eval'; " + fa}},
		{"any case, any place", []string{"FRAME-ANCESTORS 'self'; img-src data:;  ; style-src 'unsafe-inline'"},
			[]string{"img-src data:; style-src 'unsafe-inline'; " + fa}},
		{"each policy of a list", []string{"default-src 'self', frame-ancestors 'none'; img-src *"},
			[]string{"default-src 'self'; " + fa, "img-src *; " + fa}},
		{"each header", []string{"default-src 'self'", "frame-ancestors https://evil.example"},
			[]string{"default-src 'self'; " + fa}},
		{"tabs", []string{"img-src\tdata:;\tframe-ancestors\t'none'"}, []string{"img-src data:; " + fa}},
		{"framing alone", []string{"frame-ancestors 'none'"}, []string{fa}},
		// A directive whose name only starts like it is another directive.
		{"frame-ancestors-x kept", []string{"frame-ancestors-x a"}, []string{"frame-ancestors-x a; " + fa}},
	} {
		if got := withFrameAncestors(tc.in, fa); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q → %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestSecureContext(t *testing.T) {
	for _, tc := range []struct {
		scheme, domain string
		want           bool
	}{
		{"http", "localhost", true},
		{"http", "apps.localhost", true},
		{"https", "apps.corp.example", true},
		{"http", "apps.corp.example", false},
		{"http", "notlocalhost", false},
	} {
		if got := secureContext(tc.scheme, tc.domain); got != tc.want {
			t.Errorf("secureContext(%q, %q) = %v", tc.scheme, tc.domain, got)
		}
	}
}
