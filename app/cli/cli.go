// Package cli is the gatehouse command line: one file per command group
// (users.go, groups.go with grants and audit, access.go, copy.go, mail.go,
// ops.go for healthcheck, dev.go for the hidden seed command). Commands talk
// to the store (gatehouse/db) directly; `serve` builds an app.Config from
// flags and GATEHOUSE_* variables and calls app.Serve. Nothing imports this
// package but main.
package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"gatehouse/app"
	"gatehouse/app/dashboards"
	"gatehouse/app/ops"
	"gatehouse/db"
)

// usageError is a command-line mistake: exit status 2 with usage help.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// CLI runs gatehouse commands. Tests create one with buffers for the
// streams and a map for the environment.
type CLI struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads GATEHOUSE_* variables (os.Getenv by default).
	Getenv func(string) string
	// Ready is told the address once `serve` listens (tests use it).
	Ready func(addr string)
	// Dashboards are served (and known to grants, access and dashboards
	// commands) besides the built-in ones: see MainWith.
	Dashboards []*dashboards.Dashboard
	// ShowProgress draws progress lines for copy and backup even when
	// Stderr is not a terminal (tests).
	ShowProgress bool
}

// Main runs the gatehouse command line and returns the exit status.
func Main(args []string) int { return MainWith(args) }

// MainWith is Main for a binary that serves its own dashboards besides the
// built-in ones: a team's main.go calls app.MainWith(os.Args[1:], myDashboards...).
func MainWith(args []string, extra ...*dashboards.Dashboard) int {
	c := &CLI{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Dashboards: extra}
	return c.Run(context.Background(), args)
}

type command struct {
	name    string
	args    string
	summary string
	run     func(ctx context.Context, c *CLI, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "[--addr 127.0.0.1:8080] [--data ./data] [--db DSN] [--base-url URL] [--demo]", "run the web server", cmdServe},
		{"migrate", "", "apply database migrations and exit", cmdMigrate},
		{"users", "create EMAIL [--name N] [--admin] [--password-stdin] | list | set-password EMAIL --password-stdin | deactivate EMAIL | activate EMAIL | promote EMAIL | demote EMAIL | reset-mfa EMAIL", "manage users", cmdUsers},
		{"groups", "create NAME [--description D] | list | delete NAME | members NAME | add-member NAME EMAIL [--expires YYYY-MM-DD] | remove-member NAME EMAIL | add-manager NAME EMAIL | remove-manager NAME EMAIL | map GROUP IDP_GROUP | unmap GROUP IDP_GROUP", "manage groups, their members, managers and identity provider mappings", cmdGroups},
		{"grants", "add DASHBOARD GROUP | remove DASHBOARD GROUP | list", "grant dashboards to groups", cmdGrants},
		{"dashboards", dashboardsUsage, "list the dashboards served; check and start dashboard files", cmdDashboards},
		{"keys", "rotate", "rotate the key that signs the identity assertion apps receive", cmdKeys},
		{"apps", appsUsage, "manage apps: dashboards that run elsewhere, served at SLUG.<apps-domain>", cmdApps},
		{"scim", scimUsage, "manage the bearer tokens identity providers use to provision users and groups at /scim/v2 (SCIM 2.0)", cmdSCIM},
		{"access", accessUsage, "explain a user's access; export, plan and apply access as code (see docs/access-as-code.md)", cmdAccess},
		{"audit", "list [--since 24h] [--limit N] [--json]", "print the audit log, newest first", cmdAudit},
		{"backup", "PATH", "write a consistent copy of the SQLite database to PATH while it is in use", cmdBackup},
		{"mail", "test ADDRESS [--smtp-url URL] [--mail-from ADDR]", "send a test message through the configured SMTP server", cmdMail},
		{"copy", "--from SQLITE_FILE_OR_DSN --to DSN", "copy all data into a new, empty database (e.g. from SQLite to PostgreSQL)", cmdCopy},
		{"healthcheck", "[--url URL]", "ask a running server whether it is healthy (for container health checks)", cmdHealthcheck},
		{"dev", "seed [--users N] [--groups N] [--memberships N]", "", cmdDev}, // hidden: no summary
		{"version", "", "print the version", func(ctx context.Context, c *CLI, args []string) error {
			fs := c.flags("version", "", "Print Gatehouse's version.")
			if _, err := c.parse(fs, args, 0, 0); err != nil {
				return err
			}
			fmt.Fprintln(c.Stdout, "gatehouse", app.VersionString())
			return nil
		}},
	}
}

