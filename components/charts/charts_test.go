package charts

import (
	"bytes"
	"context"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/a-h/templ"
	"golang.org/x/net/html"
)

// renderString renders c to a string, failing the test on error.
func renderString(t *testing.T, c templ.Component) string {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	return buf.String()
}

// renderDoc renders c and parses it as HTML.
func renderDoc(t *testing.T, c templ.Component) (string, *html.Node) {
	t.Helper()
	out := renderString(t, c)
	doc, err := html.Parse(strings.NewReader(out))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, out)
	}
	return out, doc
}

// findAll returns every element below n named tag ("" for any) that has
// all the given classes.
func findAll(n *html.Node, tag string, classes ...string) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (tag == "" || n.Data == tag) && hasClasses(n, classes...) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func findOne(t *testing.T, n *html.Node, tag string, classes ...string) *html.Node {
	t.Helper()
	found := findAll(n, tag, classes...)
	if len(found) != 1 {
		t.Fatalf("want exactly one <%s> with classes %v, found %d", tag, classes, len(found))
	}
	return found[0]
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func hasClasses(n *html.Node, classes ...string) bool {
	have, _ := attr(n, "class")
	fields := strings.Fields(have)
	for _, c := range classes {
		if !slices.Contains(fields, c) {
			return false
		}
	}
	return true
}

// textOf returns the text content of n.
func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// childTitle returns the text of n's <title> child, if it has one.
func childTitle(n *html.Node) (string, bool) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && c.Data == "title" {
			return textOf(c), true
		}
	}
	return "", false
}

// assertCSPSafe checks what a strict Content-Security-Policy would block or
// an injection would add: style attributes, <script> and <style> elements,
// and event handler attributes.
func assertCSPSafe(t *testing.T, doc *html.Node) {
	t.Helper()
	for _, n := range findAll(doc, "") {
		if n.Data == "script" || n.Data == "style" {
			t.Errorf("found a <%s> element", n.Data)
		}
		for _, a := range n.Attr {
			if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s> has attribute %s=%q", n.Data, a.Key, a.Val)
			}
		}
	}
}

// assertSVGChart checks the accessible frame every chart has and returns
// its <svg>.
func assertSVGChart(t *testing.T, doc *html.Node, title, descPart string) *html.Node {
	t.Helper()
	svg := findOne(t, doc, "svg")
	if role, _ := attr(svg, "role"); role != "img" {
		t.Errorf("svg role = %q, want img", role)
	}
	if vb, _ := attr(svg, "viewBox"); vb != "0 0 640 280" {
		t.Errorf("svg viewBox = %q", vb)
	}
	if w, _ := attr(svg, "width"); w != "100%" {
		t.Errorf("svg width = %q, want 100%%", w)
	}
	if _, ok := attr(svg, "preserveAspectRatio"); !ok {
		t.Error("svg has no preserveAspectRatio")
	}
	var titleEl, descEl *html.Node
	for c := svg.FirstChild; c != nil; c = c.NextSibling {
		switch {
		case c.Type == html.ElementNode && c.Data == "title" && titleEl == nil:
			titleEl = c
		case c.Type == html.ElementNode && c.Data == "desc" && descEl == nil:
			descEl = c
		}
	}
	if titleEl == nil || descEl == nil {
		t.Fatalf("svg needs <title> and <desc> children")
	}
	if got := textOf(titleEl); got != title {
		t.Errorf("svg title = %q, want %q", got, title)
	}
	if got := textOf(descEl); !strings.Contains(got, descPart) {
		t.Errorf("svg desc = %q, want it to contain %q", got, descPart)
	}
	labelledBy, _ := attr(svg, "aria-labelledby")
	if id, _ := attr(titleEl, "id"); id == "" || id != labelledBy {
		t.Errorf("aria-labelledby = %q, title id = %q", labelledBy, id)
	}
	describedBy, _ := attr(svg, "aria-describedby")
	if id, _ := attr(descEl, "id"); id == "" || id != describedBy {
		t.Errorf("aria-describedby = %q, desc id = %q", describedBy, id)
	}
	return svg
}

