package db

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/uptrace/bun"
)

// ActionDevSeed is the audit action of a bulk seed (development only).
const ActionDevSeed = "dev.seed"

// SeedSpec sizes a bulk seed for benchmarks and load tests.
type SeedSpec struct {
	Users, Groups, Memberships int
	// PasswordHash is given to every seeded user (hash once, reuse).
	PasswordHash string
	// Seed makes the data reproducible.
	Seed uint64
	// Progress, when set, is told about each finished step.
	Progress func(string)
}

// SeedResult says what a seed added.
type SeedResult struct {
	Users, Groups, Memberships int
	// BigGroup is the id of the largest seeded group ("Everyone (seed N)").
	BigGroup int64
	// TypicalGroup is the id of an ordinary seeded group.
	TypicalGroup int64
}

var seedFirst = strings.Fields(`Anna Ben Carla David Emma Felix Greta Hugo Ida Jonas Klara Leo Mia Noah Olga Paul Quinn Rosa Sam Tara
	Ugo Vera Will Xena Yann Zoe Ahmed Bea Chen Dana Elif Farid Gina Hana Ivan Jana Kofi Lena Malik Nora Omar Pia Raj Sara Timo Uma Vik Wen Yusuf Zara`)

var seedLast = strings.Fields(`Smith Jones Garcia Müller Rossi Dubois Silva Kim Nguyen Patel Novak Hansen Costa Schmidt Moreau Wong Ivanova
	Kowalski Larsen Fischer Weber Meyer Wagner Becker Hoffmann Schulz Koch Richter Klein Wolf Neumann Schwarz Zimmermann Braun Krüger
	Hofmann Hartmann Lange Schmitt Werner Krause Meier Lehmann Huber Mayer Herrmann Köhler Walter König Mayr`)

var seedTeams = strings.Fields(`Sales Support Finance Engineering Marketing Legal Operations Security Data Design Research Platform
	Billing Growth Partners Training Logistics Procurement Quality Compliance`)

// SeedBulk adds spec.Users users, spec.Groups groups and about
// spec.Memberships memberships with multi-row INSERTs in large
// transactions; it is for benchmarks, not for production data. One group
// ("Everyone") holds a tenth of the memberships (up to every user); the
// rest are spread evenly, a few with expiries (some already past). It
// writes one dev.seed audit row.
func (s *Store) SeedBulk(ctx context.Context, spec SeedSpec) (SeedResult, error) {
	var res SeedResult
	if spec.Users < 0 || spec.Groups < 0 || spec.Memberships < 0 {
		return res, fmt.Errorf("seed sizes must not be negative")
	}
	if spec.Memberships > 0 && (spec.Users == 0 || spec.Groups == 0) {
		return res, fmt.Errorf("memberships need users and groups")
	}
	if max := spec.Users * spec.Groups; spec.Memberships > max {
		return res, fmt.Errorf("at most %d memberships fit %d users in %d groups", max, spec.Users, spec.Groups)
	}
	progress := spec.Progress
	if progress == nil {
		progress = func(string) {}
	}
	rng := rand.New(rand.NewPCG(spec.Seed, 0x9e3779b97f4a7c15))
	now := s.nowMS()
	var firstUser, firstGroup int64
	if err := s.DB.NewSelect().ColumnExpr("COALESCE(MAX(id), 0)").TableExpr("users").Scan(ctx, &firstUser); err != nil {
		return res, storageErr(err)
	}
	if err := s.DB.NewSelect().ColumnExpr("COALESCE(MAX(id), 0)").TableExpr("groups").Scan(ctx, &firstGroup); err != nil {
		return res, storageErr(err)
	}
	firstUser++
	firstGroup++

	// Users, with explicit ids so memberships can name them.
	hash := quoteSQL(spec.PasswordHash)
	err := s.bulkInsert(ctx, "INSERT INTO users (id, email, name, password_hash, is_admin, is_active, must_change_password, created_at, updated_at, last_login_at) VALUES ",
		spec.Users, 1000, func(b *strings.Builder, i int) {
			id := firstUser + int64(i)
			first, last := seedFirst[i%len(seedFirst)], seedLast[(i/len(seedFirst))%len(seedLast)]
			email := strings.ToLower(asciiName(first)+"."+asciiName(last)) + "." + strconv.FormatInt(id, 10) + "@seed.example"
			active := "TRUE"
			if i%50 == 49 {
				active = "FALSE"
			}
			lastLogin := "NULL"
			if i%3 != 0 {
				lastLogin = strconv.FormatInt(now-int64(rng.IntN(30*24*3600))*1000, 10)
			}
			fmt.Fprintf(b, "(%d, %s, %s, %s, FALSE, %s, FALSE, %d, %d, %s)", id, quoteSQL(email), quoteSQL(first+" "+last), hash, active, now, now, lastLogin)
		})
	if err != nil {
		return res, err
	}
	res.Users = spec.Users
	progress(fmt.Sprintf("%d users", spec.Users))

	err = s.bulkInsert(ctx, "INSERT INTO groups (id, name, name_key, description, created_at, updated_at) VALUES ", spec.Groups, 1000,
		func(b *strings.Builder, i int) {
			id := firstGroup + int64(i)
			name := seedTeams[i%len(seedTeams)] + " " + strconv.FormatInt(id, 10)
			desc := "Seeded team for benchmarks"
			if i == 0 {
				name, desc = "Everyone (seed "+strconv.FormatInt(id, 10)+")", "Every seeded user"
			}
			fmt.Fprintf(b, "(%d, %s, %s, %s, %d, %d)", id, quoteSQL(name), quoteSQL(strings.ToLower(name)), quoteSQL(desc), now, now)
		})
	if err != nil {
		return res, err
	}
	res.Groups = spec.Groups
	if spec.Groups > 0 {
		res.BigGroup = firstGroup
		res.TypicalGroup = firstGroup + int64(min(1, spec.Groups-1))
	}
	progress(fmt.Sprintf("%d groups", spec.Groups))

	pairs := seedPairs(rng, spec.Users, spec.Groups, spec.Memberships)
	// Sorted by the primary key, the inserts append to the table's b-tree.
	slices.SortFunc(pairs, func(a, b [2]int) int {
		if a[0] != b[0] {
			return a[0] - b[0]
		}
		return a[1] - b[1]
	})
	const day = 24 * 3600 * 1000
	err = s.bulkInsert(ctx, "INSERT INTO memberships (group_id, user_id, expires_at, created_at) VALUES ", len(pairs), 4000,
		func(b *strings.Builder, i int) {
			p := pairs[i]
			expires := "NULL"
			switch i % 40 {
			case 7:
				expires = strconv.FormatInt(now+int64(1+i%300)*day, 10)
			case 23:
				expires = strconv.FormatInt(now-int64(1+i%30)*day, 10)
			}
			fmt.Fprintf(b, "(%d, %d, %s, %d)", firstGroup+int64(p[0]), firstUser+int64(p[1]), expires, now)
		})
	if err != nil {
		return res, err
	}
	res.Memberships = len(pairs)
	progress(fmt.Sprintf("%d memberships", len(pairs)))
	if s.Dialect == Postgres {
		// Explicit ids do not advance the identity sequences.
		for _, table := range []string{"users", "groups"} {
			if _, err := s.DB.ExecContext(ctx, "SELECT setval(pg_get_serial_sequence(?, 'id'), (SELECT MAX(id) FROM "+table+"))", table); err != nil {
				return res, storageErr(err)
			}
		}
	}
	if _, err := s.DB.ExecContext(ctx, "ANALYZE"); err != nil {
		return res, storageErr(err)
	}
	return res, s.Audit(ctx, Actor{Email: "cli"}, Event{Action: ActionDevSeed, Target: "database",
		Detail: map[string]any{"users": res.Users, "groups": res.Groups, "memberships": res.Memberships}})
}

