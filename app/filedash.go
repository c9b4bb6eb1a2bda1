package app

import (
	"context"
	"os"

	"gatehouse/app/dashboards"
	"gatehouse/app/filedash"
)

// DefaultDashboardsDir is served when --dashboards is not given and it
// exists.
const DefaultDashboardsDir = "dashboards"

// dashboardsDir is the dashboards directory cfg names: --dashboards, else
// ./dashboards when it is a directory, else "" (none).
func (c Config) dashboardsDir() string {
	if c.Dashboards != "" {
		return c.Dashboards
	}
	if dir := os.Getenv("GATEHOUSE_DASHBOARDS"); dir != "" {
		return dir // for commands without the flag
	}
	if st, err := os.Stat(DefaultDashboardsDir); err == nil && st.IsDir() {
		return DefaultDashboardsDir
	}
	return ""
}

// openFiles serves the dashboards directory, if any, and reloads its
// edited files until ctx ends.
func (a *App) openFiles(ctx context.Context) error {
	dir := a.cfg.dashboardsDir()
	if dir == "" {
		return nil
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
	dir := cfg.dashboardsDir()
	if dir == "" {
		return nil, func() {}, nil
	}
	fs, err := filedash.Open(ctx, filedash.Config{Dir: dir, Registry: reg})
	if err != nil {
		return nil, nil, err
	}
	return fs.Problems(), fs.Close, nil
}