func points(labels []string, values ...float64) []ChartPoint {
	out := make([]ChartPoint, len(values))
	for i, v := range values {
		out[i] = ChartPoint{Label: labels[i%len(labels)], Value: v}
	}
	return out
}

var months = []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func TestBarChart(t *testing.T) {
	regions := points([]string{"North", "South", "East", "West", "Central"}, 310_000, 720_500, 455_000, 1_200_000, 640_000)
	out, doc := renderDoc(t, BarChart("Sales 2025!", "Sales by region", regions, FormatCompact))

	svg := assertSVGChart(t, doc, "Sales by region", "Highest: West 1.2M; lowest: North 310K")
	assertCSPSafe(t, doc)
	if fig := findOne(t, doc, "figure", "chart"); !strings.Contains(out, `id="sales-2025"`) {
		t.Errorf("figure id not sanitized: %v", fig.Attr)
	}
	if got, _ := attr(svg, "aria-labelledby"); got != "sales-2025-title" {
		t.Errorf("aria-labelledby = %q, want the sanitized id prefix", got)
	}
	if got := textOf(findOne(t, doc, "figcaption", "chart-title")); got != "Sales by region" {
		t.Errorf("visible title = %q", got)
	}

	bars := findAll(svg, "path", "chart-bar")
	if len(bars) != len(regions) {
		t.Fatalf("%d bars, want %d", len(bars), len(regions))
	}
	for i, b := range bars {
		want := regions[i].Label + ": " + FormatCompact(regions[i].Value)
		if got, ok := childTitle(b); !ok || got != want {
			t.Errorf("bar %d title = %q, want %q", i, got, want)
		}
		if d, _ := attr(b, "d"); !strings.HasPrefix(d, "M") || !strings.HasSuffix(d, "Z") {
			t.Errorf("bar %d path = %q", i, d)
		}
	}
	values := findAll(svg, "text", "chart-value")
	if len(values) != len(regions) {
		t.Errorf("%d value labels, want one per bar", len(values))
	}
	if len(values) > 3 && textOf(values[3]) != "1.2M" {
		t.Errorf("value label = %q, want 1.2M", textOf(values[3]))
	}
	ticks := findAll(svg, "text", "chart-ylabel")
	if len(ticks) < 4 || len(ticks) > 6 {
		t.Errorf("%d y ticks, want 4-6", len(ticks))
	}
	if got := textOf(ticks[0]); got != "0" {
		t.Errorf("first tick = %q, want 0", got)
	}
	if got := len(findAll(svg, "line", "chart-gridline")); got != len(ticks) {
		t.Errorf("%d gridlines for %d ticks", got, len(ticks))
	}
	if got := len(findAll(svg, "text", "chart-xlabel")); got != len(regions) {
		t.Errorf("%d x labels, want %d", got, len(regions))
	}

	// The data table below the chart repeats every value.
	table := findOne(t, findOne(t, doc, "details", "chart-data"), "table", "data")
	rows := findAll(findOne(t, table, "tbody"), "tr")
	if len(rows) != len(regions) {
		t.Fatalf("table has %d rows, want %d", len(rows), len(regions))
	}
	if got := textOf(rows[3]); got != "West1.2M" {
		t.Errorf("table row = %q", got)
	}
}

func TestBarChartManyBars(t *testing.T) {
	var days []ChartPoint
	for i := range 30 {
		days = append(days, ChartPoint{Label: "Nov " + FormatNumber(float64(i+1)), Value: float64(i * 3)})
	}
	_, doc := renderDoc(t, BarChart("days", "Tickets per day", days, FormatNumber))
	svg := assertSVGChart(t, doc, "Tickets per day", "Highest: Nov 30 87; lowest: Nov 1 0")
	if got := len(findAll(svg, "path", "chart-bar")); got != 30 {
		t.Errorf("%d bars, want 30", got)
	}
	if got := len(findAll(svg, "text", "chart-value")); got != 0 {
		t.Errorf("%d value labels on 30 bars, want none", got)
	}
	shown := findAll(svg, "text", "chart-xlabel")
	if len(shown) < 3 || len(shown) >= 30 {
		t.Errorf("%d of 30 x labels shown, want every few", len(shown))
	}
	if len(shown) > 0 && textOf(shown[0]) != "Nov 1" {
		t.Errorf("first x label = %q", textOf(shown[0]))
	}
}

