package dashboards_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"

	"gatehouse/app/dashboards"
	"gatehouse/components/charts"
)

// The README's "Add your own dashboard" example, verbatim (TestReadmeExample checks it).
var deploys = &dashboards.Dashboard{
	Slug:        "deploys",
	Title:       "Deploys",
	Description: "What shipped this week.",
	Panels: []*dashboards.Panel{{
		ID:      "per-day",
		Title:   "Deploys per day",
		Refresh: time.Minute,
		Data: func(ctx context.Context, q dashboards.Query) (templ.Component, error) {
			// Read your data here: q.Store, q.Viewer and q.Now are at hand.
			points := []charts.ChartPoint{{Label: "Mon", Value: 12}, {Label: "Tue", Value: 9}, {Label: "Wed", Value: 15}}
			return charts.BarChart("deploys", "Deploys per day", points, charts.FormatNumber), nil
		},
	}},
}

func ExampleRegistry_Register() {
	r := dashboards.NewRegistry()
	if err := r.Register(deploys); err != nil {
		panic(err)
	}
	c, _ := r.Get("deploys").Panel("per-day").Data(context.Background(), dashboards.Query{})
	var buf bytes.Buffer
	_ = c.Render(context.Background(), &buf)
	fmt.Println(strings.Contains(buf.String(), "<svg"))
	// Output: true
}

func TestReadmeExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(readme), "var deploys = ")
	if start < 0 {
		t.Fatal("README has no deploys example")
	}
	end := strings.Index(string(readme)[start:], "\n}\n")
	snippet := string(readme)[start : start+end+3]
	if !strings.Contains(string(src), snippet) {
		t.Errorf("the README's example differs from the one compiled here:\n%s", snippet)
	}
}

// TestCustomDashboardExample builds examples/custom-dashboard, a module of
// its own that imports Gatehouse (go.mod with a replace directive), and
// runs it: its dashboard is listed beside the built-in ones.
func TestCustomDashboardExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a whole binary")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	dir, err := filepath.Abs("../../examples/custom-dashboard")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "custom-dashboard")
	build := exec.Command(gobin, "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build in examples/custom-dashboard: %v\n%s\n(after a change to Gatehouse's go.mod, run 'go mod tidy' there)", err, out)
	}
	list := exec.Command(bin, "dashboards", "list", "--data", filepath.Join(t.TempDir(), "none"))
	list.Dir = t.TempDir()
	out, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("custom-dashboard dashboards list: %v\n%s", err, out)
	}
	for _, want := range []string{"deploys", "Deploys", "per-day, summary", "access"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("custom-dashboard dashboards list lacks %q:\n%s", want, out)
		}
	}
}
