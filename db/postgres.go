package db

import (
	"context"
	"crypto/tls"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
)

// DefaultWait is how long `serve` and `migrate` wait for PostgreSQL to
// answer at start before giving up.
const DefaultWait = 30 * time.Second

// Advisory lock keys (pg_advisory_lock's 64-bit key space is per database).
const (
	// migrateLockKey serializes Migrate across instances starting at once.
	migrateLockKey = 7263017
	// adminLockKey serializes transactions that check "another active admin
	// exists" before demoting, deactivating or creating the first admin.
	adminLockKey = 7263018
)

// openPostgres connects to PostgreSQL. While the server cannot be reached (or
// is starting up) it retries with backoff for up to cfg.Wait, logging each
// attempt to cfg.Log; other failures (bad password, unknown database, a TLS
// mismatch) end at once. Errors are one plain sentence without the password.
func openPostgres(ctx context.Context, cfg Config) (*Store, error) {
	addr, err := postgresAddr(cfg.DSN)
	if err != nil {
		return nil, err
	}
	connector, err := newPGConnector(cfg.DSN)
	if err != nil {
		return nil, err
	}
	sqldb := sql.OpenDB(connector)
	sqldb.SetMaxOpenConns(16)
	sqldb.SetMaxIdleConns(8)
	// Recycle connections now and then, so that a fail-over or a restarted
	// server behind a load balancer is picked up without a restart.
	sqldb.SetConnMaxLifetime(30 * time.Minute)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{DB: bun.NewDB(sqldb, pgdialect.New()), Dialect: Postgres, Now: time.Now}
	s.DB.AddQueryHook(settleHook{s})

	start := time.Now()
	deadline := start.Add(cfg.Wait)
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := sqldb.PingContext(ctx)
		if err == nil {
			if attempt > 1 && cfg.Log != nil {
				cfg.Log.Info("PostgreSQL is answering", "addr", addr, "waited", time.Since(start).Round(time.Millisecond))
			}
			return s, nil
		}
		reason, retry := pgConnectProblem(err)
		if !retry {
			sqldb.Close()
			return nil, fmt.Errorf("cannot use PostgreSQL at %s: %s", addr, reason)
		}
		remaining := time.Until(deadline)
		if remaining <= 0 || ctx.Err() != nil {
			sqldb.Close()
			if cfg.Wait <= 0 {
				return nil, fmt.Errorf("cannot reach PostgreSQL at %s: %s", addr, reason)
			}
			return nil, fmt.Errorf("cannot reach PostgreSQL at %s after waiting %s: %s", addr, time.Since(start).Round(time.Second), reason)
		}
		pause := min(delay, remaining)
		if cfg.Log != nil {
			cfg.Log.Warn("waiting for PostgreSQL at "+addr+": "+reason, "attempt", attempt, "retry_in", pause.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// newPGConnector builds pgdriver's connector for dsn. pgdriver panics on a
// DSN it cannot parse; that panic becomes a plain error here.
func newPGConnector(dsn string) (c *pgdriver.Connector, err error) {
	defer func() {
		if v := recover(); v != nil {
			msg := fmt.Sprint(v)
			if e, ok := v.(error); ok {
				var ue *url.Error
				if errors.As(e, &ue) { // url.Error repeats the DSN, password included
					e = ue.Err
				}
				msg = e.Error()
			}
			err = fmt.Errorf("the PostgreSQL DSN is invalid: %s", strings.TrimPrefix(msg, "pgdriver: "))
		}
	}()
	return pgdriver.NewConnector(
		pgdriver.WithDSN(dsn),
		pgdriver.WithDialTimeout(5*time.Second),
		pgdriver.WithReadTimeout(30*time.Second),
		pgdriver.WithWriteTimeout(10*time.Second),
		pgdriver.WithApplicationName("gatehouse"),
		// Checked before a pooled connection is reused: one the server (or a
		// proxy) has closed is discarded instead of failing a request.
		pgdriver.WithResetSessionFunc(func(_ context.Context, cn *pgdriver.Conn) error {
			if connClosed(cn.Conn()) {
				return driver.ErrBadConn
			}
			return nil
		}),
	), nil
}

// postgresAddr returns host:port/database of a PostgreSQL DSN, for messages.
func postgresAddr(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("the PostgreSQL DSN is invalid: %v", err)
	}
	host := u.Host
	if h := u.Query().Get("host"); h != "" {
		host = h
	}
	if host == "" {
		host = "localhost"
	}
	if !strings.HasPrefix(host, "/") && !strings.Contains(host, ":") {
		host += ":5432"
	}
	return host, nil
}

// connClosed reports whether the peer has closed conn (or sent something
// unasked, which also makes the connection useless), without blocking.
func connClosed(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	return rawConnClosed(raw)
}

// pgConnectProblem says in a few plain words why connecting failed, and
// whether waiting could help (the server is down, restarting or unreachable).
func pgConnectProblem(err error) (reason string, retry bool) {
	var pe pgdriver.Error
	if errors.As(err, &pe) {
		msg := pe.Field('M')
		switch code := pe.Field('C'); {
		case code == "57P03": // cannot_connect_now: starting up, shutting down, recovering
			return msg, true
		case code == "53300": // too_many_connections
			return msg, true
		case code == "28P01", code == "28000":
			return msg + " (check the user and password in the DSN)", false
		case code == "3D000":
			return msg + " (create it, or fix the database name in the DSN)", false
		case code == "3F000":
			return msg + " (create it, or fix search_path in the DSN)", false
		default:
			return msg, false
		}
	}
	msg := err.Error()
	var dnsErr *net.DNSError
	switch {
	case strings.Contains(msg, "SSL is not enabled on the server"):
		return "the server does not accept TLS connections; add sslmode=disable to the DSN if that is intended", false
	case strings.Contains(msg, "TLS handshake failed"), strings.Contains(msg, "x509:"):
		return "the TLS handshake failed (" + strings.TrimPrefix(msg, "pgdriver: TLS handshake failed: ") + ")", false
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", true
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "host " + dnsErr.Name + " not found", true
		}
		return "cannot resolve host " + dnsErr.Name, true
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable", true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the server closed the connection", true
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "connection timed out", true
	case errors.Is(err, context.Canceled):
		return "interrupted", false
	}
	return msg, false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// pgUnavailable reports whether err means PostgreSQL cannot serve the
// request right now (unreachable, restarting, out of connections or disk),
// with a plain reason for the 503 page and the log.
func pgUnavailable(err error) (string, bool) {
	var pe pgdriver.Error
	if errors.As(err, &pe) {
		code := pe.Field('C')
		switch {
		case strings.HasPrefix(code, "08"): // connection_exception
			return "the connection to the database server failed", true
		case code == "57P01", code == "57P02", code == "57P03": // shutdown, crash, cannot connect now
			return "the database server is restarting", true
		case code == "53300":
			return "the database server has too many connections", true
		case code == "53100":
			return "the database server's disk is full", true
		case code == "25006": // read_only_sql_transaction: a standby
			return "the database server is read-only (a standby?)", true
		}
		return "", false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		isTimeout(err) {
		return "cannot reach the database server", true
	}
	var ne *net.OpError
	var dnsErr *net.DNSError
	if errors.As(err, &ne) || errors.As(err, &dnsErr) {
		return "cannot reach the database server", true
	}
	return "", false
}

// pgUniqueViolation reports whether err is PostgreSQL's unique_violation.
func pgUniqueViolation(err error) bool {
	var pe pgdriver.Error
	return errors.As(err, &pe) && pe.Field('C') == "23505"
}

// lockAdmins serializes, on PostgreSQL, the transactions that decide on
// "another active admin exists": two admins demoting each other at once
// must not both succeed, and row locks taken in different orders would
// deadlock. SQLite needs nothing: its writers are already serialized.
func lockAdmins(ctx context.Context, tx bun.Tx) error {
	if tx.Dialect().Name() != dialect.PG {
		return nil
	}
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", adminLockKey)
	return err
}

// lockMigrations takes the migration advisory lock on conn, polling so that
// a wait longer than the driver's read timeout (another instance running a
// long migration) does not fail, and ctx can end it.
func lockMigrations(ctx context.Context, conn bun.Conn) (unlock func(), err error) {
	for {
		var ok bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock(?)", migrateLockKey).Scan(&ok); err != nil {
			return nil, err
		}
		if ok {
			return func() {
				_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(?)", migrateLockKey)
			}, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// RedactDSN hides the password in a DSN, for logs and messages.
func RedactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		if err != nil {
			return "(invalid DSN)"
		}
		return dsn
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
