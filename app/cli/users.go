package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"gatehouse/db"
)

func cmdUsers(ctx context.Context, c *CLI, args []string) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		fs := c.flags("users", "create|list|set-password|deactivate|activate|promote|demote|reset-mfa …", "Manage users.")
		fs.Usage()
		if len(args) == 0 {
			return usageError{"missing subcommand"}
		}
		return nil
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "create":
		return usersCreate(ctx, c, args)
	case "list":
		return usersList(ctx, c, args)
	case "set-password":
		return usersSetPassword(ctx, c, args)
	case "deactivate", "activate", "promote", "demote":
		return usersToggle(ctx, c, sub, args)
	case "reset-mfa":
		return usersResetMFA(ctx, c, args)
	}
	return unknownSubcommand(sub, "create", "list", "set-password", "deactivate", "activate", "promote", "demote")
}

func usersCreate(ctx context.Context, c *CLI, args []string) error {
	fs := c.flags("users create", "EMAIL [--name N] [--admin] [--password-stdin]",
		"Create a user. Without --password-stdin a temporary password is printed once; it must be changed at first login.")
	cfg := dbFlags(fs)
	name := fs.String("name", "", "display name")
	admin := fs.Bool("admin", false, "make the user an admin")
	stdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	email, err := db.NormalizeEmail(pos[0])
	if err != nil {
		return err
	}
	cleanName, err := db.CleanName("name", *name, 0, 100)
	if err != nil {
		return err
	}
	pw, temporary := "", !*stdin
	if *stdin {
		if pw, err = readPassword(c.Stdin); err != nil {
			return err
		}
		if err := db.CheckPasswordPolicy(pw); err != nil {
			return err
		}
	} else {
		pw = db.TemporaryPassword()
	}
	return withStore(ctx, cfg, func(s *db.Store) error {
		hash, err := db.NewHasher(nil, 1, 0).Hash(ctx, pw)
		if err != nil {
			return err
		}
		u, err := s.CreateUser(ctx, cliActor(), db.NewUser{Email: email, Name: cleanName, PasswordHash: hash, IsAdmin: *admin, MustChangePassword: temporary})
		if errors.Is(err, db.ErrDuplicate) {
			return fmt.Errorf("a user with email %s already exists", email)
		} else if err != nil {
			return err
		}
		role := "viewer" // as the web panel says
		if u.IsAdmin {
			role = "admin"
		}
		fmt.Fprintf(c.Stdout, "created %s %s\n", role, u.Email)
		if temporary {
			fmt.Fprintf(c.Stdout, "temporary password (shown once; must be changed at first login): %s\n", pw)
		}
		return nil
	})
}

