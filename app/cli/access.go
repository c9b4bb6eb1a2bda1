package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gatehouse/app/accessfile"
	"gatehouse/db"
)

const accessUsage = "check EMAIL DASHBOARD | export | plan FILE | apply FILE"

// errChanges ends `access plan` with exit status 2: the file differs from
// the database.
var errChanges = errors.New("changes to apply")

// errReported ends a command with exit status 1 after it has written its
// own errors to stderr.
var errReported = errors.New("errors reported")

const accessFileHeader = `Gatehouse access file: every group with its description, managers, IdP
group mappings and members, and which groups may open which dashboard.
Check it with 'gatehouse access plan FILE' (exit 0: nothing to change,
2: changes, 1: errors); apply it with 'gatehouse access apply FILE'.
Users are never created or deleted by this file. Format: docs/access-as-code.md`

// cmdAccessFile runs `access export`, `access plan FILE` and `access apply FILE`.
func cmdAccessFile(ctx context.Context, c *CLI, sub string, args []string) error {
	help := map[string][2]string{
		"export": {"", "Print the whole access state (groups with description, managers, IdP group mappings and members; grants) as YAML, in a stable order."},
		"plan": {"FILE", "Print what 'access apply FILE' would change, one +/-/~ line per group, member, expiry, manager, IdP group mapping and grant. " +
			"Exit status 0: nothing to change, 2: changes, 1: errors (each with its line and column). FILE - reads standard input."},
		"apply": {"FILE", "Make the access state equal to FILE in one transaction, audited as one change set with the file's sha256. " +
			"Nothing is changed when the file has any error. Applying the same file again changes nothing. FILE - reads standard input."},
	}[sub]
	fs := c.flags("access "+sub, help[0], help[1])
	cfg := dbFlags(fs)
	demoFlag(fs, cfg, "include the demo dashboards (not needed once 'serve --demo' ran on this database)")
	var allow int
	var yes bool
	if sub == "apply" {
		fs.IntVar(&allow, "allow-removals", 0, "apply even when the file removes this many groups, memberships and grants in all, more than the guard lets through (see docs/access-as-code.md)")
		fs.BoolVar(&yes, "yes", false, "on a terminal: apply however much the file removes")
	}
	n := 1
	if sub == "export" {
		n = 0
	}
	pos, err := c.parse(fs, args, n, n)
	if err != nil {
		return err
	}
	reg, err := c.registry(ctx, cfg)
	if err != nil {
		return err
	}
	if sub == "export" {
		return withStore(ctx, cfg, func(s *db.Store) error {
			st, err := s.ReadAccessState(ctx)
			if err != nil {
				return err
			}
			out, err := accessfile.Export(st, accessFileHeader)
			if err != nil {
				return err
			}
			_, err = c.Stdout.Write(out)
			return err
		})
	}

	name := pos[0]
	f, data, err := c.readAccessFile(name)
	if f == nil {
		return c.reportFileErrors(err)
	}
	// A readable file with problems still goes on to Resolve, which
	// reports them with its own: every problem at once, nothing applied.
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	if yes && !isTerminal(c.Stdin) {
		return usageError{"--yes works only on a terminal; in scripts say how many removals you expect with --allow-removals N"}
	}
	var removals db.Removals
	return withStore(ctx, cfg, func(s *db.Store) error {
		resolve := func(have db.AccessState, users map[string]int64) (db.AccessState, error) {
			want, err := f.Resolve(name, accessfile.Facts{Have: have, Users: users, Now: s.Now(),
				Dashboard: func(slug string) bool { return reg.Get(slug) != nil }})
			if err != nil {
				return want, err
			}
			// Decided inside apply's transaction, against what is there.
			removals = db.CountRemovals(have, want)
			if sub == "apply" && !yes && tooManyRemovals(removals) && removals.Total() > allow {
				return want, errTooManyRemovals
			}
			return want, nil
		}
		var plan db.AccessPlan
		if sub == "plan" {
			plan, err = s.PlanAccess(ctx, resolve)
		} else {
			plan, err = s.ApplyAccess(ctx, cliActor(), name, sha, resolve)
		}
		if errors.Is(err, errTooManyRemovals) {
			return fmt.Errorf("%s; nothing was changed. If that is meant, run it again with --allow-removals %d", removalWarning(removals, name), removals.Total())
		}
		if err != nil {
			return c.reportFileErrors(err)
		}
		if sub == "plan" && tooManyRemovals(removals) {
			fmt.Fprintf(c.Stderr, "gatehouse access: warning: %s; apply refuses it without --allow-removals %d\n", removalWarning(removals, name), removals.Total())
		}
		var b strings.Builder
		for _, ch := range plan.Changes {
			b.WriteString(ch.String())
			b.WriteByte('\n')
		}
		add, change, remove := plan.Counts()
		switch {
		case len(plan.Changes) == 0:
			fmt.Fprintf(&b, "No changes: the database already matches %s.\n", name)
		case sub == "plan":
			fmt.Fprintf(&b, "Plan: %d to add, %d to change, %d to remove.\n", add, change, remove)
		default:
			fmt.Fprintf(&b, "Applied: %d added, %d changed, %d removed (sha256 %s).\n", add, change, remove, sha)
		}
		if _, err := io.WriteString(c.Stdout, b.String()); err != nil {
			return err
		}
		if sub == "plan" && len(plan.Changes) > 0 {
			return errChanges
		}
		return nil
	})
}

