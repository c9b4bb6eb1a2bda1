package filedash

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
)

// result is what a query returned.
type result struct {
	columns []string
	rows    [][]any // []byte turned into string
}

// errTooManyRows says a query returned more rows than its limit.
type errTooManyRows int

func (e errTooManyRows) Error() string {
	return "the query returned more than " + strconv.Itoa(int(e)) + " rows; narrow it down (row limit)"
}

// run runs one query in a read-only transaction, within timeout and
// returning at most limit rows. The transaction is always rolled back.
func (s *source) run(ctx context.Context, text string, args []any, timeout time.Duration, limit int) (_ *result, err error) {
	if err := onlyReads(text); err != nil {
		return nil, err
	}
	db, err := s.open()
	if err != nil {
		return nil, err
	}
	// The server stops a statement at timeout (PostgreSQL, MySQL); this
	// side's deadline, a little later, is the backstop, and SQLite's
	// only one (it interrupts the statement).
	backstop := timeout
	if s.spec.dialect != dialectSQLite {
		backstop += time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, backstop)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	defer func() {
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// A driver may report the deadline as its own read timeout,
			// and leave the connection mid-reply: it is not reused.
			err = context.DeadlineExceeded
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	switch s.spec.dialect {
	case dialectMySQL:
		if err := s.mysqlTimeout(ctx, conn, timeout); err != nil {
			return nil, err
		}
	case dialectSQLite:
		if err := sqliteGuard(conn); err != nil {
			return nil, err
		}
	}
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var rows *sql.Rows
	switch s.spec.dialect {
	case dialectPostgres:
		// The server stops the statement too, not only this client.
		if _, err := tx.ExecContext(ctx, "SET LOCAL statement_timeout = "+strconv.FormatInt(timeout.Milliseconds(), 10)); err != nil {
			return nil, err
		}
		// The server stops the statement too, not only this client.

		// A prepared statement binds its values (the extended protocol)
		// and holds exactly one statement.
		stmt, err := tx.PrepareContext(ctx, text)
		if err != nil {
			return nil, err
		}
		defer stmt.Close()
		rows, err = stmt.QueryContext(ctx, args...)
		if err != nil {
			return nil, err
		}
	default:
		if s.spec.dialect == dialectMySQL && len(args) == 0 {
			// go-sql-driver sends a query without arguments as text,
			// where several statements could ride along: prepare it.
			stmt, err := tx.PrepareContext(ctx, text)
			if err != nil {
				return nil, err
			}
			defer stmt.Close()
			rows, err = stmt.QueryContext(ctx)
			if err != nil {
				return nil, err
			}
			break
		}
		rows, err = tx.QueryContext(ctx, text, args...)
		if err != nil {
			return nil, err
		}
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	res := &result{columns: cols}
	for rows.Next() {
		if len(res.rows) >= limit {
			return nil, errTooManyRows(limit)
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = string(b)
			}
		}
		res.rows = append(res.rows, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// sqliteGuard installs, on a SQLite connection, an authorizer that lets
// statements read and nothing else. The driver runs every statement of a
// query's text, so without it "SELECT 1; COMMIT; PRAGMA query_only = 0;
// ATTACH DATABASE 'any/file' AS x; CREATE TABLE x.t(a)" ends the read-only
// transaction, turns query_only off and writes any file the process can
// (mode=ro and query_only cover the source's own file only), and leaves the
// pooled connection that way. The authorizer stays on the connection.
func sqliteGuard(conn *sql.Conn) error {
	return conn.Raw(func(dc any) error {
		r, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return errors.New("the SQLite driver cannot restrict a connection to reads")
		}
		return r.RegisterAuthorizer(sqliteReadsOnly)
	})
}

// sqliteReadsOnly allows reading statements, and the BEGIN and ROLLBACK of
// the transaction a query runs in; it denies COMMIT, savepoints, PRAGMA,
// ATTACH, DETACH and every write.
func sqliteReadsOnly(action sqlite.AuthorizerActionCode, arg1, _, _, _ string) sqlite.AuthorizerReturnCode {
	switch action {
	case sqlite.AuthSelect, sqlite.AuthRead, sqlite.AuthFunction, sqlite.AuthRecursive:
		return sqlite.AuthorizerOK
	case sqlite.AuthTransaction:
		if arg1 == "BEGIN" || arg1 == "ROLLBACK" {
			return sqlite.AuthorizerOK
		}
	}
	return sqlite.AuthorizerDeny
}

// mysqlTimeout sets the session's statement timeout: max_statement_time
// (seconds) on MariaDB, max_execution_time (milliseconds) on MySQL.
func (s *source) mysqlTimeout(ctx context.Context, conn *sql.Conn, timeout time.Duration) error {
	s.mu.Lock()
	flavour := s.flavour
	s.mu.Unlock()
	if flavour == "" {
		var version string
		if err := conn.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
			return err
		}
		flavour = "mysql"
		if strings.Contains(strings.ToLower(version), "mariadb") {
			flavour = "mariadb"
		}
		s.mu.Lock()
		s.flavour = flavour
		s.mu.Unlock()
	}
	var stmt string
	if flavour == "mariadb" {
		stmt = "SET SESSION max_statement_time = " + strconv.FormatFloat(timeout.Seconds(), 'f', 3, 64)
	} else {
		stmt = "SET SESSION max_execution_time = " + strconv.FormatInt(timeout.Milliseconds(), 10)
	}
	_, err := conn.ExecContext(ctx, stmt)
	return err
}

// explain checks a query without running it for real: PostgreSQL and
// MySQL prepare it on the server (which parses and plans it against the
// schema), SQLite compiles it.
func (s *source) explain(ctx context.Context, text string, args []any) error {
	db, err := s.open()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if s.spec.dialect == dialectSQLite {
		if err := sqliteGuard(conn); err != nil {
			return err
		}
	}
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, text)
	if err != nil {
		return err
	}
	return stmt.Close()
}

// userError is the sentence shown in a panel whose query failed: to
// viewers, what happened; to admins, also the database's own message (the
// dashboard's author needs it, a viewer should not learn table and column
// names from it). Neither holds the DSN, which may hold a password.
func userError(err error, timeout time.Duration) (viewers, admins string) {
	var tooMany errTooManyRows
	switch {
	case errors.As(err, &tooMany):
		msg := "This panel's query " + strings.TrimPrefix(err.Error(), "the query ") + "."
		return msg, msg
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		msg := fmt.Sprintf("This panel's query took longer than %s and was stopped.", timeout)
		return msg, msg
	}
	return "This panel's query failed. An admin sees why here, and in Gatehouse's log.",
		"This panel's query failed: " + oneLine(err.Error())
}

// isTimeout recognises each database's "statement timeout" error.
func isTimeout(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "canceling statement due to statement timeout") || // PostgreSQL 57014
		strings.Contains(msg, "max_statement_time") || strings.Contains(msg, "maximum statement execution time") || // MariaDB 1969
		strings.Contains(msg, "maximum statement execution time exceeded") || // MySQL 3024
		strings.Contains(msg, "interrupted") // SQLite
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
