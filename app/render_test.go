package app

import (
	"io"
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
