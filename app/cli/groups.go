package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"gatehouse/app/auditlog"
	"gatehouse/app/dashboards"
	"gatehouse/db"
)

func subcommand(c *CLI, name, list string, args []string) (string, []string, error) {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprintf(c.Stdout, "usage: gatehouse %s %s\n", name, list)
		if len(args) == 0 {
			return "", nil, usageError{"missing subcommand"}
		}
		return "", nil, errHelpShown
	}
	return args[0], args[1:], nil
}

var errHelpShown = fmt.Errorf("help shown: %w", flag.ErrHelp)

func cmdGroups(ctx context.Context, c *CLI, args []string) error {
	sub, args, err := subcommand(c, "groups", "create NAME [--description D] | list | delete NAME | members NAME | add-member NAME EMAIL [--expires YYYY-MM-DD] | remove-member NAME EMAIL | add-manager NAME EMAIL | remove-manager NAME EMAIL | map GROUP IDP_GROUP | unmap GROUP IDP_GROUP", args)
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		fs := c.flags("groups create", "NAME [--description D]", "Create a group (1-64 characters, unique regardless of case).")
		cfg := dbFlags(fs)
		desc := fs.String("description", "", "what the group is for")
		pos, err := c.parse(fs, args, 1, 1)
		if err != nil {
			return err
		}
		name, err := db.CleanGroupName(pos[0])
		if err != nil {
			return err
		}
		d, err := db.CleanName("description", *desc, 0, db.MaxDescriptionLen)
		if err != nil {
			return err
		}
		return withStore(ctx, cfg, func(s *db.Store) error {
			g, err := s.CreateGroup(ctx, cliActor(), name, d)
			if errors.Is(err, db.ErrDuplicate) {
				if old, err := s.GroupByName(ctx, name); err == nil && old.Name != name {
					return fmt.Errorf("a group named %q already exists (names are unique regardless of case)", old.Name)
				}
				return fmt.Errorf("a group named %q already exists", name)
			} else if err != nil {
				return err
			}
			fmt.Fprintf(c.Stdout, "created group %s\n", g.Name)
			return nil
		})
	case "list":
		fs := c.flags("groups list", "", "List groups with their member and grant counts.")
		cfg := dbFlags(fs)
		if _, err := c.parse(fs, args, 0, 0); err != nil {
			return err
		}
		return withStore(ctx, cfg, func(s *db.Store) error {
			groups, _, err := s.ListGroups(ctx, db.GroupFilter{Limit: 100000})
			if err != nil {
				return err
			}
			c.table("NAME\tMEMBERS\tGRANTS\tDESCRIPTION", func(w io.Writer) {
				for _, g := range groups {
					fmt.Fprintf(w, "%s\t%d\t%d\t%s\n", termEscape(g.Name), g.MemberCount, g.GrantCount, termEscape(g.Description))
				}
			})
			return nil
		})
	case "delete":
		fs := c.flags("groups delete", "NAME", "Delete a group with its memberships and grants.")
		cfg := dbFlags(fs)
		pos, err := c.parse(fs, args, 1, 1)
		if err != nil {
			return err
		}
		return withStore(ctx, cfg, func(s *db.Store) error {
			g, err := groupByName(ctx, s, pos[0])
			if err != nil {
				return err
			}
			if err := s.DeleteGroup(ctx, cliActor(), g.ID); err != nil {
				return err
			}
			fmt.Fprintf(c.Stdout, "deleted group %s (%d members, %d grants)\n", g.Name, g.MemberCount, g.GrantCount)
			return nil
		})
	case "members":
		fs := c.flags("groups members", "NAME", "List a group's members.")
		cfg := dbFlags(fs)
		pos, err := c.parse(fs, args, 1, 1)
		if err != nil {
			return err
		}
		return withStore(ctx, cfg, func(s *db.Store) error {
			g, err := groupByName(ctx, s, pos[0])
			if err != nil {
				return err
			}
			now := s.Now().UnixMilli()
			c.table("EMAIL\tNAME\tEXPIRES\tSOURCE", func(w io.Writer) {
				for offset := 0; ; offset += 500 {
					members, total, err := s.ListMembers(ctx, g.ID, 500, offset)
					if err != nil {
						fmt.Fprintln(w, "error:", err)
						return
					}
					for _, m := range members {
						exp := "never"
						if m.ExpiresAt != 0 {
							exp = db.FromMS(m.ExpiresAt).Format("2006-01-02")
							if m.Expired(now) {
								exp += " (expired)"
							}
						}
						src := m.Source
						if src == db.SourceIdP {
							src += ":" + m.IdPGroup
						}
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", termEscape(m.Email), termEscape(m.Name), exp, termEscape(src))
					}
					if offset+500 >= total {
						return
					}
				}
			})
			return nil
		})
	case "add-member":
		fs := c.flags("groups add-member", "NAME EMAIL [--expires YYYY-MM-DD]", "Add a user to a group, optionally until a date (access ends at the start of that day, UTC).")
		cfg := dbFlags(fs)
		expires := fs.String("expires", "", "date the membership ends (YYYY-MM-DD, in the future)")
		pos, err := c.parse(fs, args, 2, 2)
		if err != nil {
			return err
		}
		return withStore(ctx, cfg, func(s *db.Store) error {
			exp, err := db.ParseExpiry(*expires, s.Now())
			if err != nil {
				return err
			}
			g, err := groupByName(ctx, s, pos[0])
			if err != nil {
				return err
			}
			u, err := userByEmail(ctx, s, pos[1])
			if err != nil {
				return err
			}
			err = s.AddMember(ctx, cliActor(), g.ID, u.ID, exp)
			if errors.Is(err, db.ErrDuplicate) {
				return fmt.Errorf("%s is already a member of %s", u.Email, g.Name)
			} else if err != nil {
				return err
			}
			fmt.Fprintf(c.Stdout, "added %s to %s\n", u.Email, g.Name)
			return nil
		})
	case "map", "unmap":
		fs := c.flags("groups "+sub, "GROUP IDP_GROUP", map[string]string{
			"map":   "Make an identity provider group feed a group: at every SSO sign-in, people in IDP_GROUP become members (source idp) and people who left it are removed. Members added by hand are never touched.",
			"unmap": "Stop an identity provider group feeding a group. Members it added stay until removed by hand or, while another IdP group feeds the group, until their next sign-in.",
		}[sub])
		cfg := dbFlags(fs)
		pos, err := c.parse(fs, args, 2, 2)
		if err != nil {
			return err
		}
		idpGroup, err := db.CleanIdPGroup(pos[1])
		if err != nil {
			return err
		}
		return withStore(ctx, cfg, func(s *db.Store) error {
			g, err := groupByName(ctx, s, pos[0])
			if err != nil {
				return err
			}
			if sub == "map" {
				if err := s.MapIdPGroup(ctx, cliActor(), g.ID, idpGroup); errors.Is(err, db.ErrDuplicate) {
					return fmt.Errorf("%q already feeds %s", idpGroup, g.Name)
				} else if err != nil {
					return err
				}
				fmt.Fprintf(c.Stdout, "mapped IdP group %q to %s; memberships follow it from each member's next SSO sign-in\n", idpGroup, g.Name)
				return nil
			}
			if err := s.UnmapIdPGroup(ctx, cliActor(), g.ID, idpGroup); errors.Is(err, db.ErrNotFound) {
				return fmt.Errorf("%q does not feed %s", idpGroup, g.Name)
			} else if err != nil {
				return err
			}
			fmt.Fprintf(c.Stdout, "unmapped IdP group %q from %s\n", idpGroup, g.Name)
			return nil
		})
	case "remove-member":
		fs := c.flags("groups remove-member", "NAME EMAIL", "Remove a user from a group; their access ends on their next request.")
		cfg := dbFlags(fs)
		pos, err := c.parse(fs, args, 2, 2)
		if err != nil {
			return err
		}
		return withStore(ctx, cfg, func(s *db.Store) error {
			g, err := groupByName(ctx, s, pos[0])
			if err != nil {
				return err
			}
			u, err := userByEmail(ctx, s, pos[1])
			if err != nil {
				return err
			}
			if err := s.RemoveMember(ctx, cliActor(), g.ID, u.ID); errors.Is(err, db.ErrNotFound) {
				return fmt.Errorf("%s is not a member of %s", u.Email, g.Name)
			} else if err != nil {
				return err
			}
			fmt.Fprintf(c.Stdout, "removed %s from %s\n", u.Email, g.Name)
			return nil
		})
	case "add-manager", "remove-manager":
		fs := c.flags("groups "+sub, "NAME EMAIL", map[string]string{
			"add-manager": "Let a user run a group without being an admin: add and remove its members, set their expiries " +
				"and decide access requests for the dashboards granted to it.",
			"remove-manager": "Stop a user managing a group; they lose it on their next request.",
		}[sub])
		cfg := dbFlags(fs)
		pos, err := c.parse(fs, args, 2, 2)
		if err != nil {
			return err
		}
		return withStore(ctx, cfg, func(s *db.Store) error {
			g, err := groupByName(ctx, s, pos[0])
			if err != nil {
				return err
			}
			u, err := userByEmail(ctx, s, pos[1])
			if err != nil {
				return err
			}
			if sub == "add-manager" {
				if err := s.AddManager(ctx, cliActor(), g.ID, u.ID); errors.Is(err, db.ErrDuplicate) {
					return fmt.Errorf("%s already manages %s", u.Email, g.Name)
				} else if err != nil {
					return err
				}
				fmt.Fprintf(c.Stdout, "%s now manages %s\n", u.Email, g.Name)
				return nil
			}
			if err := s.RemoveManager(ctx, cliActor(), g.ID, u.ID); errors.Is(err, db.ErrNotFound) {
				return fmt.Errorf("%s is not a manager of %s", u.Email, g.Name)
			} else if err != nil {
				return err
			}
			fmt.Fprintf(c.Stdout, "%s no longer manages %s\n", u.Email, g.Name)
			return nil
		})
	}
	return unknownSubcommand(sub, "create", "list", "delete", "members", "add-member", "remove-member")
}

