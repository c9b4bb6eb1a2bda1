package app

import (
	"context"
	"os"
	"path/filepath"

	"gatehouse/app/dashboards"
	"gatehouse/app/filedash"
)

// DefaultDashboardsDir is served when --dashboards is not given and it
// exists.
const DefaultDashboardsDir = "dashboards"

// dashboardsDir is the dashboards directory cfg names: --dashboards
// (GATEHOUSE_DASHBOARDS), else ./dashboards when it is a directory, else,
// for a demo, the demo's own in the data directory (demo set), else ""
// (none).
func (c Config) dashboardsDir() (dir string, demo bool) {
	if c.Dashboards != "" {
		return c.Dashboards, false
	}
	if dir := os.Getenv("GATEHOUSE_DASHBOARDS"); dir != "" {
		return dir, false // for commands without the flag
	}
	if st, err := os.Stat(DefaultDashboardsDir); err == nil && st.IsDir() {
		return DefaultDashboardsDir, false
	}
	if c.Demo {
		return filepath.Join(c.DataDir, "demo-dashboards"), true
	}
	return "", false
}

// openFiles serves the dashboards directory, if any, and reloads its
// edited files until ctx ends.
func (a *App) openFiles(ctx context.Context) error {
	dir, demo := a.cfg.dashboardsDir()
	if dir == "" {
		return nil
	}
	if demo {
		// The demo shows dashboards as files too: its own directory, made
		// on first start and editable from then on.
		if err := filedash.WriteDemo(dir); err != nil {
			return err
		}
	}
	fs, err := filedash.Open(ctx, filedash.Config{Dir: dir, Registry: a.registry, Log: a.log})
	if err != nil {
		return err
	}
	if err := fs.Watch(ctx); err != nil {
		fs.Close()
		return err
	}
	a.files = fs
	a.log.Info("serving dashboard files", "dir", dir, "problems", len(fs.Problems()))
	return nil
}

// fileProblems are the dashboards directory's problems, for the admin
// overview.
func (a *App) fileProblems() []string {
	if a.files == nil {
		return nil
	}
	var out []string
	for _, p := range a.files.Problems() {
		out = append(out, p.String())
	}
	return out
}

// RegisterFileDashboards adds the dashboards directory cfg names (if any)
// to reg for a command, without watching it or reaching any database: a
// broken file is left out. It returns the directory's problems and a
// function that releases it.
func RegisterFileDashboards(ctx context.Context, cfg *Config, reg *dashboards.Registry) ([]filedash.Problem, func(), error) {
	dir, demo := cfg.dashboardsDir()
	if dir == "" {
		return nil, func() {}, nil
	}
	if _, err := os.Stat(dir); demo && err != nil {
		return nil, func() {}, nil // serve --demo has not made it (yet)
	}
	fs, err := filedash.Open(ctx, filedash.Config{Dir: dir, Registry: reg})
	if err != nil {
		return nil, nil, err
	}
	return fs.Problems(), fs.Close, nil
}
