package cli

import (
	"context"
	"fmt"
	"time"

	"gatehouse/db"
)

// seedPassword is every seeded user's password, so a developer can log in
// as any of them.
const seedPassword = "seeded password 2026"

// cmdDev runs hidden developer commands: `gatehouse dev seed` fills a
// database with many users, groups and memberships for benchmarks.
func cmdDev(ctx context.Context, c *CLI, args []string) error {
	sub, args, err := subcommand(c, "dev", "seed [--users N] [--groups N] [--memberships N]", args)
	if err != nil {
		return err
	}
	if sub != "seed" {
		return usageError{fmt.Sprintf("unknown subcommand %q", sub)}
	}
	fs := c.flags("dev seed", "[--users 100000] [--groups 1000] [--memberships 1000000]",
		"Add many users, groups and memberships for benchmarks and load tests (bulk inserts; never on a real database).")
	cfg := dbFlags(fs)
	users := fs.Int("users", 100000, "users to add")
	groups := fs.Int("groups", 1000, "groups to add")
	memberships := fs.Int("memberships", 1000000, "memberships to add")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *users < 0 || *groups < 0 || *memberships < 0 {
		return usageError{"sizes must not be negative"}
	}
	return withStore(ctx, cfg, func(s *db.Store) error {
		start := time.Now()
		hash, err := db.NewHasher(nil, 1, 0).Hash(ctx, seedPassword)
		if err != nil {
			return err
		}
		res, err := s.SeedBulk(ctx, db.SeedSpec{Users: *users, Groups: *groups, Memberships: *memberships, PasswordHash: hash,
			Seed: uint64(time.Now().UnixNano()), Progress: func(step string) {
				fmt.Fprintf(c.Stdout, "  %s (%s)\n", step, time.Since(start).Round(time.Millisecond))
			}})
		if err != nil {
			return err
		}
		fmt.Fprintf(c.Stdout, "seeded %d users, %d groups and %d memberships in %s; every seeded user's password is %q\n",
			res.Users, res.Groups, res.Memberships, time.Since(start).Round(time.Millisecond), seedPassword)
		return nil
	})
}
