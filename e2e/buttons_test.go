package e2e

import (
	"testing"
)

// TestButtonScale: a form's action beside its fields is as tall as they
// are (the button scale's rule), on every admin page with such forms.
func TestButtonScale(t *testing.T) {
	b := newBrowser(t)
	srv := startServer(t, nil, "--demo")
	tb := b.newTab(t, "admin")
	logIn(t, tb, srv.URL, "admin@demo.example", demoPassword)
	for _, path := range []string{"/admin/groups/1", "/admin/groups", "/admin/users", "/admin/audit", "/admin/explain"} {
		tb.open(t, srv.URL+path)
		var off []string
		tb.eval(t, `[...document.querySelectorAll("main form.row, main .filters")].flatMap((f) => {
			const field = [...f.querySelectorAll("input:not([type=hidden]):not([type=checkbox]):not([type=search])")].find((e) => e.offsetParent);
			const button = [...f.querySelectorAll("button[type=submit]")].find((e) => e.offsetParent);
			if (!field || !button) return [];
			const d = Math.abs(field.getBoundingClientRect().height - button.getBoundingClientRect().height);
			return d > 2 ? [button.textContent.trim() + ": " + Math.round(button.getBoundingClientRect().height) + " px beside a " + Math.round(field.getBoundingClientRect().height) + " px field"] : [];
		})`, &off)
		for _, o := range off {
			t.Errorf("%s: %s", path, o)
		}
	}
	tb.assertClean(t)
}