func TestBarChartLongLabels(t *testing.T) {
	t.Run("few bars become rows", func(t *testing.T) {
		pts := points([]string{"North America", "Europe, Middle East and Africa", "Asia Pacific"}, 5, 9, 3)
		_, doc := renderDoc(t, BarChart("geo", "By region", pts, FormatNumber))
		fig := findOne(t, doc, "figure", "chart")
		if !hasClasses(fig, "chart-rows") {
			t.Errorf("figure classes %v, want chart-rows", fig.Attr)
		}
		svg := assertSVGChart(t, doc, "By region", "Highest: Europe, Middle East and Africa 9")
		bars := findAll(svg, "path", "chart-bar")
		if len(bars) != 3 {
			t.Fatalf("%d bars", len(bars))
		}
		// The visible label is shortened; the tooltip keeps the full text.
		if got, _ := childTitle(bars[1]); got != "Europe, Middle East and Africa: 9" {
			t.Errorf("title = %q", got)
		}
		names := findAll(svg, "text", "chart-ylabel")
		if !slices.ContainsFunc(names, func(n *html.Node) bool { return strings.HasSuffix(textOf(n), "…") }) {
			t.Error("long row label was not shortened")
		}
	})
	t.Run("many bars rotate", func(t *testing.T) {
		full := []string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
		_, doc := renderDoc(t, BarChart("m", "Orders", points(full, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), FormatNumber))
		labels := findAll(doc, "text", "chart-xlabel")
		if len(labels) != 12 {
			t.Fatalf("%d x labels, want 12", len(labels))
		}
		for _, l := range labels {
			if tr, _ := attr(l, "transform"); !strings.HasPrefix(tr, "rotate(-40 ") {
				t.Errorf("label %q transform = %q, want a rotation", textOf(l), tr)
			}
		}
	})
}

func TestLineChart(t *testing.T) {
	var signups, active []ChartPoint
	for i, m := range months {
		signups = append(signups, ChartPoint{Label: m, Value: 1000 + 100*float64(i)})
		active = append(active, ChartPoint{Label: m, Value: 5000 - 200*float64(i)})
	}
	series := []Series{{Name: "Signups", Points: signups}, {Name: "Active", Points: active}}
	_, doc := renderDoc(t, LineChart("users", "Users per month", series, FormatCompact))

	svg := assertSVGChart(t, doc, "Users per month", "From Jan to Dec, Signups: highest Dec 2.1K, lowest Jan 1K; Active: highest Jan 5K, lowest Dec 2.8K.")
	assertCSPSafe(t, doc)
	lines := findAll(svg, "path", "chart-line")
	if len(lines) != 2 || !hasClasses(lines[0], "s1") || !hasClasses(lines[1], "s2") {
		t.Fatalf("want two lines with classes s1, s2; got %d", len(lines))
	}
	if got := len(findAll(svg, "path", "chart-area")); got != 0 {
		t.Errorf("multi-series chart has %d area fills, want none", got)
	}
	marks := findAll(svg, "circle", "chart-point")
	if len(marks) != 24 {
		t.Fatalf("%d points, want 24", len(marks))
	}
	for i, m := range marks {
		s := series[i/12]
		want := s.Name + ", " + s.Points[i%12].Label + ": " + FormatCompact(s.Points[i%12].Value)
		if got, ok := childTitle(m); !ok || got != want {
			t.Errorf("point %d title = %q, want %q", i, got, want)
		}
	}
	legend := findAll(findOne(t, doc, "ul", "chart-legend"), "li")
	if len(legend) != 2 || textOf(legend[0]) != "Signups" || textOf(legend[1]) != "Active" {
		t.Errorf("legend = %d items", len(legend))
	}
	if got := len(findAll(legend[1], "span", "legend-swatch", "s2")); got != 1 {
		t.Error("second legend item has no s2 swatch")
	}
	if got := len(findAll(svg, "text", "chart-xlabel")); got != 12 {
		t.Errorf("%d x labels, want all 12 months", got)
	}
	head := findAll(findOne(t, doc, "thead"), "th")
	if len(head) != 3 || textOf(head[2]) != "Active" {
		t.Errorf("table header has %d columns", len(head))
	}
}

