package app

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gatehouse/db"
)

// appMetrics are Gatehouse's Prometheus metrics, served on their own listener
// (--metrics-addr) so they are never public by accident. A nil *appMetrics
// records nothing: every method is safe to call when metrics are off.
//
// Labels never carry user input: routes are the mux's patterns (one of the
// fixed strings in routes.go), dashboards are registered slugs (an unknown
// slug is a 404 before any decision), results and codes are from short
// fixed sets.
type appMetrics struct {
	reg *prometheus.Registry

	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	decisions *prometheus.CounterVec
	logins    *prometheus.CounterVec
	throttles *prometheus.CounterVec
	signIns   *prometheus.CounterVec
	hashWait  prometheus.Histogram
	hashBusy  prometheus.Counter
	streams   prometheus.Gauge
	mail      *prometheus.CounterVec
	rechecks  *prometheus.CounterVec
	// appOrigins count what app origins answer (metrics_apps.go).
	appOrigins *appOriginMetrics

	// The hot path looks its counters up here instead of hashing label
	// values on every request.
	byRoute sync.Map // routeCode -> prometheus.Counter; string -> prometheus.Observer
}

type routeCode struct {
	route string
	code  int
}

// Login results for gatehouse_logins_total.
const (
	loginSuccess   = "success"
	loginFailed    = "failed"
	loginThrottled = "throttled"
	loginBusy      = "busy"
)

// newMetrics registers every Gatehouse metric, the Go runtime and process
// collectors, and the database pool's statistics.
func newMetrics(store *db.Store) *appMetrics {
	reg := prometheus.NewRegistry()
	m := &appMetrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_access_decisions_total",
			Help: "Dashboard and panel access decisions, by dashboard and result (allowed or denied).",
		}, []string{"dashboard", "result"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_logins_total",
			Help: "Password logins, by result (success, failed, throttled, busy).",
		}, []string{"result"}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_sign_ins_total",
			Help: "Sessions started, by how the person signed in (password, password+totp, password+passkey, passkey, sso, ...).",
		}, []string{"method"}),
		rechecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_oidc_rechecks_total",
			Help: "SSO sessions re-checked with the identity provider, by result: kept, ended (the IdP no longer vouches for the person), postponed (the IdP could not be asked).",
		}, []string{"result"}),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_throttled_requests_total",
			Help: "Requests refused by a throttle (429), by what was throttled.",
		}, []string{"what"}),
		hashWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gatehouse_password_hash_wait_seconds",
			Help:    "Time a password hash waited for a free hashing slot.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		hashBusy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_password_hash_busy_total",
			Help: "Password hashes refused because no slot freed in time (answered 503).",
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_event_streams_open",
			Help: "Open dashboard event streams (server-sent events).",
		}),
		mail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_mail_messages_total",
			Help: "Outbox messages handled by this server's worker, by kind and result (sent, skipped, retry, failed).",
		}, []string{"kind", "result"}),
	}
	reg.MustRegister(m.requests, m.duration, m.decisions, m.logins, m.signIns, m.throttles, m.hashWait, m.hashBusy, m.streams, m.mail, m.rechecks)
	m.appOrigins = newAppOriginMetrics(reg)
	for _, r := range []string{loginSuccess, loginFailed, loginThrottled, loginBusy} {
		m.logins.WithLabelValues(r) // exported at 0 from the start
	}
	for _, r := range []string{recheckKept, recheckEnded, recheckPostponed} {
		m.rechecks.WithLabelValues(r)
	}

	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "gatehouse_build_info",
		Help:        "Always 1; the version label says which build runs.",
		ConstLabels: prometheus.Labels{"version": VersionString(), "dialect": store.Dialect},
	}, func() float64 { return 1 }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gatehouse_sessions_active",
		Help: "Unexpired sessions in the database (all instances).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := store.CountActiveSessions(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "gatehouse_authz_version_checks_total",
		Help:        "Authorization version checks, by whether they were answered without a query (SQLite's wal-index shows no commit, or PostgreSQL's lease holds) or read the version.",
		ConstLabels: prometheus.Labels{"answer": "cached"},
	}, func() float64 { return float64(store.AuthzStats().Skipped) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "gatehouse_authz_version_checks_total",
		Help:        "Authorization version checks, by whether they were answered without a query (SQLite's wal-index shows no commit, or PostgreSQL's lease holds) or read the version.",
		ConstLabels: prometheus.Labels{"answer": "read"},
	}, func() float64 { return float64(store.AuthzStats().Reads) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gatehouse_authz_lease_trusted",
		Help: "1 while this PostgreSQL instance answers version checks from what NOTIFY told it (its lease holds), else 0 (always 0 on SQLite).",
	}, func() float64 {
		if store.LeaseStats().Trusted {
			return 1
		}
		return 0
	}))
	for _, result := range []string{"immediate", "acknowledged", "timeout"} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "gatehouse_authz_settles_total",
			Help:        "This process's PostgreSQL writes by how they waited for the instances to hear of them: immediate (all had), acknowledged (after a wait), timeout (an instance never answered and its lease ran out).",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 {
			st := store.LeaseStats()
			switch result {
			case "immediate":
				return float64(st.Settles - st.Waits)
			case "acknowledged":
				return float64(st.Waits - st.Timeouts)
			}
			return float64(st.Timeouts)
		}))
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(collectors.NewDBStatsCollector(store.DB.DB, store.Dialect))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *appMetrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("Gatehouse metrics are at /metrics\n"))
	})
	return mux
}