func (c *CLI) usage(w io.Writer) {
	fmt.Fprintln(w, "Gatehouse serves internal dashboards to the groups allowed to see them.")
	fmt.Fprintln(w, "\nUsage: gatehouse COMMAND [arguments] [flags]\n\nCommands:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, cmd := range commands() {
		if cmd.summary == "" {
			continue // hidden developer command
		}
		fmt.Fprintf(tw, "  %s\t%s\n", cmd.name, cmd.summary)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nEvery flag can also be set with an environment variable GATEHOUSE_<FLAG> (e.g. GATEHOUSE_DATA).")
	fmt.Fprintln(w, "Run 'gatehouse COMMAND --help' for a command's arguments.")
}

// Run runs one command and returns the exit status: 0 success, 1 failure
// (or "denied" for access check), 2 usage error.
func (c *CLI) Run(ctx context.Context, args []string) int {
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	args = commandFirst(args)
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		c.usage(c.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, cmd := range commands() {
		if cmd.name != args[0] {
			continue
		}
		run := c
		if cmd.name != "serve" { // serve's log handlers quote what they print
			safe := *c
			safe.Stdout, safe.Stderr = termWriter{c.Stdout}, termWriter{c.Stderr}
			run = &safe
		}
		err := cmd.run(ctx, run, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errDenied), errors.Is(err, errReported):
			return 1
		case errors.Is(err, errChanges):
			return 2
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(c.Stderr, "gatehouse %s: %s\n", cmd.name, termEscape(ue.msg))
			fmt.Fprintf(c.Stderr, "usage: gatehouse %s %s\n", cmd.name, cmd.args)
			return 2
		}
		fmt.Fprintf(c.Stderr, "gatehouse %s: %s\n", cmd.name, termEscape(db.Sentence(err)))
		return 1
	}
	var names []string
	for _, cmd := range commands() {
		if cmd.summary != "" {
			names = append(names, cmd.name)
		}
	}
	if m := didYouMean(args[0], names); m != "" {
		fmt.Fprintf(c.Stderr, "gatehouse: unknown command %q; did you mean %s? Run 'gatehouse --help' for the list\n", termEscape(args[0]), m)
		return 2
	}
	fmt.Fprintf(c.Stderr, "gatehouse: unknown command %q; run 'gatehouse --help' for the list\n", termEscape(args[0]))
	return 2
}

var errDenied = errors.New("denied")

// valueless are the flags of any command that take no value, so that
// commandFirst knows `--verbose users` is a flag and a command, while
// `--data users` is a flag and its value.
var valueless = map[string]bool{"verbose": true, "demo": true, "json": true, "admin": true,
	"password-stdin": true, "help": true, "h": true, "trust-proxy": true, "allow-signup": true, "yes": true}

// commandFirst moves flags given before the command to its end, so that
// `gatehouse --data /srv/gh users list` works like
// `gatehouse users list --data /srv/gh`: every command reads its flags
// wherever they stand after its name.
func commandFirst(args []string) []string {
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "-h" && args[i] != "--help" {
		name := strings.TrimLeft(args[i], "-")
		if !strings.Contains(name, "=") && !valueless[name] {
			i++ // the flag's value
		}
		i++
	}
	if i == 0 || i >= len(args) {
		return args
	}
	out := make([]string, 0, len(args))
	out = append(out, args[i:]...)
	return append(out, args[:i]...)
}

// flags returns a FlagSet whose --help prints the command's usage.
func (c *CLI) flags(name, args, help string) *flag.FlagSet {
	fs := flag.NewFlagSet("gatehouse "+name, flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.Stdout, "usage: gatehouse %s %s\n\n%s\n", name, args, help)
		var has bool
		fs.VisitAll(func(*flag.Flag) { has = true })
		if has {
			fmt.Fprintln(c.Stdout, "\nFlags (each also read from GATEHOUSE_<FLAG>):")
			fs.SetOutput(c.Stdout)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		}
		if where := flagDatabase(fs); where != "" {
			fmt.Fprintf(c.Stdout, "\nDatabase: %s\n", where)
		}
	}
	return fs
}

// flagDatabase names the database a command with --data and --db flags
// uses, as its flags and environment say now ("" for other commands).
func flagDatabase(fs *flag.FlagSet) string {
	data, dsn := fs.Lookup("data"), fs.Lookup("db")
	if data == nil || dsn == nil {
		return ""
	}
	return describeDatabase(app.Config{DataDir: data.Value.String(), DSN: dsn.Value.String()})
}