func groupByName(ctx context.Context, s *db.Store, name string) (db.Group, error) {
	g, err := s.GroupByName(ctx, name)
	if errors.Is(err, db.ErrNotFound) {
		var names []string
		if groups, _, err := s.ListGroups(ctx, db.GroupFilter{Limit: maxSuggestFrom}); err == nil {
			for _, g := range groups {
				names = append(names, g.Name)
			}
		}
		return g, fmt.Errorf("no group named %q%s", name, suggestion(name, names))
	}
	return g, err
}

func cmdGrants(ctx context.Context, c *CLI, args []string) error {
	sub, args, err := subcommand(c, "grants", "add DASHBOARD GROUP | remove DASHBOARD GROUP | list", args)
	if err != nil {
		return err
	}
	switch sub {
	case "add", "remove":
		fs := c.flags("grants "+sub, "DASHBOARD GROUP", map[string]string{
			"add":    "Let a group's members open a dashboard.",
			"remove": "Take a dashboard away from a group; members lose access on their next request.",
		}[sub])
		cfg := dbFlags(fs)
		demoFlag(fs, cfg, "include the demo dashboards (not needed once 'serve --demo' ran on this database)")
		pos, err := c.parse(fs, args, 2, 2)
		if err != nil {
			return err
		}
		reg, err := c.registry(ctx, cfg)
		if err != nil {
			return err
		}
		d := reg.Get(pos[0])
		if d == nil {
			return noDashboard(reg, pos[0])
		}
		return withStore(ctx, cfg, func(s *db.Store) error {
			g, err := groupByName(ctx, s, pos[1])
			if err != nil {
				return err
			}
			if sub == "add" {
				err = s.AddGrant(ctx, cliActor(), d.Slug, g.ID)
				if errors.Is(err, db.ErrDuplicate) {
					return fmt.Errorf("%s already has %s", g.Name, d.Slug)
				}
			} else {
				err = s.RemoveGrant(ctx, cliActor(), d.Slug, g.ID)
				if errors.Is(err, db.ErrNotFound) {
					return fmt.Errorf("%s has no grant on %s", g.Name, d.Slug)
				}
			}
			if err != nil {
				return err
			}
			verb := map[string]string{"add": "granted %s to %s\n", "remove": "removed %s from %s\n"}[sub]
			fmt.Fprintf(c.Stdout, verb, d.Slug, g.Name)
			return nil
		})
	case "list":
		fs := c.flags("grants list", "", "List which groups may open which dashboards.")
		cfg := dbFlags(fs)
		if _, err := c.parse(fs, args, 0, 0); err != nil {
			return err
		}
		return withStore(ctx, cfg, func(s *db.Store) error {
			grants, err := s.ListGrants(ctx)
			if err != nil {
				return err
			}
			c.table("DASHBOARD\tGROUP", func(w io.Writer) {
				for _, g := range grants {
					fmt.Fprintf(w, "%s\t%s\n", termEscape(g.Dashboard), termEscape(g.GroupName))
				}
			})
			return nil
		})
	}
	return unknownSubcommand(sub, "add", "remove", "list")
}