// instrument counts and times every request by its route pattern. next is
// the whole middleware chain; the pattern is learnt from notePattern, which
// wraps the mux itself. Without metrics it returns next unchanged, so the
// hot path pays nothing.
func (m *appMetrics) instrument(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		mw := &metricsWriter{statusWriter: statusWriter{ResponseWriter: w}}
		next.ServeHTTP(mw, r)
		code := mw.status
		if code == 0 {
			code = http.StatusOK
		}
		route := mw.route
		if route == "" {
			route = "unmatched" // refused before routing (bad body, cross-origin)
		}
		m.observe(route, code, time.Since(start))
	})
}

// eventsRoute is the event stream's pattern (routes.go): counted, but kept
// out of the latency histogram.
const eventsRoute = "GET /dashboards/{slug}/events"

func (m *appMetrics) observe(route string, code int, d time.Duration) {
	key := routeCode{route, code}
	c, ok := m.byRoute.Load(key)
	if !ok {
		c, _ = m.byRoute.LoadOrStore(key, m.requests.WithLabelValues(route, strconv.Itoa(code)))
	}
	c.(prometheus.Counter).Inc()
	if route == eventsRoute {
		return // a stream's "duration" is how long its page stayed open, not a latency
	}
	o, ok := m.byRoute.Load(route)
	if !ok {
		o, _ = m.byRoute.LoadOrStore(route, m.duration.WithLabelValues(route))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

// notePattern wraps the mux: after it routes a request, the pattern it
// matched is handed to instrument's writer. (The mux sets r.Pattern on the
// request it was given, which the middleware above it never sees, because
// each of them passes on a copy.)
func (m *appMetrics) notePattern(mux http.Handler) http.Handler {
	if m == nil {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		for rw := w; rw != nil; {
			if mw, ok := rw.(*metricsWriter); ok {
				mw.route = r.Pattern
				return
			}
			u, ok := rw.(interface{ Unwrap() http.ResponseWriter })
			if !ok {
				return
			}
			rw = u.Unwrap()
		}
	})
}

// noteRoute is notePattern for a handler with routes of its own (SCIM):
// its requests are counted under route, one fixed label.
func (m *appMetrics) noteRoute(route string, h http.Handler) http.Handler {
	if m == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		for rw := w; rw != nil; {
			if mw, ok := rw.(*metricsWriter); ok {
				mw.route = route
				return
			}
			u, ok := rw.(interface{ Unwrap() http.ResponseWriter })
			if !ok {
				return
			}
			rw = u.Unwrap()
		}
	})
}

// metricsWriter records a response's status (through the statusWriter the
// request log uses too) and, from notePattern, its route.
type metricsWriter struct {
	statusWriter
	route string
}

// login counts one password login by its result.
func (m *appMetrics) login(result string) {
	if m != nil {
		m.logins.WithLabelValues(result).Inc()
	}
}

// mailHandled counts one outbox message by its kind (one of the fixed
// db.Mail* kinds) and what became of it.
func (m *appMetrics) mailHandled(kind, result string) {
	if m == nil {
		return
	}
	switch kind {
	case db.MailPasswordReset, db.MailSignupVerify, db.MailSignupExists, db.MailRequestCreated, db.MailRequestDecided:
	default:
		kind = "other" // a row written by another build: keep the label set fixed
	}
	m.mail.WithLabelValues(kind, result).Inc()
}

// signedIn counts one session started by a completed sign-in; method is
// one of the db.Method* constants, never user input.
func (m *appMetrics) signedIn(method string) {
	if m != nil {
		m.signIns.WithLabelValues(method).Inc()
	}
}

// throttled counts one request refused by the throttle named what.
func (m *appMetrics) throttled(what string) {
	if m != nil {
		m.throttles.WithLabelValues(what).Inc()
	}
}

// decision counts one access decision for a registered dashboard.
func (m *appMetrics) decision(dashboard string, allowed bool) {
	if m == nil {
		return
	}
	result := "denied"
	if allowed {
		result = "allowed"
	}
	m.decisions.WithLabelValues(dashboard, result).Inc()
}

// streamOpened and streamClosed track open event streams.
func (m *appMetrics) streamOpened() {
	if m != nil {
		m.streams.Inc()
	}
}

func (m *appMetrics) streamClosed() {
	if m != nil {
		m.streams.Dec()
	}
}

// hashWaited is the Hasher's OnWait hook.
func (m *appMetrics) hashWaited(wait time.Duration, got bool) {
	m.hashWait.Observe(wait.Seconds())
	if !got {
		m.hashBusy.Inc()
	}
}

// serveMetrics serves /metrics on addr until ctx ends. A listener that
// cannot be opened is an error at start, not a silent gap in the graphs.
func serveMetrics(ctx context.Context, addr string, m *appMetrics, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, errors.New("cannot listen for metrics on " + addr + ": " + err.Error())
	}
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	log.Info("metrics listening", "addr", "http://"+ln.Addr().String()+"/metrics")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	return func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
		<-done
	}, nil
}

// Re-check results for gatehouse_oidc_rechecks_total.
const (
	recheckKept      = "kept"
	recheckEnded     = "ended"
	recheckPostponed = "postponed"
)

// rechecked counts one SSO re-check by its result.
func (m *appMetrics) rechecked(result string) {
	if m != nil {
		m.rechecks.WithLabelValues(result).Inc()
	}
}
