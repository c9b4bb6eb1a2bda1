package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"gatehouse/app/auditlog"
	"gatehouse/app/conns"
	"gatehouse/app/dashboards"
	"gatehouse/app/ops"
	"gatehouse/db"
)

// DemoFlagKey is the database flag `serve --demo` sets: the database stays
// a demo one, so commands know the demo dashboards without --demo.
const DemoFlagKey = "demo"

// Serve opens and migrates the database, starts the HTTP server on
// cfg.Addr with the built-in dashboards, the demo ones with cfg.Demo, and
// extra, prints a setup link while no admin exists, and shuts down
// gracefully on SIGINT or SIGTERM. ready, when not nil, receives the
// listening address once the server accepts connections.
func Serve(ctx context.Context, cfg Config, log *slog.Logger, extra []*dashboards.Dashboard, ready func(addr string)) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Every open connection is a file: take all the system allows, and
	// keep long-lived ones to a part of it (app/conns).
	fileLimit, err := conns.RaiseFileLimit()
	if err != nil {
		log.Warn("cannot read the open-file limit", "err", err)
	}
	if cfg.MaxStreams == 0 {
		cfg.MaxStreams = conns.DefaultTotal(fileLimit)
	}
	if fileLimit > 0 && uint64(cfg.MaxStreams) > fileLimit*3/4 {
		log.Warn("--max-streams leaves little room below the open-file limit for ordinary requests", "max_streams", cfg.MaxStreams, "open_file_limit", fileLimit)
	}

	store, err := openStoreWaiting(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()

	// A demo database stays one: later starts and every command serve the
	// demo dashboards its grants name.
	if cfg.Demo {
		if err := store.SetFlag(ctx, DemoFlagKey, true); err != nil {
			return err
		}
	} else if cfg.Demo, err = store.Flag(ctx, DemoFlagKey); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		var se *os.SyscallError
		if errors.As(err, &se) && errors.Is(se.Err, syscall.EADDRINUSE) {
			return fmt.Errorf("address %s is already in use: stop the other program or choose another with --addr", cfg.Addr)
		}
		return fmt.Errorf("cannot listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close() // on an early return; Serve closes it otherwise
	// With --addr host:0 the system picks the port. Everything built from
	// the address (the setup link, the origin CSRF checks, app origins and
	// their sign-in) must name the real one, so listen first.
	if _, port, _ := net.SplitHostPort(cfg.Addr); port == "0" {
		cfg.Addr = ln.Addr().String()
	}
	registry, err := BuildRegistry(&cfg, extra)
	if err != nil {
		return err
	}
	registry.FollowApps(store) // apps come and go with the database
	a, err := New(ctx, cfg, store, log, registry)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.openFiles(ctx); err != nil {
		return err
	}
	if store.Dialect == db.Postgres {
		// Listening from the start lets version checks be answered from
		// what NOTIFY tells this instance (db/authz_lease.go) instead of a
		// query per batch of requests.
		store.AccessFeed()
	}
	if cfg.AuditLog != "" {
		stopTail, err := auditlog.Start(ctx, cfg.AuditLog, store, log)
		if err != nil {
			return err
		}
		// Deferred before the server shuts down: its last poll sees the
		// events of the last requests.
		defer stopTail()
	}
	srv := &http.Server{
		Handler:           a.Routes(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	srv.RegisterOnShutdown(a.CloseStreams)
	// The metrics listener opens before the server says it listens, so a
	// bad --metrics-addr fails the start without a misleading log line.
	if a.metrics != nil {
		stopMetrics, err := serveMetrics(ctx, cfg.MetricsAddr, a.metrics, log)
		if err != nil {
			ln.Close()
			return err
		}
		defer stopMetrics()
	}
	// Seed after listening (connections wait in the backlog) so the demo
	// banner names the real address.
	if cfg.Demo {
		if err := a.SeedDemo(ctx, os.Stdout); err != nil {
			ln.Close()
			return fmt.Errorf("seeding demo data: %w", err)
		}
	}
	log.Info("gatehouse listening", "addr", "http://"+ln.Addr().String(), "database", describeStore(store, cfg), "version", VersionString(),
		"open_file_limit", fileLimit, "max_streams", cfg.MaxStreams)
	if u, err := a.SetupURL(ctx); err != nil {
		return err
	} else if u != "" {
		log.Warn("no admin exists yet: open the setup link to create the first admin (valid 30 minutes, single use)", "setup_url", u)
	}
	// The sweeper stops with the server, before the store closes.
	sweepDone := make(chan struct{})
	go func() { defer close(sweepDone); a.sweepSessions(ctx) }()
	defer func() { stop(); <-sweepDone }()
	if a.mail != nil {
		mailDone := make(chan struct{})
		go func() { defer close(mailDone); a.mail.Run(ctx) }()
		defer func() { stop(); <-mailDone }()
		log.Info("mail outbox worker started", "smtp", a.mail.Server)
		if cfg.BaseURL == "" {
			log.Warn("--base-url is not set: links in mail point at the listening address; set it to the address people use", "links_to", a.cfg.PublicURL())
		}
	}

	ops.StartGCFloor()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(a.guardListener(ln)) }()
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

func describeStore(s *db.Store, cfg Config) string {
	if s.Dialect == db.SQLite {
		return "sqlite:" + s.Path
	}
	return db.RedactDSN(cfg.DSN)
}

// OpenStore opens the database and applies migrations. It tries
// PostgreSQL once: commands fail at once when it cannot be reached.
func OpenStore(ctx context.Context, cfg Config) (*db.Store, error) {
	return openStoreWaiting(ctx, Config{DSN: cfg.DSN, DataDir: cfg.DataDir}, nil)
}

// openStoreWaiting opens the database, waiting up to cfg.DBWait for a
// PostgreSQL server that cannot be reached yet (and telling log about each
// attempt), and applies migrations.
func openStoreWaiting(ctx context.Context, cfg Config, log *slog.Logger) (*db.Store, error) {
	store, err := db.Open(ctx, db.Config{DSN: cfg.DSN, DataDir: cfg.DataDir, Wait: cfg.DBWait, Log: log})
	if err != nil {
		return nil, err
	}
	if _, err := store.Migrate(ctx); err != nil {
		store.Close()
		return nil, err
	}
	return store, nil
}

// sweepSessions deletes expired sessions hourly.
func (a *App) sweepSessions(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := a.store.DeleteExpiredSessions(ctx, a.cfg.SessionIdle); err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("deleting expired sessions failed", "err", err)
		} else if n > 0 {
			a.log.Info("deleted expired sessions", "count", n)
		}
		a.pruneRechecks()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// BuildRegistry returns the dashboards a server with cfg serves: the
// built-in ones, the demo ones with --demo, then extra.
func BuildRegistry(cfg *Config, extra []*dashboards.Dashboard) (*dashboards.Registry, error) {
	r := dashboards.NewRegistry()
	dashboards.RegisterBuiltins(r)
	if cfg.Demo {
		dashboards.RegisterDemo(r)
	}
	if err := r.Register(extra...); err != nil {
		return nil, err
	}
	return r, nil
}