// parse reads flags from the environment (GATEHOUSE_<FLAG>) and then from
// args, where flags may come before or after the positional arguments, and
// checks the number of positional arguments.
func (c *CLI) parse(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		key := "GATEHOUSE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := c.Getenv(key); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = usageError{fmt.Sprintf("environment variable %s=%q is invalid: %v", key, v, err)}
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	// The flag package prints the error and the usage itself on a bad
	// flag; Run prints both once, so it is kept quiet here, and the usage
	// is printed only for --help.
	usage := fs.Usage
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	defer func() { fs.Usage = usage }()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage()
				return nil, err
			}
			return nil, usageError{flagProblem(fs, err)}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	// Arguments reach the database and the terminal: refuse control
	// characters and invalid UTF-8 up front, as the web does.
	for _, p := range pos {
		if !db.CleanText(p, true) {
			return nil, usageError{fmt.Sprintf("argument %q contains a control character or invalid UTF-8", p)}
		}
	}
	var badFlag error
	fs.Visit(func(f *flag.Flag) {
		if badFlag == nil && !db.CleanText(f.Value.String(), true) {
			badFlag = usageError{fmt.Sprintf("--%s %q contains a control character or invalid UTF-8", f.Name, f.Value.String())}
		}
	})
	if badFlag != nil {
		return nil, badFlag
	}
	if err := checkDataFlag(fs); err != nil {
		return nil, err
	}
	if v := fs.Lookup("verbose"); v != nil && v.Value.String() == "true" {
		if where := flagDatabase(fs); where != "" {
			fmt.Fprintf(c.Stderr, "gatehouse: using the database %s\n", where)
		}
	}
	switch {
	case len(pos) < min:
		return nil, usageError{"missing arguments"}
	case max >= 0 && len(pos) > max:
		return nil, usageError{fmt.Sprintf("unexpected argument %q", pos[max])}
	}
	return pos, nil
}

// checkDataFlag refuses a --data that names a file (the database itself,
// say): it is the directory holding gatehouse.db, and SQLite would say only
// "not a directory".
func checkDataFlag(fs *flag.FlagSet) error {
	data, dsn := fs.Lookup("data"), fs.Lookup("db")
	if data == nil || dsn == nil || dsn.Value.String() != "" {
		return nil
	}
	dir := data.Value.String()
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return usageError{fmt.Sprintf("--data %s is a file: pass the directory that holds gatehouse.db, or the file itself with --db %s", dir, dir)}
	}
	return nil
}

// dbFlags adds --data, --db and --verbose to a command.
func dbFlags(fs *flag.FlagSet) *app.Config {
	cfg := app.DefaultConfig()
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "directory holding gatehouse.db")
	fs.StringVar(&cfg.DSN, "db", "", "database DSN (postgres://… selects PostgreSQL); overrides --data")
	fs.Bool("verbose", false, "say which database the command uses (on standard error)")
	return &cfg
}

// demoFlag adds --demo to a command that knows the dashboards.
func demoFlag(fs *flag.FlagSet, cfg *app.Config, help string) {
	fs.BoolVar(&cfg.Demo, "demo", false, help)
}

func cmdServe(ctx context.Context, c *CLI, args []string) error {
	fs := c.flags("serve", "[flags]", "Run the web server. With no admin yet, it prints a one-time setup link.")
	cfg := dbFlags(fs)
	demoFlag(fs, cfg, "seed demo users, groups and dashboards (remembered: the database stays a demo)")
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "address to listen on (port 0: any free port, logged at start)")
	fs.DurationVar(&cfg.DBWait, "db-wait", cfg.DBWait, "how long to wait at start for a PostgreSQL server that cannot be reached yet")
	fs.StringVar(&cfg.BaseURL, "base-url", "", "public URL of this server, e.g. https://gatehouse.example.com (https turns on Secure cookies and HSTS)")
	fs.DurationVar(&cfg.SessionIdle, "session-idle", cfg.SessionIdle, "log out sessions unused for this long")
	fs.DurationVar(&cfg.SessionMax, "session-max", cfg.SessionMax, "log out sessions this long after login")
	fs.StringVar(&cfg.Dashboards, "dashboards", "", "directory of dashboard files (YAML + SQL, see docs/dashboards.md); default ./dashboards when it exists")
	fs.DurationVar(&cfg.PanelRefresh, "panel-refresh", 0, "refresh every dashboard panel this often instead of its own interval, for demos and tests (0: each panel's own)")
	fs.BoolVar(&cfg.TrustProxy, "trust-proxy", false, "the one reverse proxy runs on this machine (loopback): same as --trusted-proxies 127.0.0.0/8,::1")
	proxies := fs.String("trusted-proxies", "", "comma-separated CIDRs or addresses of reverse proxies whose X-Forwarded-For entries are believed")
	fs.BoolVar(&cfg.AllowSignup, "allow-signup", false, "let people create their own accounts at /signup")
	domains := fs.String("signup-domains", "", "comma-separated email domains allowed to sign up (empty: any)")
	fs.StringVar(&cfg.SignupGroup, "signup-group", "", "group new sign-ups are put in")
	fs.IntVar(&cfg.SignupsPerIP, "signup-per-ip", cfg.SignupsPerIP, "at most this many sign-ups per client IP per hour (0: no limit)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	mailFlags(fs, cfg)
	oidcFlags := addOIDCFlags(fs, cfg)
	fs.StringVar(&cfg.RequireMFA, "require-mfa", cfg.RequireMFA, "who must have a second factor (passkey or authenticator app): off, admins or all")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve Prometheus /metrics on this separate address, e.g. 127.0.0.1:9090 (off when empty)")
	fs.StringVar(&cfg.AuditLog, "audit-log", "", "also write every audit event as a JSON line to this file, or stdout (for log shippers)")
	fs.IntVar(&cfg.StreamsPerUser, "streams-per-user", cfg.StreamsPerUser, "at most this many open dashboard event streams per user, over all their sessions (429 past it)")
	fs.IntVar(&cfg.MaxStreams, "max-streams", 0, "at most this many long-lived connections (event streams) on the server (503 past it; 0: half the open-file limit, at most 10000)")
	fs.StringVar(&cfg.AppsDomain, "apps-domain", "", "serve app SLUG at SLUG.<this domain> (wildcard DNS and certificate: docs/apps.md); default localhost for a loopback base URL, else apps are off")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := oidcFlags(); err != nil {
		return err
	}
	if err := cfg.Check(); err != nil {
		return usageError{err.Error()}
	}
	if err := checkMailFlags(cfg); err != nil {
		return err
	}
	for _, d := range strings.Split(*domains, ",") {
		if d = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(d), "@"))); d != "" {
			cfg.SignupDomains = append(cfg.SignupDomains, d)
		}
	}
	var err error
	if cfg.TrustedProxies, err = app.ParseTrustedProxies(*proxies); err != nil {
		return usageError{err.Error()}
	}
	logOut := ops.NewBufferedLog(c.Stderr)
	defer logOut.Close()
	var h slog.Handler = ops.NewTextLog(logOut)
	if *logFormat == "json" {
		h = slog.NewJSONHandler(logOut, nil)
	}
	return app.Serve(ctx, *cfg, slog.New(h), c.Dashboards, c.Ready)
}

