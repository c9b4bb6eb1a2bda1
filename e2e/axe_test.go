package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"gatehouse/e2e/axe"
)

// axeTags are the rule sets every page must pass: WCAG 2.1 A and AA, and
// axe's best practices.
var axeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"}

// axeRunJS runs axe on the whole document and returns one line per
// violating node.
var axeRunJS = fmt.Sprintf(`(async () => {
	const r = await axe.run(document, {runOnly: {type: "tag", values: %s}, resultTypes: ["violations"]});
	const out = [];
	for (const v of r.violations) {
		for (const n of v.nodes) {
			out.push(v.id + " (" + v.impact + "): " + n.target.join(" ") + ": " + (n.failureSummary || "").replace(/\s+/g, " ").slice(0, 300));
		}
	}
	return out;
})()`, jsStrings(axeTags))

func jsStrings(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// axeViolations runs axe-core on the open page and returns its violations.
func (tb *tab) axeViolations(t *testing.T) []string {
	t.Helper()
	var loaded bool
	tb.eval(t, `typeof window.axe === "object"`, &loaded)
	if !loaded {
		// Evaluated through the DevTools protocol, which the page's
		// Content-Security-Policy does not govern.
		tb.run(t, "load axe-core", chromedp.Evaluate(axe.Source, nil))
	}
	var out []string
	tb.run(t, "run axe-core", chromedp.Evaluate(axeRunJS, &out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
		return p.WithAwaitPromise(true)
	}))
	return out
}

// look is one way of viewing a page: a window size and a colour scheme.
type look struct {
	name   string
	width  int
	height int
	mobile bool
	scheme string // prefers-color-scheme
}

var looks = []look{
	{"1280-light", 1280, 900, false, "light"},
	{"1280-dark", 1280, 900, false, "dark"},
	{"375-light", phoneWidth, 812, true, "light"},
	{"375-dark", phoneWidth, 812, true, "dark"},
}

// apply sets the tab's viewport and colour scheme.
func (l look) apply(t *testing.T, tb *tab) {
	t.Helper()
	opts := []chromedp.EmulateViewportOption{}
	if l.mobile {
		opts = append(opts, chromedp.EmulateMobile)
	}
	tb.run(t, "look "+l.name,
		chromedp.EmulateViewport(int64(l.width), int64(l.height), opts...),
		chromedp.ActionFunc(func(ctx context.Context) error {
			// Reduced motion turns the stylesheet's transitions off, so axe
			// reads the colours of the new scheme, not a blend mid-way.
			return emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{
				{Name: "prefers-color-scheme", Value: l.scheme},
				{Name: "prefers-reduced-motion", Value: "reduce"},
			}).Do(ctx)
		}),
	)
}

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

// checkLooks runs axe on the open page in every look and fails t for each
// violation. With GATEHOUSE_TOUR_SHOTS=DIR it also saves a full-page
// screenshot of each look there, for a person to look at.
func (tb *tab) checkLooks(t *testing.T, state string) {
	t.Helper()
	for _, l := range looks {
		l.apply(t, tb)
		tb.run(t, "settle", chromedp.Sleep(50*time.Millisecond))
		for _, v := range tb.axeViolations(t) {
			t.Errorf("%s at %s: %s", state, l.name, v)
		}
		if dir := os.Getenv("GATEHOUSE_TOUR_SHOTS"); dir != "" {
			var png []byte
			tb.run(t, "screenshot", chromedp.FullScreenshot(&png, 100))
			name := unsafeName.ReplaceAllString(strings.ToLower(state), "-") + "." + l.name + ".png"
			if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	looks[0].apply(t, tb)
}

// forgetErrorStatus drops the console's report of an error status the
// test asked for on purpose (a 404 page, a refused login), keeping every
// other problem.
func (tb *tab) forgetErrorStatus(status int) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	kept := tb.problems[:0]
	for _, p := range tb.problems {
		if !strings.Contains(p, fmt.Sprintf("the server responded with a status of %d", status)) {
			kept = append(kept, p)
		}
	}
	tb.problems = kept
}

// scheme makes the tab's system colour scheme "light" or "dark", with
// reduced motion so no colour is caught mid-transition.
func (tb *tab) scheme(t *testing.T, scheme string) {
	t.Helper()
	tb.run(t, "prefers-color-scheme: "+scheme, chromedp.ActionFunc(func(ctx context.Context) error {
		return emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{
			{Name: "prefers-color-scheme", Value: scheme},
			{Name: "prefers-reduced-motion", Value: "reduce"},
		}).Do(ctx)
	}))
}