// seedPairs picks about m distinct (group, user) index pairs: a tenth (up
// to every user) in group 0, the rest spread over the other groups with
// each user in about the same number of them.
func seedPairs(rng *rand.Rand, users, groups, m int) [][2]int {
	pairs := make([][2]int, 0, m)
	if m == 0 {
		return pairs
	}
	big := min(users, m/10)
	if groups == 1 {
		big = m
	}
	for u := range big {
		pairs = append(pairs, [2]int{0, u})
	}
	rest := m - big
	if groups < 2 || rest == 0 {
		return pairs
	}
	per, extra := rest/users, rest%users
	seen := make(map[int]bool, 64)
	for u := range users {
		k := per
		if u < extra {
			k++
		}
		k = min(k, groups-1)
		clear(seen)
		for len(seen) < k {
			g := 1 + rng.IntN(groups-1)
			if !seen[g] {
				seen[g] = true
				pairs = append(pairs, [2]int{g, u})
			}
		}
	}
	return pairs
}

// bulkInsert runs prefix + n rows, batch rows per statement, committing
// every 50 statements. The rows are written by row (numbers and quoted
// strings only, never user input).
func (s *Store) bulkInsert(ctx context.Context, prefix string, n, batch int, row func(b *strings.Builder, i int)) error {
	const statementsPerTx = 50
	var b strings.Builder
	for start := 0; start < n; start += batch * statementsPerTx {
		end := min(n, start+batch*statementsPerTx)
		err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
			if s.Dialect == SQLite {
				// Index pages of a million rows do not fit the default
				// 2,000-page cache; random-order index inserts then thrash.
				if _, err := tx.ExecContext(ctx, "PRAGMA cache_size = -262144"); err != nil {
					return err
				}
			}
			for i := start; i < end; i += batch {
				b.Reset()
				b.WriteString(prefix)
				for j := i; j < min(end, i+batch); j++ {
					if j > i {
						b.WriteByte(',')
					}
					row(&b, j)
				}
				if _, err := tx.ExecContext(ctx, b.String()); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// quoteSQL quotes s as an SQL string literal.
func quoteSQL(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// asciiName folds the umlauts of the seed names for email addresses.
func asciiName(s string) string {
	return strings.NewReplacer("ü", "ue", "ö", "oe", "ä", "ae").Replace(s)
}
