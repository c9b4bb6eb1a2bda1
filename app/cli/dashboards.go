package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gatehouse/app"
	"gatehouse/app/dashboards"
	"gatehouse/app/filedash"
)

const dashboardsUsage = "list [--dashboards DIR] | check [DIR] | new SLUG [--dir DIR]"

func cmdDashboards(ctx context.Context, c *CLI, args []string) error {
	sub, args, err := subcommand(c, "dashboards", dashboardsUsage, args)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		return dashboardsList(ctx, c, args)
	case "check":
		return dashboardsCheck(ctx, c, args)
	case "new":
		return dashboardsNew(c, args)
	}
	return unknownSubcommand(sub, "list, check, new")
}

// registerFiles adds the dashboards directory (--dashboards,
// GATEHOUSE_DASHBOARDS or ./dashboards) to a command's registry, saying
// on stderr which files are left out and why.
func registerFiles(ctx context.Context, c *CLI, cfg *app.Config, reg *dashboards.Registry) error {
	problems, release, err := app.RegisterFileDashboards(ctx, cfg, reg)
	if err != nil {
		return err
	}
	release() // commands read the files, they run no query
	for _, p := range problems {
		fmt.Fprintln(c.Stderr, p.String())
	}
	return nil
}

func dashboardsList(ctx context.Context, c *CLI, args []string) error {
	fs := c.flags("dashboards list", "[--demo] [--dashboards DIR]", "List the dashboards this server serves, with their panels: built-in, demo, dashboard files and apps.")
	cfg := dbFlags(fs)
	demoFlag(fs, cfg, "include the demo dashboards (not needed once 'serve --demo' ran on this database)")
	fs.StringVar(&cfg.Dashboards, "dashboards", "", "directory of dashboard files (default ./dashboards when it exists)")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	reg, err := c.registry(ctx, cfg)
	if errors.Is(err, errNoDatabase) { // the binary's own dashboards need no database
		if reg, err = app.BuildRegistry(cfg, c.Dashboards); err == nil {
			err = registerFiles(ctx, c, cfg, reg)
		}
	}
	if err != nil {
		return err
	}
	c.table("SLUG\tTITLE\tPANELS", func(w io.Writer) {
		for _, d := range reg.All() {
			ids := make([]string, len(d.Panels))
			for i, p := range d.Panels {
				ids[i] = p.ID
				if p.RequireGroup != "" {
					ids[i] += " (" + p.RequireGroup + " only)"
				}
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", d.Slug, termEscape(d.Title), strings.Join(ids, ", "))
		}
	})
	return nil
}

func dashboardsCheck(ctx context.Context, c *CLI, args []string) error {
	fs := c.flags("dashboards check", "[DIR]", "Check a directory of dashboard files (default ./dashboards): YAML and format, each source reached, each query prepared by its database. Prints FILE:LINE:COL: message for each problem; exit 0 when all is valid, 1 otherwise.")
	pos, err := c.parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	dir := app.DefaultDashboardsDir
	if d := c.Getenv("GATEHOUSE_DASHBOARDS"); d != "" {
		dir = d
	}
	if len(pos) == 1 {
		dir = pos[0]
	}
	rep, err := filedash.Check(ctx, dir, nil)
	if err != nil {
		return err
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(c.Stderr, p.String())
	}
	if len(rep.Problems) > 0 {
		// Stderr holds only FILE:LINE:COL lines, for editors and scripts.
		fmt.Fprintf(c.Stdout, "%s: %d %s\n", dir, len(rep.Problems), pluralWord(len(rep.Problems), "problem"))
		return errReported
	}
	fmt.Fprintf(c.Stdout, "%s: %d %s and %d %s, all valid\n", dir, rep.Dashboards, pluralWord(rep.Dashboards, "dashboard"),
		rep.Sources, pluralWord(rep.Sources, "source"))
	return nil
}

var newSlugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

func dashboardsNew(c *CLI, args []string) error {
	fs := c.flags("dashboards new", "SLUG [--dir DIR]", "Write a commented starter dashboard file, DIR/SLUG.yaml (default ./dashboards), to edit. It never overwrites a file.")
	dir := fs.String("dir", app.DefaultDashboardsDir, "the dashboards directory")
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	slug := pos[0]
	if !newSlugRE.MatchString(slug) {
		return usageError{fmt.Sprintf("slug %q must be 1-64 of a-z, 0-9 and -, starting with a letter or digit", slug)}
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(*dir, slug+".yaml")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s already exists; choose another slug or edit it", path)
	} else if err != nil {
		return err
	}
	if _, err := io.WriteString(f, filedash.Starter(slug)); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "wrote %s; name its source in %s, then run: gatehouse dashboards check %s\n", path, filepath.Join(*dir, filedash.SourcesFile), *dir)
	return nil
}

func pluralWord(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
