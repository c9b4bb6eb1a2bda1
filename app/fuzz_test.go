package app

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"gatehouse/components"
	"gatehouse/db"
)

// FuzzSafeNext: the login redirect target is always a path on this site:
// resolved against the site's URL, it never leaves the origin.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "/dashboards/sales", "//evil.example", "/\\evil.example", "https://evil.example",
		"/%2F%2Fevil.example", "javascript:alert(1)", "/\t/evil", "\\\\evil", "/ok?next=//evil", "/a#//evil", "%2F%2Fevil"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://gate.example.com/login")
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.Contains(got, "\\") {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("safeNext(%q) = %q does not parse: %v", next, got, err)
		}
		if r := base.ResolveReference(u); r.Host != base.Host || r.Scheme != base.Scheme {
			t.Fatalf("safeNext(%q) = %q leaves the site: %s", next, got, r)
		}
	})
}

// FuzzRenderName: a group name and description, validated and rendered in
// the places that show them, always come out as text: no element or
// attribute beyond the template's own.
func FuzzRenderName(f *testing.F) {
	for _, s := range []string{"sales", `<script>alert(1)</script>`, `" hx-get="/admin`, `<img src=x onerror=alert(1)>`, "javascript:alert(1)", "a&amp;b", "'><svg onload=1>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		name, err := db.CleanGroupName(raw)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		groups := []db.UserGroup{{Group: db.Group{Name: name}}}
		if err := components.GroupBadges(groups, 0).Render(context.Background(), &buf); err != nil {
			t.Fatal(err)
		}
		if err := components.Alert("error", name).Render(context.Background(), &buf); err != nil {
			t.Fatal(err)
		}
		doc, err := html.Parse(strings.NewReader("<body>" + buf.String()))
		if err != nil {
			t.Fatal(err)
		}
		var text strings.Builder
		elements := 0
		for n := range doc.Descendants() {
			switch n.Type {
			case html.ElementNode:
				switch n.Data {
				case "html", "head", "body":
					continue
				case "span", "div":
				default:
					t.Fatalf("name %q injected <%s>", name, n.Data)
				}
				elements++
				for _, a := range n.Attr {
					if a.Key != "class" && a.Key != "role" && a.Key != "title" {
						t.Fatalf("name %q injected attribute %s", name, a.Key)
					}
				}
			case html.TextNode:
				text.WriteString(n.Data)
			}
		}
		if elements != 2 {
			t.Fatalf("name %q: %d elements, want the badge and the alert", name, elements)
		}
		if got := strings.Count(text.String(), name); got < 2 {
			t.Fatalf("name %q does not round-trip as text: %q", name, text.String())
		}
	})
}