func cmdAccess(ctx context.Context, c *CLI, args []string) error {
	sub, args, err := subcommand(c, "access", accessUsage, args)
	if err != nil {
		return err
	}
	switch sub {
	case "export", "plan", "apply":
		return cmdAccessFile(ctx, c, sub, args)
	case "check":
	default:
		return unknownSubcommand(sub, "check", "export", "plan", "apply")
	}
	fs := c.flags("access check", "EMAIL DASHBOARD", "Explain whether a user may open a dashboard. Exit status 0 allowed, 1 denied.")
	cfg := dbFlags(fs)
	demoFlag(fs, cfg, "include the demo dashboards (not needed once 'serve --demo' ran on this database)")
	pos, err := c.parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	reg, err := c.registry(ctx, cfg)
	if err != nil {
		return err
	}
	d := reg.Get(pos[1])
	if d == nil {
		return noDashboard(reg, pos[1])
	}
	return withStore(ctx, cfg, func(s *db.Store) error {
		u, err := userByEmail(ctx, s, pos[0])
		if err != nil {
			return err
		}
		dec, err := dashboards.Check(ctx, s, dashboards.ViewerOf(u), d, nil)
		if err != nil {
			return err
		}
		if dec.Allowed {
			fmt.Fprintf(c.Stdout, "allowed: %s may open %s: %s\n", u.Email, d.Slug, dashboards.TheirReason(dec.Reason))
			for _, p := range d.Panels {
				pd, err := dashboards.Check(ctx, s, dashboards.ViewerOf(u), d, p)
				if err != nil {
					return err
				}
				if !pd.Allowed {
					fmt.Fprintf(c.Stdout, "  except panel %s: %s\n", p.ID, dashboards.TheirReason(pd.Reason))
				}
			}
			return nil
		}
		fmt.Fprintf(c.Stdout, "denied: %s may not open %s: %s\n", u.Email, d.Slug, dashboards.TheirReason(dec.Reason))
		if len(dec.Candidates) > 0 {
			fmt.Fprintf(c.Stdout, "  groups that would grant it: %s\n", strings.Join(dec.Candidates, ", "))
		}
		return errDenied
	})
}