func TestLineChartSingleSeries(t *testing.T) {
	pts := points(months[:3], 4, 8, 6)
	_, doc := renderDoc(t, LineChart("one", "Single", []Series{{Name: "Only", Points: pts}}, nil))
	svg := assertSVGChart(t, doc, "Single", "From Jan to Mar, highest Feb 8, lowest Jan 4.")
	if got := len(findAll(doc, "ul", "chart-legend")); got != 0 {
		t.Error("single series should not get a legend")
	}
	if got := len(findAll(svg, "path", "chart-area", "s1")); got != 1 {
		t.Errorf("%d area fills, want 1", got)
	}
	if got, _ := childTitle(findAll(svg, "circle", "chart-point")[1]); got != "Feb: 8" {
		t.Errorf("point title = %q", got)
	}
}

func TestLineChartUsesFirstSeriesLabels(t *testing.T) {
	first := points(months[:3], 1, 2, 3)
	long := points(months[3:], 1, 2, 3, 4, 5)
	short := points(months[:1], 7)
	series := []Series{{Name: "A", Points: first}, {Name: "B", Points: long}, {Name: "C", Points: short}}
	_, doc := renderDoc(t, LineChart("x", "Mixed", series, nil))
	if got := len(findAll(doc, "circle", "chart-point")); got != 3+3+1 {
		t.Errorf("%d points, want 7 (series cut to the first's length)", got)
	}
	if len(series[1].Points) != 5 {
		t.Error("LineChart changed the caller's series")
	}
	labels := findAll(doc, "text", "chart-xlabel")
	if len(labels) != 3 || textOf(labels[0]) != "Jan" {
		t.Errorf("x labels %d, want the first series' 3", len(labels))
	}
	// Missing values are blank in the data table, not zero.
	rows := findAll(findOne(t, doc, "tbody"), "tr")
	if got := textOf(rows[2]); got != "Mar33" {
		t.Errorf("row = %q, want Mar, 3, 3 and a blank", got)
	}
}

func TestChartsEscapeUserText(t *testing.T) {
	const script = `<script>alert(1)</script>`
	const attack = `" onmouseover="x`
	bad := []ChartPoint{{Label: script, Value: 3}, {Label: attack, Value: 5}}
	components := map[string]templ.Component{
		"bar":   BarChart(attack, script, bad, FormatNumber),
		"rows":  BarChart("rows", attack, []ChartPoint{{Label: script + script, Value: 1}}, FormatNumber),
		"line":  LineChart(script, attack, []Series{{Name: script, Points: bad}, {Name: attack, Points: bad}}, FormatNumber),
		"tile":  StatTile(script, attack, script, attack),
		"table": DataTable(script, []string{script, attack}, [][]string{{attack, script}}, []bool{false, true}),
	}
	for name, c := range components {
		t.Run(name, func(t *testing.T) {
			out, doc := renderDoc(t, c)
			assertCSPSafe(t, doc)
			if strings.Contains(out, "<script") {
				t.Error("output contains a raw <script")
			}
			if strings.Contains(out, `" onmouseover=`) {
				t.Error("output contains an unescaped attribute break-out")
			}
			text := textOf(doc)
			if !strings.Contains(text, script) && !strings.Contains(text, attack) {
				t.Errorf("user text is missing from the rendered text:\n%s", text)
			}
		})
	}
}

func TestChartsNeverInlineStyles(t *testing.T) {
	mixed := points([]string{"a", "b", "c", "d"}, -3, 0, 7.5, 2)
	row := templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		return StatRow().Render(templ.WithChildren(ctx, StatTile("Users", "1,204", "+3%", "good")), w)
	})
	for name, c := range map[string]templ.Component{
		"bar":   BarChart("b", "B", mixed, FormatCurrency),
		"line":  LineChart("l", "L", []Series{{Name: "x", Points: mixed}, {Name: "y", Points: mixed}}, FormatPercent),
		"empty": BarChart("e", "E", nil, nil),
		"row":   row,
		"table": DataTable("", []string{"a"}, nil, nil),
	} {
		t.Run(name, func(t *testing.T) {
			_, doc := renderDoc(t, c)
			assertCSPSafe(t, doc)
		})
	}
}