func usersList(ctx context.Context, c *CLI, args []string) error {
	fs := c.flags("users list", "[--search S]", "List users.")
	cfg := dbFlags(fs)
	search := fs.String("search", "", "only users whose email or name contains this")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	return withStore(ctx, cfg, func(s *db.Store) error {
		c.table("EMAIL\tNAME\tROLE\tSTATUS\tLAST LOGIN", func(w io.Writer) {
			for offset := 0; ; offset += 500 {
				users, total, err := s.ListUsers(ctx, db.UserFilter{Search: *search, Limit: 500, Offset: offset})
				if err != nil {
					fmt.Fprintln(w, "error:", err)
					return
				}
				for _, u := range users {
					role, status := "viewer", "active"
					if u.IsAdmin {
						role = "admin"
					}
					if !u.IsActive {
						status = "deactivated"
					} else if u.EmailPending {
						status = "email not confirmed"
					} else if u.MustChangePassword {
						status = "must change password"
					}
					last := "never"
					if u.LastLoginAt != 0 {
						last = db.FromMS(u.LastLoginAt).Format("2006-01-02 15:04")
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", termEscape(u.Email), termEscape(u.Name), role, status, last)
				}
				if offset+500 >= total {
					return
				}
			}
		})
		return nil
	})
}

func usersSetPassword(ctx context.Context, c *CLI, args []string) error {
	fs := c.flags("users set-password", "EMAIL --password-stdin", "Set a user's password from standard input; all their sessions are logged out.")
	cfg := dbFlags(fs)
	stdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input (required)")
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if !*stdin {
		return usageError{"--password-stdin is required (passwords are never taken as arguments)"}
	}
	pw, err := readPassword(c.Stdin)
	if err != nil {
		return err
	}
	if err := db.CheckPasswordPolicy(pw); err != nil {
		return err
	}
	return withStore(ctx, cfg, func(s *db.Store) error {
		u, err := userByEmail(ctx, s, pos[0])
		if err != nil {
			return err
		}
		hash, err := db.NewHasher(nil, 1, 0).Hash(ctx, pw)
		if err != nil {
			return err
		}
		if err := s.SetPassword(ctx, cliActor(), u.ID, hash, false); err != nil {
			return err
		}
		fmt.Fprintf(c.Stdout, "password of %s changed; their sessions were logged out\n", u.Email)
		return nil
	})
}

func usersToggle(ctx context.Context, c *CLI, sub string, args []string) error {
	help := map[string]string{
		"deactivate": "Deactivate a user: they cannot log in and all their sessions end at once.",
		"activate":   "Reactivate a deactivated user, or confirm a sign-up whose emailed link was never opened.",
		"promote":    "Make a user an admin.",
		"demote":     "Take admin rights away from a user (the last active admin cannot be demoted).",
	}[sub]
	fs := c.flags("users "+sub, "EMAIL", help)
	cfg := dbFlags(fs)
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	return withStore(ctx, cfg, func(s *db.Store) error {
		u, err := userByEmail(ctx, s, pos[0])
		if err != nil {
			return err
		}
		switch sub {
		case "deactivate":
			err = s.SetActive(ctx, cliActor(), u.ID, false)
		case "activate":
			err = s.SetActive(ctx, cliActor(), u.ID, true)
		case "promote":
			err = s.SetAdmin(ctx, cliActor(), u.ID, true)
		case "demote":
			err = s.SetAdmin(ctx, cliActor(), u.ID, false)
		}
		if errors.Is(err, db.ErrLastAdmin) {
			return fmt.Errorf("%s is the last active admin; promote another user first", u.Email)
		} else if err != nil {
			return err
		}
		fmt.Fprintf(c.Stdout, "%sd %s\n", sub, u.Email)
		return nil
	})
}

func userByEmail(ctx context.Context, s *db.Store, email string) (db.User, error) {
	u, err := s.UserByEmail(ctx, email)
	if errors.Is(err, db.ErrNotFound) {
		var emails []string
		if users, _, err := s.ListUsers(ctx, db.UserFilter{Limit: maxSuggestFrom}); err == nil {
			for _, u := range users {
				emails = append(emails, u.Email)
			}
		}
		return u, fmt.Errorf("no user with email %s%s", email, suggestion(strings.ToLower(email), emails))
	}
	return u, err
}

// usersResetMFA is `gatehouse users reset-mfa EMAIL`: the way back in for
// someone who lost their second factors, including the last admin (it
// needs no login, only access to the database).
func usersResetMFA(ctx context.Context, c *CLI, args []string) error {
	fs := c.flags("users reset-mfa", "EMAIL",
		"Remove a user's second factors (passkeys, authenticator app, recovery codes) and log them out everywhere. "+
			"They sign in with their password next, and set up a new second factor where one is required.")
	cfg := dbFlags(fs)
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	return withStore(ctx, cfg, func(s *db.Store) error {
		u, err := userByEmail(ctx, s, pos[0])
		if err != nil {
			return err
		}
		before, err := s.ResetMFA(ctx, cliActor(), u.ID)
		if err != nil {
			return err
		}
		if !before.Any() && before.RecoveryLeft == 0 {
			fmt.Fprintf(c.Stdout, "%s had no second factor; their sessions were logged out\n", u.Email)
			return nil
		}
		fmt.Fprintf(c.Stdout, "second factors of %s removed (authenticator app: %s, passkeys: %d, recovery codes: %d); their sessions were logged out\n",
			u.Email, yesNo(before.TOTP), before.Passkeys, before.RecoveryLeft)
		return nil
	})
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
