package e2e

import (
	"testing"
)

// themeState is what the page shows of its theme: the root's data-theme
// (empty while it follows the system), whether it is dark (light text),
// and the
// button's label.
type themeState struct {
	Theme string `json:"theme"`
	Dark  bool   `json:"dark"`
	Label string `json:"label"`
}

const themeStateJS = `(() => ({
	theme: document.documentElement.getAttribute("data-theme") || "",
	dark: getComputedStyle(document.body).color.match(/\d+/g).slice(0, 3).every((c) => Number(c) > 150),
	label: document.getElementById("theme-toggle").getAttribute("aria-label"),
}))()`

// TestThemeButtonCycles: the top bar's theme button goes from following
// the system to the other theme, to the system's theme kept, and back to
// following the system, on a light and on a dark system; the choice
// survives a reload.
func TestThemeButtonCycles(t *testing.T) {
	b := newBrowser(t)
	srv := startServer(t, nil, "--demo")
	for _, sys := range []string{"light", "dark"} {
		t.Run(sys+" system", func(t *testing.T) {
			tb := b.newTab(t, sys)
			tb.scheme(t, sys)
			tb.open(t, srv.URL+"/login")
			other := map[string]string{"light": "dark", "dark": "light"}[sys]
			state := func() themeState {
				t.Helper()
				var s themeState
				tb.eval(t, themeStateJS, &s)
				return s
			}
			want := func(step, theme, dark, label string) {
				t.Helper()
				s := state()
				if s.Theme != theme || (s.Dark != (dark == "dark")) || s.Label != label {
					t.Errorf("%s: data-theme %q, dark %v, label %q; want %q, %s, %q", step, s.Theme, s.Dark, s.Label, theme, dark, label)
				}
			}
			want("at first", "", sys, "Theme: follows the system ("+sys+" now). Press to change.")
			tb.click(t, "#theme-toggle")
			want("one press", other, other, "Theme: "+other+". Press to change.")
			tb.open(t, srv.URL+"/login")
			want("after a reload", other, other, "Theme: "+other+". Press to change.")
			tb.click(t, "#theme-toggle")
			want("two presses", sys, sys, "Theme: "+sys+". Press to change.")
			tb.click(t, "#theme-toggle")
			want("three presses", "", sys, "Theme: follows the system ("+sys+" now). Press to change.")
			tb.open(t, srv.URL+"/login")
			want("following the system after a reload", "", sys, "Theme: follows the system ("+sys+" now). Press to change.")
			tb.assertClean(t)
		})
	}
}