func TestEmptyCharts(t *testing.T) {
	for name, c := range map[string]templ.Component{
		"bar nil":       BarChart("a", "Refunds", nil, FormatNumber),
		"bar empty":     BarChart("a", "Refunds", []ChartPoint{}, FormatNumber),
		"line nil":      LineChart("a", "Refunds", nil, FormatNumber),
		"line no point": LineChart("a", "Refunds", []Series{{Name: "x"}}, FormatNumber),
	} {
		t.Run(name, func(t *testing.T) {
			_, doc := renderDoc(t, c)
			if got := len(findAll(doc, "svg")); got != 0 {
				t.Errorf("empty chart rendered %d svg", got)
			}
			if got := textOf(findOne(t, doc, "p", "chart-empty")); got != "No data yet" {
				t.Errorf("empty state = %q", got)
			}
			if got := textOf(findOne(t, doc, "figcaption")); got != "Refunds" {
				t.Errorf("title = %q", got)
			}
		})
	}
}

func TestDegenerateDataStaysFinite(t *testing.T) {
	cases := map[string]templ.Component{
		"bar all zero":   BarChart("z", "Z", points(months, 0, 0, 0), FormatNumber),
		"line all zero":  LineChart("z", "Z", []Series{{Points: points(months, 0, 0, 0)}}, FormatNumber),
		"bar one":        BarChart("o", "O", points(months, 42), FormatNumber),
		"line one":       LineChart("o", "O", []Series{{Points: points(months, -42)}}, FormatNumber),
		"bar negative":   BarChart("n", "N", points(months, -5, -12, -1), FormatNumber),
		"line negative":  LineChart("n", "N", []Series{{Points: points(months, -4500, 1200, -300, 0)}}, FormatCompact),
		"line flat":      LineChart("f", "F", []Series{{Points: points(months, 7, 7, 7)}}, FormatCompact),
		"nan and inf":    BarChart("x", "X", points(months, math.NaN(), math.Inf(1), math.Inf(-1), 3), FormatNumber),
		"line nan":       LineChart("x", "X", []Series{{Points: points(months, math.NaN(), math.Inf(1), 2)}}, FormatNumber),
		"huge":           BarChart("h", "H", points(months, math.MaxFloat64, -math.MaxFloat64), FormatCompact),
		"tiny":           LineChart("t", "T", []Series{{Points: points(months, 1e-300, 2e-300)}}, FormatNumber),
		"unlabelled":     BarChart("u", "U", []ChartPoint{{Value: 1}, {Value: 2}}, nil),
		"rows negative":  BarChart("r", "R", points([]string{"A very long team name", "Another long one"}, -40, 25), FormatCurrency),
		"columns tiny %": BarChart("p", "P", points(months, 0.001, 0.002), FormatPercent),
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			out, doc := renderDoc(t, c)
			if strings.Contains(out, "NaN") || strings.Contains(out, "Inf") {
				t.Errorf("output contains NaN or Inf")
			}
			// Geometry is plain decimals: no exponents either.
			for _, n := range findAll(doc.LastChild, "") {
				for _, a := range n.Attr {
					if geometry[a.Key] && exponent.MatchString(a.Val) {
						t.Errorf("<%s %s=%q> uses an exponent", n.Data, a.Key, a.Val)
					}
				}
			}
			assertSVGChart(t, doc, textOf(findOne(t, doc, "figcaption")), ".")
		})
	}
}

var (
	geometry = map[string]bool{"x": true, "y": true, "dy": true, "x1": true, "x2": true, "y1": true, "y2": true,
		"cx": true, "cy": true, "r": true, "d": true, "transform": true}
	exponent = regexp.MustCompile(`[0-9][eE][-+]?[0-9]`)
)

