// Command custom-dashboard is Gatehouse with one more dashboard, written in
// Go: the same binary, flags and commands (`custom-dashboard serve`,
// `custom-dashboard grants add deploys engineering`), plus "deploys".
//
// Dashboards that are only SQL need no Go at all: see docs/dashboards.md.
package main

import (
	"context"
	"os"
	"time"

	"github.com/a-h/templ"

	"gatehouse/app/cli"
	"gatehouse/app/dashboards"
	"gatehouse/components/charts"
)

// deploys is the dashboard this binary adds. Like every dashboard it is
// visible to admins until a group is granted it, and every panel is
// decided for its viewer before Data runs.
var deploys = &dashboards.Dashboard{
	Slug:        "deploys",
	Title:       "Deploys",
	Description: "What shipped this week.",
	Panels: []*dashboards.Panel{
		{
			ID:      "per-day",
			Title:   "Deploys per day",
			Refresh: time.Minute,
			Data: func(ctx context.Context, q dashboards.Query) (templ.Component, error) {
				// Read your data here: q.Store, q.Viewer and q.Now are at hand.
				points := []charts.ChartPoint{{Label: "Mon", Value: 12}, {Label: "Tue", Value: 9}, {Label: "Wed", Value: 15}}
				return charts.BarChart("deploys", "Deploys per day", points, charts.FormatNumber), nil
			},
		},
		{
			ID:    "summary",
			Title: "This week",
			Data: func(ctx context.Context, q dashboards.Query) (templ.Component, error) {
				return charts.Stats(
					charts.StatTile("Deploys", charts.FormatNumber(36), "Mon–Wed", ""),
					charts.StatTile("Rolled back", charts.FormatPercent(0.028), "of deploys", "warn"),
				), nil
			},
		},
	},
}

func main() { os.Exit(cli.MainWith(os.Args[1:], deploys)) }
