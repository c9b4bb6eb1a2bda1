package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"gatehouse/db"
)

// cmdCopy copies all of one database into an empty other one: how a team
// moves from SQLite to PostgreSQL (or back, or to a new server).
func cmdCopy(ctx context.Context, c *CLI, args []string) error {
	fs := c.flags("copy", "--from SQLITE_FILE_OR_DSN --to DSN_OR_SQLITE_FILE",
		"Copy every user, group, membership, grant, session, setting (signing keys included), audit event,\n"+
			"access request and setup token from one database into an empty one, keeping ids, in one\n"+
			"transaction: logins and sessions keep working. The target is migrated first and must hold no data.\n"+
			"The source is only read; stop the servers writing to it first, or their later changes are not copied.\n"+
			"--from may name a data directory (holding gatehouse.db), a SQLite file or a postgres:// DSN.")
	from := fs.String("from", "", "the database to copy from")
	to := fs.String("to", "", "the empty database to copy into")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		return usageError{"both --from and --to are required"}
	}
	src, err := copySourcePath(*from)
	if err != nil {
		return err
	}
	dst := *to
	if !db.IsPostgresDSN(dst) {
		if st, err := os.Stat(dst); err == nil && st.IsDir() {
			dst = filepath.Join(dst, "gatehouse.db")
		}
	}
	if sameDatabase(src, dst) {
		return errors.New("--from and --to name the same database")
	}

	source, err := db.Open(ctx, db.Config{DSN: src})
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer source.Close()
	if !db.IsPostgresDSN(dst) {
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return fmt.Errorf("cannot create the directory for %s: %w", dst, errors.Unwrap(err))
		}
	}
	target, err := db.Open(ctx, db.Config{DSN: dst})
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	defer target.Close()
	if _, err := target.Migrate(ctx); err != nil {
		return fmt.Errorf("target: %w", err)
	}

	report, done := c.progress("copying")
	if report != nil {
		ctx = db.WithProgress(ctx, report)
	}
	copied, err := source.CopyInto(ctx, target)
	done()
	if err != nil {
		if errors.Is(err, db.ErrTargetNotEmpty) {
			return fmt.Errorf("%w; gatehouse copy only fills a new, empty database (nothing was copied)", err)
		}
		return err
	}
	c.table("TABLE\tROWS", func(w io.Writer) {
		for _, t := range copied {
			fmt.Fprintf(w, "%s\t%d\n", t.Table, t.Rows)
		}
	})
	fmt.Fprintf(c.Stdout, "copied %s into %s\n", describeDSN(src), describeDSN(dst))
	return nil
}

// copySourcePath resolves --from: a DSN, a SQLite file, or a data directory
// holding gatehouse.db. A SQLite source must exist (opening would create it).
func copySourcePath(from string) (string, error) {
	if db.IsPostgresDSN(from) {
		return from, nil
	}
	st, err := os.Stat(from)
	if err == nil && st.IsDir() {
		from = filepath.Join(from, "gatehouse.db")
		st, err = os.Stat(from)
	}
	switch {
	case err != nil:
		return "", fmt.Errorf("the source database %s does not exist", from)
	case st.Size() == 0:
		return "", fmt.Errorf("the source database %s is empty", from)
	}
	return from, nil
}

func sameDatabase(a, b string) bool {
	if db.IsPostgresDSN(a) || db.IsPostgresDSN(b) {
		return a == b
	}
	pa, errA := filepath.Abs(a)
	pb, errB := filepath.Abs(b)
	if errA != nil || errB != nil {
		return a == b
	}
	if pa == pb {
		return true
	}
	sa, errA := os.Stat(pa)
	sb, errB := os.Stat(pb)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

// describeDSN names a database for output, without a password.
func describeDSN(dsn string) string {
	if db.IsPostgresDSN(dsn) {
		return db.RedactDSN(dsn)
	}
	return dsn
}
