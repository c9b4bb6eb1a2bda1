package app

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestPagesAreNotChunked: a rendered page, small or large, goes out with
// its Content-Length, never chunked.
func TestPagesAreNotChunked(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "admin@example.com", true)
	c := ta.login(t, "admin@example.com")
	for _, path := range []string{"/login", "/nope", "/admin/audit"} {
		res, err := c.Get(ta.Server.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if len(res.TransferEncoding) != 0 || res.ContentLength != int64(len(body)) {
			t.Errorf("GET %s: %d bytes sent with Transfer-Encoding %v and Content-Length %d", path, len(body), res.TransferEncoding, res.ContentLength)
		}
		if path == "/admin/audit" && len(body) <= chunkingThreshold {
			t.Errorf("the audit page is %d bytes; the test needs a page over %d", len(body), chunkingThreshold)
		}
	}
}

// TestAClientThatLeftIsNotAServerError: a request whose client went away
// while the server worked on it (its context cancelled, as net/http does
// when the connection closes) is logged as 499, nginx's "client closed
// request", without a "request failed" error line; it is not a 500.
func TestAClientThatLeftIsNotAServerError(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "admin@example.com", true)
	c := ta.login(t, "admin@example.com")
	u, _ := url.Parse(ta.Server.URL)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest("GET", "/admin/audit", nil).WithContext(ctx)
	for _, ck := range c.Jar.Cookies(u) {
		req.AddCookie(ck)
	}
	rec := httptest.NewRecorder()
	ta.Routes().ServeHTTP(rec, req)
	if rec.Code != statusClientClosed {
		t.Errorf("status %d for a client that left, want %d", rec.Code, statusClientClosed)
	}
	if logs := ta.Logs.String(); strings.Contains(logs, "request failed") || strings.Contains(logs, "level=ERROR") {
		t.Errorf("a client that left was logged as a failure:\n%s", logs)
	}

	// A real failure still is one.
	rec = httptest.NewRecorder()
	ta.serverError(rec, httptest.NewRequest("GET", "/", nil), errors.New("disk on fire"))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(ta.Logs.String(), "request failed") {
		t.Errorf("a failure with the client still there: %d, logs %q", rec.Code, ta.Logs.String())
	}
}
