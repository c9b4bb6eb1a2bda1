package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"gatehouse/db"
)

const scimUsage = "token create NAME | token list | token revoke NAME"

// cmdSCIM manages the bearer tokens identity providers present at
// /scim/v2 to provision users and push groups.
func cmdSCIM(ctx context.Context, c *CLI, args []string) error {
	sub, args, err := subcommand(c, "scim", scimUsage, args)
	if err != nil {
		return err
	}
	if sub != "token" {
		return unknownSubcommand(sub, "token")
	}
	sub, args, err = subcommand(c, "scim token", "create NAME | list | revoke NAME", args)
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		fs := c.flags("scim token create", "NAME",
			"Make a SCIM bearer token named NAME for an identity provider and print it, alone, on stdout. "+
				"Only its hash is stored: copy it now into the IdP's provisioning settings (base URL <base-url>/scim/v2). "+
				"Changes made with it are audited as scim:NAME.")
		cfg := dbFlags(fs)
		pos, err := c.parse(fs, args, 1, 1)
		if err != nil {
			return err
		}
		return withStore(ctx, cfg, func(s *db.Store) error {
			tok, err := s.CreateSCIMToken(ctx, cliActor(), pos[0])
			if errors.Is(err, db.ErrDuplicate) {
				return fmt.Errorf("a SCIM token named %s exists; revoke it first or choose another name", pos[0])
			} else if err != nil {
				return err
			}
			fmt.Fprintln(c.Stdout, tok)
			return nil
		})
	case "list":
		fs := c.flags("scim token list", "", "List SCIM tokens: when each was made and last used, its last request and its last error.")
		cfg := dbFlags(fs)
		if _, err := c.parse(fs, args, 0, 0); err != nil {
			return err
		}
		return withStore(ctx, cfg, func(s *db.Store) error {
			list, err := s.ListSCIMTokens(ctx)
			if err != nil {
				return err
			}
			if len(list) == 0 {
				fmt.Fprintln(c.Stdout, "no SCIM tokens yet: gatehouse scim token create NAME")
				return nil
			}
			c.table("NAME\tCREATED\tLAST USED\tLAST REQUEST\tLAST ERROR", func(w io.Writer) {
				for _, t := range list {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.Name, when(t.CreatedAt), when(t.LastUsedAt),
						orDash(termEscape(t.LastRequest)), orDash(termEscape(t.LastError)))
				}
			})
			return nil
		})
	case "revoke":
		fs := c.flags("scim token revoke", "NAME", "Revoke a SCIM token: the identity provider's next request with it gets 401.")
		cfg := dbFlags(fs)
		pos, err := c.parse(fs, args, 1, 1)
		if err != nil {
			return err
		}
		return withStore(ctx, cfg, func(s *db.Store) error {
			if err := s.RevokeSCIMToken(ctx, cliActor(), pos[0]); errors.Is(err, db.ErrNotFound) {
				return fmt.Errorf("no SCIM token named %s (see gatehouse scim token list)", pos[0])
			} else if err != nil {
				return err
			}
			fmt.Fprintf(c.Stdout, "revoked SCIM token %s\n", pos[0])
			return nil
		})
	default:
		return unknownSubcommand(sub, "create", "list", "revoke")
	}
}

// when formats stored Unix milliseconds for a table ("-" for never).
func when(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05Z")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