func TestLineChartNegativeAxis(t *testing.T) {
	_, doc := renderDoc(t, LineChart("n", "Net", []Series{{Points: points(months, -4500, 1200, 300)}}, FormatCompact))
	var ticks []string
	for _, n := range findAll(doc, "text", "chart-ylabel") {
		ticks = append(ticks, textOf(n))
	}
	if !slices.Equal(ticks, []string{"-6K", "-4K", "-2K", "0", "2K"}) {
		t.Errorf("ticks = %q, want -6K..2K through 0", ticks)
	}
	if got := len(findAll(doc, "line", "chart-axis")); got != 1 {
		t.Errorf("%d zero axes", got)
	}
}

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		want   []float64
	}{
		{0, 1_200_000, []float64{0, 500_000, 1_000_000, 1_500_000}},
		{0, 310, []float64{0, 100, 200, 300, 400}},
		{0, 100, []float64{0, 25, 50, 75, 100}},
		{0, 98_000, []float64{0, 25_000, 50_000, 75_000, 100_000}},
		{-45, 120, []float64{-50, 0, 50, 100, 150}},
		{-4500, 4500, []float64{-5000, -2500, 0, 2500, 5000}},
		{0, 7, []float64{0, 2, 4, 6, 8}},
		{0, 3, []float64{0, 1, 2, 3}},
		{0, 2, []float64{0, 0.5, 1, 1.5, 2}},
		{0, 0.12, []float64{0, 0.05, 0.1, 0.15}},
		{0, 0.4, []float64{0, 0.1, 0.2, 0.3, 0.4}},
		{-0.3, 0, []float64{-0.3, -0.2, -0.1, 0}},
		{0, 0, []float64{0, 0.5, 1}},
		{5, 5, []float64{0, 2, 4, 6}},
		{-3, -3, []float64{-3, -2, -1, 0}},
		{120, -45, []float64{-50, 0, 50, 100, 150}},
		{math.NaN(), 10, []float64{0, 2.5, 5, 7.5, 10}},
	}
	for _, tt := range tests {
		got := niceTicks(tt.lo, tt.hi)
		if !slices.Equal(got, tt.want) {
			t.Errorf("niceTicks(%v, %v) = %v, want %v", tt.lo, tt.hi, got, tt.want)
		}
	}
}

func TestNiceTicksProperties(t *testing.T) {
	for _, r := range [][2]float64{{0, 1}, {0, 13}, {-7, 3}, {0, 999}, {0, 1234567}, {-0.02, 0.9}, {0, 48213}, {1e-9, 3e-9}, {0, 1e300}} {
		ticks := niceTicks(r[0], r[1])
		if len(ticks) < 3 || len(ticks) > 6 {
			t.Errorf("%v: %d ticks %v", r, len(ticks), ticks)
		}
		if ticks[0] > r[0] || ticks[len(ticks)-1] < r[1] {
			t.Errorf("%v: ticks %v do not cover the range", r, ticks)
		}
		step := ticks[1] - ticks[0]
		mant := step / math.Pow(10, math.Floor(math.Log10(step)))
		if !slices.ContainsFunc([]float64{1, 2, 2.5, 5}, func(m float64) bool { return math.Abs(m-mant) < 1e-6 }) {
			t.Errorf("%v: step %v is not 1, 2, 2.5 or 5 × 10^n", r, step)
		}
	}
}

