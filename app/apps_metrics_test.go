package app

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"gatehouse/app/dashboards"
)

// metricValue returns the value of the series line starting with series in
// a scrape, or "" when there is none.
func metricValue(out, series string) string {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestAppsMetrics: what app origins answer is counted by app and status,
// their open connections are a gauge by app, and a host that names no app
// is "none" (the host is the client's: never a label).
func TestAppsMetrics(t *testing.T) {
	e := newAppsEnvOn(t, "", func(c *Config, _ *dashboards.Registry) { c.MetricsAddr = "127.0.0.1:0" })
	e.member(t, "ann@example.com")
	c, res, _ := e.signIn(t, "ann@example.com", "/") // 302 (no cookie), 302 (callback), 200
	if res.StatusCode != http.StatusOK {
		t.Fatalf("signed in: %d", res.StatusCode)
	}
	send(t, c, "GET", e.appURL("secret-plans-q3", "/"), nil, nil) // 404, no such app
	if _, res, err := e.wsDial(t, c, "/ws", "http://evil.example"); err == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign Origin: %v", err)
	}
	ws, _, err := e.wsDial(t, c, "/ws", e.appURL("sales", ""))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.Read(ctx); err != nil {
		t.Fatal(err)
	}

	out := scrape(t, e.App)
	for series, want := range map[string]string{
		`gatehouse_app_requests_total{app="sales",code="302"}`: "2",
		`gatehouse_app_requests_total{app="sales",code="200"}`: "1",
		`gatehouse_app_requests_total{app="sales",code="403"}`: "1",
		`gatehouse_app_requests_total{app="none",code="404"}`:  "1",
		`gatehouse_app_open_connections{app="sales"}`:          "1",
	} {
		if got := metricValue(out, series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
	if strings.Contains(out, "secret-plans") {
		t.Error("a host the client chose became a label")
	}

	ws.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(5 * time.Second)
	for {
		out = scrape(t, e.App)
		if metricValue(out, `gatehouse_app_open_connections{app="sales"}`) == "0" &&
			metricValue(out, `gatehouse_app_requests_total{app="sales",code="101"}`) == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the socket closed:\n%s", grepLines(out, "gatehouse_app_"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
