package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"gatehouse/app/apps"
	"gatehouse/db"
)

const appsUsage = "add SLUG URL --title T [--description D] [--user-header NAME] [--external-url URL] | list | set SLUG [--url URL] [--title T] [--description D] [--user-header NAME] [--external-url URL] | remove SLUG | check [SLUG]"

// externalURLHelp says what --external-url is for.
const externalURLHelp = "where your own proxy (nginx, Caddy, Traefik, ingress-nginx) serves the app behind forward authentication: a host (https://grafana.corp.example/) or a path under one (https://tools.corp.example/grafana/); see docs/forward-auth.md"

// cmdApps manages apps: dashboards whose content comes from an upstream
// URL, served by `serve` at SLUG.<apps-domain> behind the same grants.
func cmdApps(ctx context.Context, c *CLI, args []string) error {
	sub, args, err := subcommand(c, "apps", appsUsage, args)
	if err != nil {
		return err
	}
	switch sub {
	case "add":
		fs := c.flags("apps add", "SLUG URL --title T [--description D] [--user-header NAME] [--external-url URL]",
			"Add an app: a dashboard whose content comes from URL, served at SLUG.<apps-domain> to the groups granted SLUG.")
		cfg := dbFlags(fs)
		demoFlag(fs, cfg, "include the demo dashboards when checking that SLUG is free (not needed once 'serve --demo' ran on this database)")
		title := fs.String("title", "", "the app's title (required)")
		desc := fs.String("description", "", "what the app shows")
		header := fs.String("user-header", "", "one more header carrying the viewer's email to the upstream, e.g. X-WEBAUTH-USER for Grafana")
		external := fs.String("external-url", "", externalURLHelp)
		where := servingFlags(fs)
		pos, err := c.parse(fs, args, 2, 2)
		if err != nil {
			return err
		}
		a, err := db.CleanApp(db.App{Slug: pos[0], Upstream: pos[1], Title: *title, Description: *desc, UserHeader: *header, ExternalURL: *external})
		if err != nil {
			return err
		}
		reg, err := c.registry(ctx, cfg)
		if err != nil {
			return err
		}
		if d := reg.Get(a.Slug); d != nil {
			if d.App != nil {
				return fmt.Errorf("an app named %s already exists; change it with 'gatehouse apps set %s'", a.Slug, a.Slug)
			}
			return fmt.Errorf("%s is already a dashboard's slug; choose another", a.Slug)
		}
		return withStore(ctx, cfg, func(s *db.Store) error {
			a, err := s.CreateApp(ctx, cliActor(), a)
			if errors.Is(err, db.ErrDuplicate) {
				return fmt.Errorf("an app named %s already exists; change it with 'gatehouse apps set %s'", a.Slug, a.Slug)
			} else if err != nil {
				return err
			}
			fmt.Fprintf(c.Stdout, "added app %s → %s\n", a.Slug, a.Upstream)
			where(c.Stdout, a.Slug)
			if a.ExternalURL != "" {
				fmt.Fprintf(c.Stdout, "and behind your proxy's forward authentication at %s\n", termEscape(a.ExternalURL))
			}
			fmt.Fprintf(c.Stdout, "grant it like a dashboard: gatehouse grants add %s GROUP\n", a.Slug)
			return nil
		})
	case "set":
		fs := c.flags("apps set", "SLUG [--url URL] [--title T] [--description D] [--user-header NAME] [--external-url URL]",
			"Change an app; flags not given keep their value (--user-header '' removes the header, --external-url '' the external URL).")
		cfg := dbFlags(fs)
		upstream := fs.String("url", "", "the upstream URL")
		title := fs.String("title", "", "the app's title")
		desc := fs.String("description", "", "what the app shows")
		header := fs.String("user-header", "", "one more header carrying the viewer's email to the upstream")
		external := fs.String("external-url", "", externalURLHelp)
		pos, err := c.parse(fs, args, 1, 1)
		if err != nil {
			return err
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		return withStore(ctx, cfg, func(s *db.Store) error {
			a, err := s.AppBySlug(ctx, pos[0])
			if errors.Is(err, db.ErrNotFound) {
				return fmt.Errorf("no app %q; 'gatehouse apps list' shows them", pos[0])
			} else if err != nil {
				return err
			}
			if set["url"] {
				a.Upstream = *upstream
			}
			if set["title"] {
				a.Title = *title
			}
			if set["description"] {
				a.Description = *desc
			}
			if set["user-header"] {
				a.UserHeader = *header
			}
			if set["external-url"] {
				a.ExternalURL = *external
			}
			if a, err = db.CleanApp(a); err != nil {
				return err
			}
			if a, err = s.UpdateApp(ctx, cliActor(), a); err != nil {
				return err
			}
			fmt.Fprintf(c.Stdout, "app %s → %s (%s)\n", a.Slug, a.Upstream, termEscape(a.Title))
			return nil
		})
	case "remove":
		fs := c.flags("apps remove", "SLUG", "Remove an app: it is no longer served and its open connections close. Its grants stay.")
		cfg := dbFlags(fs)
		pos, err := c.parse(fs, args, 1, 1)
		if err != nil {
			return err
		}
		return withStore(ctx, cfg, func(s *db.Store) error {
			err := s.DeleteApp(ctx, cliActor(), pos[0])
			if errors.Is(err, db.ErrNotFound) {
				return fmt.Errorf("no app %q; 'gatehouse apps list' shows them", pos[0])
			} else if err != nil {
				return err
			}
			fmt.Fprintf(c.Stdout, "removed app %s\n", pos[0])
			return nil
		})
	case "list":
		fs := c.flags("apps list", "", "List apps with their upstreams and where they are served.")
		cfg := dbFlags(fs)
		where := servingFlags(fs)
		if _, err := c.parse(fs, args, 0, 0); err != nil {
			return err
		}
		return withStore(ctx, cfg, func(s *db.Store) error {
			list, err := s.ListApps(ctx)
			if err != nil {
				return err
			}
			c.table("SLUG\tUPSTREAM\tTITLE\tUSER HEADER\tEXTERNAL URL", func(w io.Writer) {
				for _, a := range list {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", a.Slug, termEscape(a.Upstream), termEscape(a.Title), a.UserHeader, termEscape(a.ExternalURL))
				}
			})
			if len(list) == 0 {
				fmt.Fprintln(c.Stdout, "no apps yet: gatehouse apps add SLUG URL --title T")
			} else {
				where(c.Stdout, "SLUG")
			}
			return nil
		})
	case "check":
		fs := c.flags("apps check", "[SLUG]", "Check that each app's upstream answers (any HTTP response). Exit status 1 when one is down.")
		cfg := dbFlags(fs)
		timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for each upstream")
		pos, err := c.parse(fs, args, 0, 1)
		if err != nil {
			return err
		}
		return withStore(ctx, cfg, func(s *db.Store) error {
			list, err := s.ListApps(ctx)
			if err != nil {
				return err
			}
			if len(pos) == 1 {
				a, err := s.AppBySlug(ctx, pos[0])
				if errors.Is(err, db.ErrNotFound) {
					return fmt.Errorf("no app %q; 'gatehouse apps list' shows them", pos[0])
				} else if err != nil {
					return err
				}
				list = []db.App{a}
			}
			down := 0
			c.table("SLUG\tUPSTREAM\tSTATE", func(w io.Writer) {
				for _, a := range list {
					state := apps.Check(ctx, http.DefaultTransport, a.Upstream, *timeout)
					if !state.Up {
						down++
					}
					fmt.Fprintf(w, "%s\t%s\t%s\n", a.Slug, termEscape(a.Upstream), state)
				}
			})
			if down > 0 {
				return fmt.Errorf("%d of %d apps are down", down, len(list))
			}
			return nil
		})
	default:
		return unknownSubcommand(sub, "add", "list", "set", "remove", "check")
	}
}

// servingFlags adds --base-url and --apps-domain (as serve has them) to a
// command that says where apps are served; the returned function says it.
func servingFlags(fs *flag.FlagSet) func(w io.Writer, slug string) {
	base := fs.String("base-url", "http://127.0.0.1:8080", "the server's public URL, as serve has it")
	domain := fs.String("apps-domain", "", "the server's apps domain, as serve has it (default: localhost for a loopback base URL)")
	return func(w io.Writer, slug string) {
		d := *domain
		if d == "" {
			d = apps.DefaultDomain(*base)
		}
		if d == "" {
			fmt.Fprintf(w, "apps are off for %s: its host is not loopback, so serve needs --apps-domain D (wildcard DNS *.D and a certificate for it; see docs/apps.md)\n", *base)
			return
		}
		fmt.Fprintf(w, "served at %s/\n", apps.Origin(*base, d, slug))
	}
}

// cmdKeys rotates the key that signs X-Gatehouse-Assertion.
func cmdKeys(ctx context.Context, c *CLI, args []string) error {
	sub, args, err := subcommand(c, "keys", "rotate", args)
	if err != nil {
		return err
	}
	if sub != "rotate" {
		return unknownSubcommand(sub, "rotate")
	}
	fs := c.flags("keys rotate", "", "Make a new key sign the identity assertion apps receive. The old key stays in /.well-known/jwks.json for a day; running servers switch within 30 seconds.")
	cfg := dbFlags(fs)
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	return withStore(ctx, cfg, func(s *db.Store) error {
		kid, err := apps.RotateKeys(ctx, s, cliActor())
		if err != nil {
			return err
		}
		fmt.Fprintf(c.Stdout, "new signing key %s; the previous one stays published for %s\n", kid, apps.RetiredKeyTTL)
		return nil
	})
}
