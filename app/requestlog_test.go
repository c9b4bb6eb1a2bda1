package app

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse/app/ops"
)

// TestServerLogsEveryRequestOnce: through the server's own text log, a
// request is logged once, in slog's format, and a path slog must quote is
// quoted.
func TestServerLogsEveryRequestOnce(t *testing.T) {
	var out bytes.Buffer
	ta := newTestApp(t)
	ta.log = slog.New(ops.NewTextLog(&out))
	h := ta.Routes()
	for _, path := range []string{"/login", "/no where"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "http://example.com"+strings.ReplaceAll(path, " ", "%20"), nil))
	}
	text := out.String()
	if n := strings.Count(text, "msg=request "); n != 2 {
		t.Fatalf("%d request lines for 2 requests:\n%s", n, text)
	}
	if !strings.Contains(text, "level=INFO msg=request id=") || !strings.Contains(text, " method=GET path=/login status=200 ") {
		t.Errorf("the fast line is not in slog's format:\n%s", text)
	}
	if !strings.Contains(text, `path="/no where" status=404`) {
		t.Errorf("a path with a space is not quoted as slog quotes it:\n%s", text)
	}
}