func cmdMigrate(ctx context.Context, c *CLI, args []string) error {
	fs := c.flags("migrate", "[--data DIR] [--db DSN] [--db-wait 30s]", "Apply the embedded database migrations and exit. Several processes may run it at once.")
	cfg := dbFlags(fs)
	fs.DurationVar(&cfg.DBWait, "db-wait", cfg.DBWait, "how long to wait for a PostgreSQL server that cannot be reached yet")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(c.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := db.Open(ctx, db.Config{DSN: cfg.DSN, DataDir: cfg.DataDir, Wait: cfg.DBWait, Log: log})
	if err != nil {
		return err
	}
	defer store.Close()
	applied, err := store.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(c.Stdout, "database is up to date (schema version %d)\n", store.SchemaVersion())
		return nil
	}
	for _, m := range applied {
		fmt.Fprintln(c.Stdout, "applied", m)
	}
	return nil
}

// withStore opens and migrates the database for a command. It never
// creates a SQLite database: only serve and migrate do (see
// requireDatabase).
func withStore(ctx context.Context, cfg *app.Config, fn func(*db.Store) error) error {
	if err := requireDatabase(*cfg); err != nil {
		return err
	}
	store, err := app.OpenStore(ctx, *cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(store)
}

// registry returns the dashboards this binary serves with cfg, for
// commands: the demo ones too when --demo is given or the database
// remembers `serve --demo`. It fails as withStore does when there is no
// database.
// The apps stored in the database are part of it.
func (c *CLI) registry(ctx context.Context, cfg *app.Config) (*dashboards.Registry, error) {
	var reg *dashboards.Registry
	err := withStore(ctx, cfg, func(s *db.Store) error {
		if !cfg.Demo {
			demo, err := s.Flag(ctx, app.DemoFlagKey)
			if err != nil {
				return err
			}
			cfg.Demo = demo
		}
		var err error
		if reg, err = app.BuildRegistry(cfg, c.Dashboards); err != nil {
			return err
		}
		if err := reg.LoadApps(ctx, s); err != nil {
			return err
		}
		return registerFiles(ctx, c, cfg, reg)
	})
	return reg, err
}

// cliActor is the audit actor for command-line changes.
func cliActor() db.Actor {
	name := "cli"
	if u := os.Getenv("USER"); u != "" {
		name = "cli:" + u
	}
	return db.Actor{Email: name}
}

// readPassword reads one line from stdin.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on standard input")
	}
	return line, nil
}

func (c *CLI) table(header string, rows func(w io.Writer)) {
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	rows(tw)
	tw.Flush()
}

// parseSince reads "24h", "7d" or a date.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if strings.HasSuffix(s, "d") {
		var n int
		if _, err := fmt.Sscanf(s, "%dd", &n); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q is not a duration (24h, 7d) or a date (2006-01-02)", s)
}
