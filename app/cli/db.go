package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gatehouse/app"
	"gatehouse/db"
)

// errNoDatabase: a command other than serve and migrate was pointed at a
// SQLite database that does not exist. It never creates one.
var errNoDatabase = errors.New("no database")

// sqlitePath is the file a SQLite config opens ("" for PostgreSQL).
func sqlitePath(cfg app.Config) string {
	if db.IsPostgresDSN(cfg.DSN) {
		return ""
	}
	path := cfg.DSN
	if path == "" {
		dir := cfg.DataDir
		if dir == "" {
			dir = "data"
		}
		path = filepath.Join(dir, "gatehouse.db")
	}
	path = strings.TrimPrefix(path, "file:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	return path
}

// describeDatabase names the database cfg selects, for people: a SQLite
// path as typed ("./data/gatehouse.db") or a PostgreSQL DSN without its
// password.
func describeDatabase(cfg app.Config) string {
	path := sqlitePath(cfg)
	if path == "" {
		return db.RedactDSN(cfg.DSN)
	}
	if !filepath.IsAbs(path) && !strings.HasPrefix(path, ".") {
		path = "." + string(filepath.Separator) + path
	}
	return path
}

// requireDatabase fails with errNoDatabase when cfg selects a SQLite file
// that does not exist: a command run in the wrong directory must say so,
// not create an empty database there.
func requireDatabase(cfg app.Config) error {
	path := sqlitePath(cfg)
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w at %s; pass --data or --db (only 'gatehouse serve' and 'gatehouse migrate' create one)", errNoDatabase, describeDatabase(cfg))
	}
	return nil
}

// maxSuggestFrom bounds how many stored names a "did you mean" reads.
const maxSuggestFrom = 1000

// suggestion is ` (did you mean "X"?)` when word is a likely typo of one of
// options, "" otherwise; options that differ from word only in case win.
func suggestion(word string, options []string) string {
	for _, o := range options {
		if strings.EqualFold(o, word) && o != word {
			return fmt.Sprintf(" (did you mean %q?)", o)
		}
	}
	lower := make([]string, len(options))
	for i, o := range options {
		lower[i] = strings.ToLower(o)
	}
	if m := didYouMean(word, lower); m != "" && m != strings.ToLower(word) {
		for i, l := range lower {
			if l == m {
				return fmt.Sprintf(" (did you mean %q?)", options[i])
			}
		}
	}
	return ""
}

// didYouMean returns the option closest to word when it is close enough to
// be a typo ("" otherwise).
func didYouMean(word string, options []string) string {
	best, bestD := "", 3
	if len(word) <= 3 {
		bestD = 2
	}
	for _, o := range options {
		if d := editDistance(strings.ToLower(word), o); d < bestD || strings.HasPrefix(o, strings.ToLower(word)) && len(word) >= 3 && d <= 4 {
			best, bestD = o, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// flagProblem says what was wrong with the flags in one sentence, with a
// suggestion for a mistyped flag name.
func flagProblem(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	name, ok := strings.CutPrefix(msg, "flag provided but not defined: ")
	if !ok {
		return msg
	}
	name = strings.TrimLeft(name, "-")
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if m := didYouMean(name, names); m != "" {
		return fmt.Sprintf("unknown flag --%s; did you mean --%s?", termEscape(name), m)
	}
	return fmt.Sprintf("unknown flag --%s", termEscape(name))
}

// unknownSubcommand is the usage error for a subcommand that does not
// exist, with a suggestion for a typo.
func unknownSubcommand(sub string, options ...string) error {
	if m := didYouMean(sub, options); m != "" {
		return usageError{fmt.Sprintf("unknown subcommand %q; did you mean %s?", sub, m)}
	}
	return usageError{fmt.Sprintf("unknown subcommand %q", sub)}
}

// checkBackupDir says plainly when a backup's directory is missing or is
// not a directory (SQLite would only say "disk I/O error").
func checkBackupDir(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("no directory %s", dir)
	case err != nil:
		return fmt.Errorf("cannot use the directory %s: %w", dir, errors.Unwrap(err))
	case !st.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}