// readAccessFile reads and parses FILE (or standard input for "-"),
// refusing a file over accessfile.MaxSize before reading it.
func (c *CLI) readAccessFile(name string) (*accessfile.File, []byte, error) {
	if name == "-" {
		return accessfile.Read(name, c.Stdin)
	}
	fh, err := os.Open(name)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read %s: %w", name, errors.Unwrap(err))
	}
	defer fh.Close()
	if fi, err := fh.Stat(); err == nil && fi.Size() > accessfile.MaxSize {
		return nil, nil, &accessfile.Errors{File: name, Problems: []accessfile.Problem{{Line: 1,
			Msg: fmt.Sprintf("the file is %.1f MB; access files are limited to %d MB", float64(fi.Size())/(1<<20), accessfile.MaxSize>>20)}}}
	}
	return accessfile.Read(name, fh)
}

// reportFileErrors writes an access file's problems to stderr, one
// "FILE:LINE:COLUMN: problem" line each, and ends the command with exit
// status 1; other errors are returned as they are.
func (c *CLI) reportFileErrors(err error) error {
	var fe *accessfile.Errors
	if !errors.As(err, &fe) {
		return err
	}
	for _, l := range fe.Lines() {
		fmt.Fprintln(c.Stderr, l)
	}
	n := fe.Count()
	noun := "problems"
	if n == 1 {
		noun = "problem"
	}
	if n > len(fe.Problems) {
		noun += fmt.Sprintf(" (the first %d shown)", len(fe.Problems))
	}
	fmt.Fprintf(c.Stderr, "gatehouse access: %d %s in %s; nothing was changed\n", n, noun, fe.File)
	return errReported
}

// errTooManyRemovals: the file would remove more than the guard lets
// through, and the command line did not say that is meant.
var errTooManyRemovals = errors.New("too many removals")

// tooManyRemovals reports whether a plan removes more than a few percent
// of the groups, memberships or grants (at least 3 of a kind, and more than
// 5% of them): the mark of a truncated or wrong file rather than an edit.
func tooManyRemovals(r db.Removals) bool {
	over := func(removed, had int) bool { return removed > 2 && removed*20 > had }
	return over(r.Groups, r.HadGroups) || over(r.Members, r.HadMembers) || over(r.Grants, r.HadGrants)
}

// removalWarning says what a plan would remove, in one sentence.
func removalWarning(r db.Removals, file string) string {
	part := func(removed, had int, noun string) string {
		return fmt.Sprintf("%d of %d %s", removed, had, noun)
	}
	return fmt.Sprintf("%s would remove %s, %s and %s", file,
		part(r.Groups, r.HadGroups, "groups"), part(r.Members, r.HadMembers, "memberships"), part(r.Grants, r.HadGrants, "grants"))
}
