package app

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"gatehouse/app/apps"
	"gatehouse/app/dashboards"
)

// appOriginMetrics count what app origins (SLUG.<apps-domain>) answer.
// Their requests never reach the main routes, so they have metrics of
// their own. The app label is a registered app's slug, or "none" for a
// host under the apps domain that names no app (the host is the client's
// to choose: it is never a label).
type appOriginMetrics struct {
	requests *prometheus.CounterVec
	counters sync.Map // appCode -> prometheus.Counter
}

type appCode struct {
	app  string
	code int
}

// noApp is the app label of a request for a host that names no app.
const noApp = "none"

func newAppOriginMetrics(reg prometheus.Registerer) *appOriginMetrics {
	m := &appOriginMetrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_app_requests_total",
		Help: "Requests answered on app origins, by app and status code (101: a WebSocket, counted when it closes).",
	}, []string{"app", "code"})}
	reg.MustRegister(m.requests)
	return m
}

func (m *appOriginMetrics) observe(app string, code int) {
	key := appCode{app, code}
	c, ok := m.counters.Load(key)
	if !ok {
		c, _ = m.counters.LoadOrStore(key, m.requests.WithLabelValues(app, strconv.Itoa(code)))
	}
	c.(prometheus.Counter).Inc()
}

// instrumentApps counts every request an app origin answers, by app and
// status (see appOriginMetrics). Nil metrics or apps count nothing.
func (m *appMetrics) instrumentApps(h *apps.Handler, registry *dashboards.Registry) middleware {
	return func(next http.Handler) http.Handler {
		if m == nil || h == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			aw := &appOriginWriter{statusWriter: statusWriter{ResponseWriter: w}}
			next.ServeHTTP(aw, r)
			code := aw.status
			switch {
			case code == 0 && aw.hijacked:
				code = http.StatusSwitchingProtocols // written on the hijacked connection
			case code == 0:
				code = http.StatusOK
			}
			app := noApp
			if slug, ok := h.AppSlug(r.Host); ok {
				if d := registry.Get(slug); d != nil && d.App != nil {
					app = d.Slug
				}
			}
			m.appOrigins.observe(app, code)
		})
	}
}

// appOriginWriter records the status, and whether the connection was
// hijacked (a WebSocket: its 101 never passes through WriteHeader).
type appOriginWriter struct {
	statusWriter
	hijacked bool
}

func (w *appOriginWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, brw, err
}

// watchAppConnections serves gatehouse_app_open_connections: the requests
// in flight to each app's upstream on this instance (WebSockets and
// streaming responses included), read from h at each scrape, 0 for an app
// with none.
func (m *appMetrics) watchAppConnections(h *apps.Handler, registry *dashboards.Registry) {
	if m == nil || h == nil {
		return
	}
	m.reg.MustRegister(appConnsCollector{h: h, registry: registry})
}

var appConnsDesc = prometheus.NewDesc("gatehouse_app_open_connections",
	"Requests in flight to app upstreams on this instance, WebSockets and streaming responses included, by app.",
	[]string{"app"}, nil)

type appConnsCollector struct {
	h        *apps.Handler
	registry *dashboards.Registry
}

func (c appConnsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- appConnsDesc }

func (c appConnsCollector) Collect(ch chan<- prometheus.Metric) {
	open := c.h.OpenConnections()
	for _, d := range c.registry.All() {
		if d.App != nil {
			ch <- prometheus.MustNewConstMetric(appConnsDesc, prometheus.GaugeValue, float64(open[d.Slug]), d.Slug)
		}
	}
}
