package filedash

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun/driver/pgdriver"
	"go.yaml.in/yaml/v3"
	_ "modernc.org/sqlite" // the "sqlite" driver
)

// SourcesFile is the name of the file naming a directory's data sources.
const SourcesFile = "sources.yaml"

type dialect int

const (
	dialectPostgres dialect = iota + 1
	dialectMySQL
	dialectSQLite
)

func (d dialect) String() string {
	switch d {
	case dialectPostgres:
		return "PostgreSQL"
	case dialectMySQL:
		return "MySQL"
	default:
		return "SQLite"
	}
}

// SourceSpec is one named data source of sources.yaml.
type SourceSpec struct {
	Name    string
	DSN     string // with ${VAR} replaced
	dialect dialect
	path    string // a SQLite file's absolute path
	Pos     Problem
}

var envRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// parseSources parses sources.yaml; dir resolves relative SQLite paths.
func parseSources(path, dir string, data []byte, getenv func(string) string) (map[string]*SourceSpec, []Problem) {
	p := &parser{file: path}
	root := p.document(data)
	if root == nil {
		return nil, p.problems
	}
	m := p.mapping(root, "sources")
	if m == nil {
		return nil, p.problems
	}
	out := map[string]*SourceSpec{}
	list := m["sources"]
	if list == nil {
		p.at(root, "sources is required: a mapping of names to DSNs")
		return nil, p.problems
	}
	if list.Kind != yaml.MappingNode {
		p.at(list, "sources must map names to DSNs (postgres://…, mysql://… or sqlite:PATH)")
		return nil, p.problems
	}
	for i := 0; i+1 < len(list.Content); i += 2 {
		k, v := list.Content[i], list.Content[i+1]
		if !nameRE.MatchString(strings.ReplaceAll(k.Value, "-", "_")) {
			p.at(k, "source name %q must be 1-40 of a-z, 0-9, - and _", k.Value)
			continue
		}
		if out[k.Value] != nil {
			p.at(k, "source %q is named twice", k.Value)
			continue
		}
		if v.Kind != yaml.ScalarNode {
			p.at(v, "source %q must be a DSN", k.Value)
			continue
		}
		var missing []string
		dsn := envRE.ReplaceAllStringFunc(v.Value, func(s string) string {
			name := envRE.FindStringSubmatch(s)[1]
			val := getenv(name)
			if val == "" {
				missing = append(missing, name)
			}
			return val
		})
		if len(missing) > 0 {
			p.at(v, "source %q: environment variable %s is not set", k.Value, strings.Join(missing, ", "))
			continue
		}
		s := &SourceSpec{Name: k.Value, Pos: Problem{File: path, Line: v.Line, Col: v.Column}}
		var err error
		s.DSN, s.dialect, s.path, err = normalizeDSN(dsn, dir)
		if err != nil {
			p.at(v, "source %q: %v", k.Value, err)
			continue
		}
		out[k.Value] = s
	}
	return out, p.problems
}

// normalizeDSN checks a source's DSN and returns it in the form its
// driver takes (an absolute read-only URI for SQLite, the go-sql-driver
// form for MySQL).
func normalizeDSN(dsn, dir string) (string, dialect, string, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return "", 0, "", errors.New("the PostgreSQL DSN is not a valid URL")
		}
		if err := checkPostgresDSN(dsn, u); err != nil {
			return "", 0, "", err
		}
		return dsn, dialectPostgres, "", nil
	case strings.HasPrefix(dsn, "mysql://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return "", 0, "", errors.New("the MySQL DSN is not a valid URL")
		}
		cfg := mysql.NewConfig()
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
		cfg.DBName = strings.TrimPrefix(u.Path, "/")
		q := u.Query()
		if sock := q.Get("socket"); sock != "" {
			cfg.Net, cfg.Addr = "unix", sock
		} else {
			cfg.Net, cfg.Addr = "tcp", u.Host
			if u.Port() == "" {
				cfg.Addr = u.Host + ":3306"
			}
		}
		for k := range q {
			if k != "socket" && k != "tls" {
				return "", 0, "", fmt.Errorf("the MySQL DSN parameter %q is not supported (socket and tls are)", k)
			}
		}
		if t := q.Get("tls"); t != "" {
			cfg.TLSConfig = t
		}
		// Values travel as bound parameters of server-side prepared
		// statements, one statement per query.
		cfg.InterpolateParams = false
		cfg.MultiStatements = false
		cfg.ParseTime = true
		cfg.Timeout = 5 * time.Second
		return cfg.FormatDSN(), dialectMySQL, "", nil
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			return "", 0, "", errors.New("sqlite: needs a file path")
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", 0, "", err
		}
		// Read-only twice over: the file is opened read-only, and the
		// connection refuses writes even to temporary tables.
		u := url.URL{Scheme: "file", Path: abs, RawQuery: "mode=ro&_query_only=1&_pragma=busy_timeout(5000)"}
		return u.String(), dialectSQLite, abs, nil
	}
	return "", 0, "", errors.New("the DSN must start with postgres://, mysql:// or sqlite:")
}

// checkPostgresDSN has the driver read the DSN now: it panics on one it
// cannot use (an unknown sslmode, a CA file it cannot read), which would
// otherwise happen at the first panel. The driver's words, which may
// quote the DSN, are given without its password.
func checkPostgresDSN(dsn string, u *url.URL) (err error) {
	defer func() {
		if v := recover(); v != nil {
			msg := strings.TrimPrefix(fmt.Sprint(v), "pgdriver: ")
			if pw, ok := u.User.Password(); ok && pw != "" {
				msg = strings.ReplaceAll(msg, pw, "xxxxx")
				msg = strings.ReplaceAll(msg, url.QueryEscape(pw), "xxxxx")
				msg = strings.ReplaceAll(msg, url.PathEscape(pw), "xxxxx")
			}
			err = errors.New("the PostgreSQL DSN cannot be used: " + msg)
		}
	}()
	pgdriver.NewConnector(pgdriver.WithDSN(dsn))
	return nil
}

// source is an opened data source: a small pool, opened at first use.
type source struct {
	spec *SourceSpec
	once sync.Once
	db   *sql.DB
	err  error
	// mariadb is set once a MySQL server turned out to be MariaDB (its
	// statement timeout is named differently).
	mu      sync.Mutex
	flavour string
}

// pool sizes: a source serves cached panels, so few connections do.
const (
	maxOpenConns = 4
	maxIdleConns = 2
)

func (s *source) open() (*sql.DB, error) {
	s.once.Do(func() {
		switch s.spec.dialect {
		case dialectPostgres:
			s.db = sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(s.spec.DSN), pgdriver.WithDialTimeout(5*time.Second)))
		case dialectMySQL:
			s.db, s.err = sql.Open("mysql", s.spec.DSN)
		case dialectSQLite:
			if _, err := os.Stat(s.spec.path); err != nil {
				s.err = fmt.Errorf("the SQLite file cannot be read: %w", errors.Unwrap(err))
				return
			}
			s.db, s.err = sql.Open("sqlite", s.spec.DSN)
		}
		if s.db != nil {
			s.db.SetMaxOpenConns(maxOpenConns)
			s.db.SetMaxIdleConns(maxIdleConns)
			s.db.SetConnMaxIdleTime(5 * time.Minute)
		}
	})
	return s.db, s.err
}

func (s *source) close() {
	if s.db != nil {
		s.db.Close()
	}
}

// ping checks the source answers.
func (s *source) ping(ctx context.Context) error {
	db, err := s.open()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}
