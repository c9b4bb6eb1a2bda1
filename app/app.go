// Package app is Gatehouse's HTTP server: routes.go lists every route, and
// the handlers and middleware that share the request state (who is asking,
// the access snapshot) and the one render rule live here, named by area:
//
//   - auth*.go: everything about signing in: login, logout and the account
//     page (auth.go), the first admin (auth_setup.go), sign-up
//     (auth_signup.go), password reset and email confirmation
//     (auth_password.go), second factors (auth_mfa.go), passkeys
//     (auth_passkeys.go), SSO (auth_oidc*.go), device cookies
//     (auth_device.go) and the session store (auth_sessions.go);
//     account_security.go is /account/security;
//   - admin*.go: the admin panel and group managers (admin_managers.go);
//   - dashboards*.go: the home page, dashboard pages, panels through the one
//     access check, and live access (dashboards_live.go);
//   - apps.go: an app's sign-in on the main origin and the assertion keys
//     (the apps themselves are served by app/apps, mounted in routes.go);
//   - middleware*.go, render*.go, clientip.go: the request pipeline;
//   - app.go, config.go, server.go: building and starting the server
//     (Serve is what the command line calls).
//
// Areas that do not need the request pipeline are packages below it:
// mailer (mail), auditlog (the audit log as JSON lines), ops (log output,
// GC floor), dashboards (the registry and the access decision),
// accessfile (access as code), apps (the gate in front of apps' upstreams). The command line (app/cli) sits above it
// and calls only its exported start-up and the store.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"gatehouse/app/apps"
	"gatehouse/app/conns"
	"gatehouse/app/dashboards"
	"gatehouse/app/filedash"
	"gatehouse/app/mailer"
	"gatehouse/app/scim"
	"gatehouse/db"
)

// App holds everything handlers need. Handlers are methods on *App.
type App struct {
	cfg      Config
	store    *db.Store
	sessions *SessionStore
	hasher   *db.Hasher
	log      *slog.Logger
	registry *dashboards.Registry
	// now is the clock; tests replace it (together with store.Now).
	now func() time.Time
	// deviceKey signs device cookies (auth_device.go).
	deviceKey []byte
	// denials holds rendered denial fragments: polling denied panels ask
	// for the same few fragments over and over.
	denials fragmentCache
	// mail drains the outbox; nil without --smtp-url (then no page
	// mentions mail).
	mail *mailer.Worker
	// oidc is sign-in with the identity provider (nil when not configured).
	oidc *oidcClient
	// webauthn is the passkey relying party; nil (passkeys off) when the
	// base URL has no host name.
	webauthn *webauthn.WebAuthn
	// metrics records Prometheus metrics; nil (recording nothing) unless
	// --metrics-addr is set.
	metrics *appMetrics
	// streamsDone is closed when the server shuts down: open event streams
	// (dashboards_live.go) end, so shutdown does not wait for them.
	streamsDone      chan struct{}
	closeStreamsOnce sync.Once
	// liveCalls shares the streams' decisions after a change (dashboards_live.go).
	liveCalls liveCalls
	// streams bounds the open event streams per page, session, user and
	// server (app/conns).
	streams *conns.Budget
	// apps serves app origins (app/apps); nil when apps are off.
	apps *apps.Handler
	// files serves the dashboards directory (app/filedash); nil without one.
	files *filedash.Server
	// scim serves /scim/v2 (app/scim).
	scim *scim.Handler
}

// New builds an App over an opened and migrated store.
func New(ctx context.Context, cfg Config, store *db.Store, log *slog.Logger, registry *dashboards.Registry) (*App, error) {
	ss, err := NewSessionStore(ctx, store, SessionConfig{Secure: cfg.Secure(), Idle: cfg.SessionIdle, Absolute: cfg.SessionMax})
	if err != nil {
		return nil, err
	}
	deviceKey, err := store.Secret(ctx, deviceKeySetting, 32)
	if err != nil {
		return nil, err
	}
	if cfg.TrustProxy {
		cfg.TrustedProxies = append(cfg.TrustedProxies[:len(cfg.TrustedProxies):len(cfg.TrustedProxies)], loopbackProxies...)
	}
	a := &App{
		cfg:       cfg,
		store:     store,
		sessions:  ss,
		hasher:    db.NewHasher(db.PasswordParams, cfg.HashSlots, cfg.HashWait),
		log:       log,
		registry:  registry,
		now:       store.Now,
		deviceKey: deviceKey,

		streamsDone: make(chan struct{}),
		streams:     conns.New(streamLimits(cfg)),
	}
	ss.ClientIP = a.clientIP
	if cfg.SMTPURL != "" {
		server, err := mailer.ParseSMTPURL(cfg.SMTPURL)
		if err != nil {
			return nil, err
		}
		from, err := mailer.ParseFrom(cfg.MailFrom)
		if err != nil {
			return nil, err
		}
		a.mail = a.newMailWorker(&mailer.SMTPSender{Server: server, From: from}, server.String())
		store.MailEnabled = true
	}
	if err := a.newOIDC(ctx); err != nil {
		return nil, err
	}
	if a.webauthn, err = newWebAuthn(cfg); err != nil {
		return nil, fmt.Errorf("passkeys: %w", err)
	}
	if cfg.MetricsAddr != "" {
		a.metrics = newMetrics(store)
		a.hasher.OnWait = a.metrics.hashWaited
	}
	if err := a.newApps(ctx); err != nil {
		return nil, err
	}
	a.newSCIM()
	return a, nil
}

// streamLimits are the connection limits cfg sets; a MaxStreams of 0 is
// derived from the process's open-file limit as it is now (serve raises it
// first).
func streamLimits(cfg Config) conns.Limits {
	total := cfg.MaxStreams
	if total <= 0 {
		limit, _ := conns.FileLimit()
		total = conns.DefaultTotal(limit)
	}
	return conns.Limits{PerKey: cfg.StreamsPerPage, PerSession: cfg.StreamsPerSession, PerUser: cfg.StreamsPerUser, Total: total}
}

// Close stops the App's background work (identity provider discovery).
func (a *App) Close() {
	a.oidc.close()
	a.apps.Close()
	if a.files != nil {
		a.files.Close()
	}
}

// CloseStreams ends every open event stream; the server calls it when it
// shuts down.
func (a *App) CloseStreams() {
	a.closeStreamsOnce.Do(func() { close(a.streamsDone) })
}

// Store returns the app's store.
func (a *App) Store() *db.Store { return a.store }
