package assets

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// mustRead returns an embedded file's bytes.
func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := files.ReadFile(name)
	if err != nil {
		t.Fatalf("read embedded %s: %v", name, err)
	}
	return b
}

// do sends one request straight to Handler.
func do(t testing.TB, method, target string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	return rec
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gzip reader: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

func TestNames(t *testing.T) {
	names := Names()
	for _, want := range []string{"htmx.min.js", "htmx-ext-sse.min.js", "idiomorph-ext.min.js", "gatehouse.js", "favicon.svg", "css/pico.min.css", "css/app.css"} {
		if !slices.Contains(names, want) {
			t.Errorf("Names() = %q, missing %q", names, want)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("Names() not sorted: %q", names)
	}
	names[0] = "changed"
	if Names()[0] == "changed" {
		t.Error("Names() returns the package's own slice; callers can change it")
	}
}

func TestPathIsContentFingerprint(t *testing.T) {
	tests := []struct {
		name, wantPattern string
	}{
		{"htmx.min.js", `^/assets/htmx\.min\.[0-9a-f]{10}\.js$`},
		{"htmx-ext-sse.min.js", `^/assets/htmx-ext-sse\.min\.[0-9a-f]{10}\.js$`},
		{"idiomorph-ext.min.js", `^/assets/idiomorph-ext\.min\.[0-9a-f]{10}\.js$`},
		{"favicon.svg", `^/assets/favicon\.[0-9a-f]{10}\.svg$`},
		{"css/pico.min.css", `^/assets/css/pico\.min\.[0-9a-f]{10}\.css$`},
		{"css/app.css", `^/assets/css/app\.[0-9a-f]{10}\.css$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Path(tt.name)
			if !regexp.MustCompile(tt.wantPattern).MatchString(got) {
				t.Fatalf("Path(%q) = %q, want it to match %s", tt.name, got, tt.wantPattern)
			}
			if again := Path(tt.name); again != got {
				t.Errorf("Path(%q) not stable: %q then %q", tt.name, got, again)
			}
			// The fingerprint is the SHA-256 of the file on disk, which the
			// embedded copy must equal.
			disk, err := os.ReadFile(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(disk, mustRead(t, tt.name)) {
				t.Fatalf("embedded %s differs from the file on disk", tt.name)
			}
			sum := sha256.Sum256(disk)
			if want := hex.EncodeToString(sum[:])[:10]; !strings.Contains(got, "."+want+".") {
				t.Errorf("Path(%q) = %q, want fingerprint %s", tt.name, got, want)
			}
		})
	}
}

func TestFingerprintFollowsContent(t *testing.T) {
	a, err := newEntry("css/x.css", []byte("body{color:red}"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := newEntry("css/x.css", []byte("body{color:blue}"))
	if err != nil {
		t.Fatal(err)
	}
	a2, err := newEntry("css/x.css", []byte("body{color:red}"))
	if err != nil {
		t.Fatal(err)
	}
	if a.url == b.url {
		t.Errorf("different content, same URL %q", a.url)
	}
	if a.url != a2.url || a.etag != a2.etag {
		t.Errorf("same content, different URL or ETag: %q %q / %q %q", a.url, a2.url, a.etag, a2.etag)
	}
	for _, tt := range []struct{ name, hash, want string }{
		{"htmx.min.js", "0123456789", "/assets/htmx.min.0123456789.js"},
		{"css/app.css", "abcdef0123", "/assets/css/app.abcdef0123.css"},
		{"LICENSE", "abcdef0123", "/assets/LICENSE.abcdef0123"},
	} {
		if got := fingerprint(tt.name, tt.hash); got != tt.want {
			t.Errorf("fingerprint(%q, %q) = %q, want %q", tt.name, tt.hash, got, tt.want)
		}
	}
}

func TestPathPanicsForUnknownName(t *testing.T) {
	for _, name := range []string{"", "nope.js", "css", "css/", "/htmx.min.js", "htmx.min", "HTMX.MIN.JS", "../go.mod"} {
		t.Run(strconv.Quote(name), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Path(%q) did not panic", name)
				}
			}()
			Path(name)
		})
	}
}

func wantContentType(name string) string {
	switch path.Ext(name) {
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return ""
}

func TestHandlerServesEveryAsset(t *testing.T) {
	for _, name := range Names() {
		want := mustRead(t, name)
		for _, tt := range []struct {
			method string
			gzip   bool
		}{
			{http.MethodGet, false},
			{http.MethodGet, true},
			{http.MethodHead, false},
			{http.MethodHead, true},
		} {
			t.Run(name+"/"+tt.method+"/gzip="+strconv.FormatBool(tt.gzip), func(t *testing.T) {
				hdr := map[string]string{}
				if tt.gzip {
					hdr["Accept-Encoding"] = "gzip, deflate, br"
				}
				rec := do(t, tt.method, Path(name), hdr)
				res := rec.Result()
				if res.StatusCode != http.StatusOK {
					t.Fatalf("status = %d, want 200", res.StatusCode)
				}
				for header, want := range map[string]string{
					"Cache-Control":          "public, max-age=31536000, immutable",
					"X-Content-Type-Options": "nosniff",
					"Vary":                   "Accept-Encoding",
				} {
					if got := res.Header.Get(header); got != want {
						t.Errorf("%s = %q, want %q", header, got, want)
					}
				}
				if ct := wantContentType(name); ct != "" && res.Header.Get("Content-Type") != ct {
					t.Errorf("Content-Type = %q, want %q", res.Header.Get("Content-Type"), ct)
				}
				if etag := res.Header.Get("ETag"); !regexp.MustCompile(`^"[0-9a-f]{32}(-gzip)?"$`).MatchString(etag) {
					t.Errorf("ETag = %q, want a strong quoted hash", etag)
				}

				gzipped := res.Header.Get("Content-Encoding") == "gzip"
				if gzipped && !tt.gzip {
					t.Error("gzip body sent to a client that did not ask for it")
				}
				if tt.gzip && !gzipped && len(want) > 1024 {
					t.Errorf("%d-byte file not gzipped for a gzip client", len(want))
				}

				body := rec.Body.Bytes()
				if tt.method == http.MethodHead {
					if len(body) != 0 {
						t.Errorf("HEAD wrote a %d-byte body", len(body))
					}
					wantLen := len(want)
					if gzipped {
						wantLen = len(idx.byName[name].gzBody)
					}
					if cl := res.Header.Get("Content-Length"); cl != strconv.Itoa(wantLen) {
						t.Errorf("HEAD Content-Length = %q, want %d", cl, wantLen)
					}
					return
				}
				if cl := res.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
					t.Errorf("Content-Length = %q, body is %d bytes", cl, len(body))
				}
				if gzipped {
					if len(body) >= len(want) {
						t.Errorf("gzip body %d bytes, not smaller than %d", len(body), len(want))
					}
					body = gunzip(t, body)
				}
				if !bytes.Equal(body, want) {
					t.Errorf("body (%d bytes) differs from %s (%d bytes)", len(body), name, len(want))
				}
			})
		}
	}
}

func TestHandlerConditionalGet(t *testing.T) {
	url := Path("css/app.css")
	plain := do(t, http.MethodGet, url, nil).Result().Header.Get("ETag")
	zipped := do(t, http.MethodGet, url, map[string]string{"Accept-Encoding": "gzip"}).Result().Header.Get("ETag")
	if plain == "" || zipped == "" || plain == zipped {
		t.Fatalf("ETags plain=%q gzip=%q: want two different, non-empty", plain, zipped)
	}
	tests := []struct {
		name        string
		header      map[string]string
		wantStatus  int
		wantNoBytes bool
	}{
		{"matching ETag", map[string]string{"If-None-Match": plain}, http.StatusNotModified, true},
		{"matching gzip ETag", map[string]string{"If-None-Match": zipped, "Accept-Encoding": "gzip"}, http.StatusNotModified, true},
		{"one of a list", map[string]string{"If-None-Match": `"other", ` + plain}, http.StatusNotModified, true},
		{"other ETag", map[string]string{"If-None-Match": `"0000"`}, http.StatusOK, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, http.MethodGet, url, tt.header)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.wantNoBytes && rec.Body.Len() != 0 {
				t.Errorf("304 carried a %d-byte body", rec.Body.Len())
			}
			if got := rec.Result().Header.Get("Cache-Control"); !strings.Contains(got, "immutable") {
				t.Errorf("Cache-Control = %q", got)
			}
		})
	}
}

func TestHandlerNotFound(t *testing.T) {
	htmx := Path("htmx.min.js")
	stale := strings.Replace(htmx, htmx[len("/assets/htmx.min."):len(htmx)-len(".js")], "0000000000", 1)
	if stale == htmx {
		t.Fatal("could not build a stale URL")
	}
	tests := []struct{ name, target string }{
		{"bare name without fingerprint", "/assets/htmx.min.js"},
		{"stale fingerprint", stale},
		{"short fingerprint", "/assets/htmx.min.0000.js"},
		{"upper-case fingerprint", "/assets/htmx.min." + strings.ToUpper(htmx[len("/assets/htmx.min."):len(htmx)-len(".js")]) + ".js"},
		{"fingerprint on wrong file", strings.Replace(Path("css/app.css"), "/app.", "/pico.min.", 1)},
		{"unknown file", "/assets/nope.js"},
		{"prefix only", "/assets/"},
		{"directory", "/assets/css/"},
		{"directory without slash", "/assets/css"},
		{"traversal", "/assets/../go.mod"},
		{"encoded traversal", "/assets/%2e%2e/go.mod"},
		{"encoded traversal dir", "/assets/%2e%2e/"},
		{"encoded slash", "/assets/..%2fgo.mod"},
		{"traversal into css", "/assets/css/../htmx.min.js"},
		{"dot segment", "/assets/./" + strings.TrimPrefix(htmx, "/assets/")},
		{"double slash", "/assets//" + strings.TrimPrefix(htmx, "/assets/")},
		{"trailing slash", htmx + "/"},
		{"source file", "/assets/assets.go"},
		{"embedded name without prefix", "/htmx.min.js"},
		{"fingerprinted without prefix", strings.TrimPrefix(htmx, "/assets")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				rec := do(t, method, tt.target, nil)
				if rec.Code != http.StatusNotFound {
					t.Fatalf("%s %s: status = %d, want 404", method, tt.target, rec.Code)
				}
				if cc := rec.Result().Header.Get("Cache-Control"); strings.Contains(cc, "immutable") {
					t.Errorf("%s %s: a 404 is marked immutable", method, tt.target)
				}
				body := rec.Body.String()
				for _, leak := range []string{"<a href", "htmx", "module gatehouse", "pico"} {
					if strings.Contains(body, leak) {
						t.Errorf("%s %s: 404 body contains %q: %q", method, tt.target, leak, body)
					}
				}
			}
		})
	}
}

func TestHandlerRejectsOtherMethods(t *testing.T) {
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		t.Run(method, func(t *testing.T) {
			rec := do(t, method, Path("htmx.min.js"), nil)
			if rec.Code != http.StatusMethodNotAllowed {
				t.Fatalf("status = %d, want 405", rec.Code)
			}
			if got := rec.Result().Header.Get("Allow"); got != "GET, HEAD" {
				t.Errorf("Allow = %q, want %q", got, "GET, HEAD")
			}
			if strings.Contains(rec.Body.String(), "htmx") {
				t.Error("405 response carries the file")
			}
		})
	}
}

// TestHandlerBehindServeMux checks the handler as the app mounts it, over a
// real connection, so the request path is whatever the client put on the wire.
func TestHandlerBehindServeMux(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("GET /assets/", Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	get := func(target string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = target // send the path exactly as written
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, b
	}

	res, body := get(Path("css/app.css"))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", Path("css/app.css"), res.StatusCode)
	}
	// The client asked for gzip transparently and undid it.
	if !bytes.Equal(body, mustRead(t, "css/app.css")) {
		t.Error("body through the mux differs from css/app.css")
	}

	for _, target := range []string{"/assets/../go.mod", "/assets/%2e%2e/go.mod", "/assets/%2e%2e/", "/assets/css/", "/assets/css/../../go.mod"} {
		res, body := get(target)
		// ServeMux answers dot segments with a redirect to the cleaned path
		// (outside /assets/); what matters is that no file comes back.
		if res.StatusCode == http.StatusOK || bytes.Contains(body, []byte("module gatehouse")) {
			t.Errorf("GET %s: status %d, body %q", target, res.StatusCode, body)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"x-gzip", true},
		{"gzip, deflate, br, zstd", true},
		{"br", false},
		{"identity", false},
		{"gzip;q=0", false},
		{"gzip; q=0.0", false},
		{"gzip;q=0.5, br", true},
		{"deflate, gzip;q=1.0", true},
		{"*", true},
		{"*;q=0", false},
		{"*, gzip;q=0", false},
		{"gzip;q=0, *", false},
		{"gzip;q=nonsense", false},
		{"gzipped", false},
	}
	for _, tt := range tests {
		if got := acceptsGzip([]string{tt.header}); got != tt.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
	if !acceptsGzip([]string{"br", "gzip"}) {
		t.Error("gzip in a second Accept-Encoding header line was missed")
	}
}

func TestVendoredHTMXVersion(t *testing.T) {
	js := mustRead(t, "htmx.min.js")
	if !bytes.Contains(js, []byte(`"2.0.11"`)) {
		t.Error(`htmx.min.js does not contain the version string "2.0.11"`)
	}
	// The extensions register themselves with htmx under the names the
	// templates use in hx-ext.
	if !bytes.Contains(mustRead(t, "htmx-ext-sse.min.js"), []byte(`htmx.defineExtension("sse"`)) {
		t.Error(`htmx-ext-sse.min.js does not define the "sse" extension`)
	}
	if !bytes.Contains(mustRead(t, "idiomorph-ext.min.js"), []byte(`defineExtension("morph"`)) {
		t.Error(`idiomorph-ext.min.js does not define the "morph" extension`)
	}
	if !bytes.Contains(mustRead(t, "css/pico.min.css"), []byte("Pico CSS")) {
		t.Error("css/pico.min.css does not look like Pico CSS")
	}
}

// remoteRef matches url(...) or @import pointing off the site.
var remoteRef = regexp.MustCompile(`(?i)(url\(\s*['"]?\s*(https?:)?//|@import\s*(url\(|['"]))`)

func TestStylesheetsHaveNoRemoteReferences(t *testing.T) {
	for _, name := range Names() {
		if path.Ext(name) != ".css" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			css := string(mustRead(t, name))
			if strings.Contains(css, "url(http") {
				t.Error("contains url(http")
			}
			if m := remoteRef.FindString(css); m != "" {
				t.Errorf("contains a remote reference %q", m)
			}
		})
	}
}

// TestAppCSSDefinesTemplateClasses is the contract with the templates: every
// class they are promised is styled in css/app.css.
func TestAppCSSDefinesTemplateClasses(t *testing.T) {
	css := string(mustRead(t, "css/app.css"))
	selectors := []string{
		"header.topbar", ".brand", ".linklike", "main.container", "footer.site-footer",
		".page-head", ".muted", ".small", ".stack", ".row", ".card", ".auth-card",
		".alert", ".alert-error", ".alert-success", ".alert-info", ".alert-warning",
		".badge", ".badge-green", ".badge-red", ".badge-gray", ".badge-amber", ".badge-blue",
		".btn-small", ".btn-danger", ".inline-form",
		".table-wrap", "table.data", "td.num", ".pagination",
		".admin-nav", ".search-results", ".matrix", ".cell-on", ".cell-off", ".admins-only",
		".checklist", ".filters", ".field-error", ".temp-password",
		".dash-list", ".dash-card", ".dash-card.locked", ".panels", ".panel.wide", ".panel",
		".panel-head", ".panel-meta", ".panel-body", ".panel-loading", ".denied",
		".htmx-request .panel-loading",
		".htmx-indicator", ".htmx-request .htmx-indicator", ".htmx-request.htmx-indicator",
	}
	for _, sel := range selectors {
		if !regexp.MustCompile(regexp.QuoteMeta(sel) + `[\s,{:>.\[)]`).MatchString(css) {
			t.Errorf("css/app.css has no rule for %q", sel)
		}
	}
	if !regexp.MustCompile(`(?m)^\.table-wrap \{[^}]*max-width: 100%;[^}]*overflow-x: auto;`).MatchString(css) {
		t.Error(".table-wrap does not scroll horizontally")
	}
	if !regexp.MustCompile(`\.htmx-indicator \{\s*opacity: 0;\s*transition: opacity 200ms ease-in;`).MatchString(css) {
		t.Error(".htmx-indicator is not hidden with a 200ms fade")
	}
	if strings.Count(css, "{") != strings.Count(css, "}") {
		t.Error("css/app.css has unbalanced braces")
	}
}

func TestFaviconIsSVG(t *testing.T) {
	dec := xml.NewDecoder(bytes.NewReader(mustRead(t, "favicon.svg")))
	var root struct {
		XMLName xml.Name
		ViewBox string `xml:"viewBox,attr"`
	}
	if err := dec.Decode(&root); err != nil {
		t.Fatalf("favicon.svg is not well-formed XML: %v", err)
	}
	if root.XMLName.Local != "svg" || root.XMLName.Space != "http://www.w3.org/2000/svg" || root.ViewBox == "" {
		t.Errorf("favicon.svg root = %+v, want an <svg> with a viewBox", root)
	}
}

func BenchmarkHandler(b *testing.B) {
	h := Handler()
	req := httptest.NewRequest(http.MethodGet, Path("css/pico.min.css"), nil)
	req.Header.Set("Accept-Encoding", "gzip, deflate, br")
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