func TestFormatNumber(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{7, "7"},
		{999, "999"},
		{1000, "1,000"},
		{1234567, "1,234,567"},
		{-1234567, "-1,234,567"},
		{1234.56, "1,234.6"},
		{0.25, "0.3"},
		{12.04, "12"},
		{-0.04, "0"},
		{-0.05, "-0.1"},
		{1e15, "1,000,000,000,000,000"},
		{math.NaN(), "—"},
		{math.Inf(1), "—"},
	}
	for _, tt := range tests {
		if got := FormatNumber(tt.in); got != tt.want {
			t.Errorf("FormatNumber(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatCompact(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{950, "950"},
		{12.34, "12.3"},
		{999.96, "1K"},
		{1000, "1K"},
		{1234, "1.2K"},
		{-4500, "-4.5K"},
		{99_960, "100K"},
		{310_000, "310K"},
		{312_500, "313K"},
		{999_960, "1M"},
		{1_234_567, "1.2M"},
		{2.5e9, "2.5B"},
		{7e12, "7T"},
		{-0.01, "0"},
		{math.Inf(-1), "—"},
	}
	for _, tt := range tests {
		if got := FormatCompact(tt.in); got != tt.want {
			t.Errorf("FormatCompact(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatCurrency(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "$0"},
		{950, "$950"},
		{19.99, "$20"},
		{9.99, "$10"},
		{1_200_000, "$1.2M"},
		{-4500, "-$4.5K"},
		{-0.001, "$0"},
		{math.NaN(), "—"},
	}
	for _, tt := range tests {
		if got := FormatCurrency(tt.in); got != tt.want {
			t.Errorf("FormatCurrency(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatPercent(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0%"},
		{0.123, "12.3%"},
		{0.5, "50%"},
		{1, "100%"},
		{-0.05, "-5%"},
		{0.0004, "0%"},
		{12.5, "1,250%"},
		{math.NaN(), "—"},
	}
	for _, tt := range tests {
		if got := FormatPercent(tt.in); got != tt.want {
			t.Errorf("FormatPercent(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		hours float64
		want  string
	}{
		{0, "0m"},
		{0.001, "<1m"},
		{0.75, "45m"},
		{59.6 / 60, "1h"},
		{1, "1h"},
		{3.2, "3.2h"},
		{23.96, "1d"},
		{24, "1d"},
		{50.4, "2.1d"},
		{24 * 1500, "1,500d"},
		{-0.75, "-45m"},
		{-3.2, "-3.2h"},
		{math.Inf(1), "—"},
	}
	for _, tt := range tests {
		if got := FormatDuration(tt.hours); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.hours, got, tt.want)
		}
	}
}

func TestChartID(t *testing.T) {
	tests := map[string]string{
		"revenue":           "revenue",
		"Sales 2025!":       "sales-2025",
		"a--b":              "a-b",
		`"><script>`:        "script",
		"":                  "chart",
		"Ünïcode panel":     "n-code-panel",
		"  team/leads only": "team-leads-only",
	}
	for in, want := range tests {
		if got := chartID(in); got != want {
			t.Errorf("chartID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStatTiles(t *testing.T) {
	tiles := templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		for _, tone := range []string{"good", "bad", "warn", "", "purple"} {
			note := "note " + tone
			if tone == "" {
				note = ""
			}
			if err := StatTile("Label "+tone, "1.2M", note, tone).Render(ctx, w); err != nil {
				return err
			}
		}
		return nil
	})
	var buf bytes.Buffer
	if err := StatRow().Render(templ.WithChildren(context.Background(), tiles), &buf); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	assertCSPSafe(t, doc)
	row := findOne(t, doc, "div", "stat-row")
	got := findAll(row, "div", "stat-tile")
	if len(got) != 5 {
		t.Fatalf("%d tiles in the row, want 5", len(got))
	}
	for i, tone := range []string{"good", "bad", "warn"} {
		if !hasClasses(got[i], "tone-"+tone) {
			t.Errorf("tile %d lacks tone-%s", i, tone)
		}
		if textOf(findOne(t, got[i], "div", "stat-note")) != "note "+tone {
			t.Errorf("tile %d note missing", i)
		}
	}
	if class, _ := attr(got[4], "class"); class != "stat-tile" {
		t.Errorf("unknown tone gave class %q, want plain stat-tile", class)
	}
	if n := len(findAll(got[3], "div", "stat-note")); n != 0 {
		t.Error("empty note rendered")
	}
	if textOf(findOne(t, got[0], "div", "stat-value")) != "1.2M" || textOf(findOne(t, got[0], "div", "stat-label")) != "Label good" {
		t.Error("tile value or label missing")
	}
}

func TestDataTable(t *testing.T) {
	rows := [][]string{{"Acme", "West", "1,204"}, {"Globex"}, {"Initech", "East", "64", "extra"}}
	_, doc := renderDoc(t, DataTable("Top customers", []string{"Customer", "Region", "Orders"}, rows, []bool{false, false, true}))
	assertCSPSafe(t, doc)
	table := findOne(t, doc, "table", "data")
	if got := textOf(findOne(t, table, "caption")); got != "Top customers" {
		t.Errorf("caption = %q", got)
	}
	head := findAll(table, "th")
	if len(head) != 3 || !hasClasses(head[2], "num") || hasClasses(head[0], "num") {
		t.Errorf("header cells: %d, numeric class on the wrong column", len(head))
	}
	for _, tr := range findAll(findOne(t, table, "tbody"), "tr") {
		cells := findAll(tr, "td")
		if len(cells) != 3 {
			t.Errorf("row %q has %d cells, want 3", textOf(tr), len(cells))
			continue
		}
		if !hasClasses(cells[2], "num") {
			t.Errorf("numeric cell %q lacks class num", textOf(cells[2]))
		}
		if _, ok := attr(cells[0], "class"); ok {
			t.Errorf("text cell %q has a class", textOf(cells[0]))
		}
	}

	_, doc = renderDoc(t, DataTable("", []string{"A", "B"}, nil, nil))
	if got := len(findAll(doc, "caption")); got != 0 {
		t.Error("empty caption rendered")
	}
	empty := findOne(t, doc, "td", "empty")
	if textOf(empty) != "No data yet" {
		t.Errorf("empty row = %q", textOf(empty))
	}
	if span, _ := attr(empty, "colspan"); span != "2" {
		t.Errorf("colspan = %q, want 2", span)
	}
}

func TestWholeTicks(t *testing.T) {
	for _, c := range []struct {
		in, want []float64
	}{
		{[]float64{0, 0.5, 1}, []float64{0, 1}},
		{[]float64{0, 0.5, 1, 1.5, 2, 2.5, 3}, []float64{0, 1, 2, 3}},
		{[]float64{0, 2.5, 5, 7.5, 10}, []float64{0, 2, 4, 6, 8, 10}},
		{[]float64{0, 0.2, 0.4, 0.6, 0.8}, []float64{0, 1}},
		{[]float64{0, 5, 10, 15}, []float64{0, 5, 10, 15}},
	} {
		if got := wholeTicks(c.in); !slices.Equal(got, c.want) {
			t.Errorf("wholeTicks(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestBarLabelsByWidth: the x labels a chart hides depend on the width it
// is drawn at. Four groups ("sales-leaders" the longest) are all labelled in
// a middling chart (a half-width panel at 1280px): none is chart-minor;
// only where the text is drawn largest (below 400px) may some go.
func TestBarLabelsByWidth(t *testing.T) {
	groups := points([]string{"sales", "finance", "sales-leaders", "support-desk"}, 2, 1, 1, 1)
	_, doc := renderDoc(t, BarChart("groups", "Members per group", groups, FormatNumber))
	labels := findAll(doc, "text", "chart-xlabel")
	if len(labels) != 4 {
		t.Fatalf("%d x labels, want 4", len(labels))
	}
	for _, l := range findAll(doc, "text", "chart-xlabel", "chart-minor") {
		t.Errorf("label %q is hidden in a middling chart", l.FirstChild.Data)
	}
	// A long monthly series still thins out: some labels go at every width
	// but the widest.
	months := points([]string{"Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"},
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
	_, doc = renderDoc(t, BarChart("months", "Per month", months, FormatNumber))
	if len(findAll(doc, "text", "chart-xlabel", "chart-minor"))+len(findAll(doc, "text", "chart-xlabel", "chart-minor-narrow")) == 0 {
		t.Error("eighteen months are all labelled in a narrow chart")
	}
}

// TestTitleHidden: a chart whose panel heading says the same words keeps
// its title for screen readers and the data table, but not on screen.
func TestTitleHidden(t *testing.T) {
	points := []ChartPoint{{Label: "north", Value: 3}}
	for name, c := range map[string]templ.Component{
		"bar":  BarChart("b", "Orders by region", points, FormatNumber, TitleHidden),
		"line": LineChart("l", "Orders by region", []Series{{Name: "orders", Points: points}}, FormatNumber, TitleHidden),
	} {
		out := renderString(t, c)
		if !strings.Contains(out, `<figcaption class="chart-title visually-hidden">Orders by region</figcaption>`) {
			t.Errorf("%s: the caption is not hidden from the screen only:\n%s", name, out)
		}
		if !strings.Contains(out, ">Orders by region</title>") {
			t.Errorf("%s: the chart lost its accessible title", name)
		}
	}
	if out := renderString(t, BarChart("b", "Orders", points, FormatNumber)); !strings.Contains(out, `<figcaption class="chart-title">Orders</figcaption>`) {
		t.Errorf("without the option the caption shows:\n%s", out)
	}
}