func cmdAudit(ctx context.Context, c *CLI, args []string) error {
	sub, args, err := subcommand(c, "audit", "list [--since 24h] [--limit N] [--json]", args)
	if err != nil {
		return err
	}
	if sub != "list" {
		return unknownSubcommand(sub, "list")
	}
	fs := c.flags("audit list", "[--since 24h] [--limit N] [--actor S] [--action A] [--json]", "Print the audit log, newest first.")
	cfg := dbFlags(fs)
	since := fs.String("since", "", "only events newer than this (24h, 7d, or a date)")
	limit := fs.Int("limit", 100, "at most this many events")
	actor := fs.String("actor", "", "only events whose actor contains this")
	action := fs.String("action", "", "only this action (or a prefix ending in '.', e.g. login.)")
	asJSON := fs.Bool("json", false, "print one JSON object per line (fields in docs/operations.md)")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *limit < 1 || *limit > 100000 {
		return usageError{"--limit must be between 1 and 100000"}
	}
	return withStore(ctx, cfg, func(s *db.Store) error {
		t, err := parseSince(*since, s.Now())
		if err != nil {
			return err
		}
		events, _, err := s.ListAudit(ctx, db.AuditFilter{Since: t, Limit: *limit, Actor: *actor, Action: *action})
		if err != nil {
			return err
		}
		if *asJSON {
			w := bufio.NewWriter(c.Stdout)
			for _, e := range events {
				_, _ = w.Write(auditlog.JSON(e))
			}
			return w.Flush()
		}
		c.table("TIME\tACTOR\tACTION\tTARGET\tIP\tDETAIL", func(w io.Writer) {
			for _, e := range events {
				actor := e.ActorEmail
				if actor == "" {
					actor = "-"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time().Format("2006-01-02 15:04:05"), termEscape(actor), termEscape(e.Action),
					termEscape(e.Target), termEscape(e.IP), termEscape(e.Detail))
			}
		})
		return nil
	})
}

func cmdBackup(ctx context.Context, c *CLI, args []string) error {
	fs := c.flags("backup", "PATH", "Write a consistent copy of the SQLite database to PATH while Gatehouse keeps running.")
	cfg := dbFlags(fs)
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := checkBackupDir(pos[0]); err != nil {
		return err
	}
	return withStore(ctx, cfg, func(s *db.Store) error {
		report, done := c.progress("backing up")
		if report != nil {
			ctx = db.WithProgress(ctx, report)
		}
		err := s.Backup(ctx, pos[0])
		done()
		if err != nil {
			return err
		}
		fmt.Fprintf(c.Stdout, "backup written to %s\n", pos[0])
		return nil
	})
}

// noDashboard is the error for a slug no dashboard has, with a suggestion
// for a typo.
func noDashboard(reg *dashboards.Registry, slug string) error {
	var slugs []string
	for _, d := range reg.All() {
		slugs = append(slugs, d.Slug)
	}
	if s := suggestion(slug, slugs); s != "" {
		return fmt.Errorf("no dashboard %q%s", slug, s)
	}
	return fmt.Errorf("no dashboard %q; 'gatehouse dashboards list' shows them", slug)
}
