// Package assets embeds the browser assets (vendored htmx and its SSE and
// idiomorph extensions, Pico CSS, the app's
// stylesheets, the favicon) and serves them under /assets/ with content-hashed
// ("fingerprinted") URLs, so every response can be cached forever.
//
// Templates link to an asset with Path("css/app.css"); the server mounts
// Handler on "GET /assets/". Both read one index built when the package is
// initialised: per request the handler does a single map lookup, never hashing
// or compressing anything.
package assets

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
)

//go:embed htmx.min.js htmx-ext-sse.min.js idiomorph-ext.min.js gatehouse.js favicon.svg css js
var files embed.FS

// urlPrefix is where Handler is mounted; every URL from Path starts with it.
const urlPrefix = "/assets/"

// hashLen is how many hex characters of the content's SHA-256 go into a URL.
const hashLen = 10

// cacheForever is sent with every asset: the URL changes when the bytes do.
const cacheForever = "public, max-age=31536000, immutable"

// entry is one embedded file, with everything a response needs precomputed.
type entry struct {
	name        string // name inside the FS, e.g. "css/app.css"
	url         string // fingerprinted URL, e.g. "/assets/css/app.0123456789.css"
	contentType string
	body        []byte
	etag        string // strong ETag of body
	length      string // len(body) for Content-Length
	gzBody      []byte // gzip of body; nil when compression does not pay
	gzETag      string // strong ETag of gzBody
	gzLength    string // len(gzBody)
}

// index maps both ways between names and fingerprinted URLs.
type index struct {
	byName map[string]*entry
	byURL  map[string]*entry
	names  []string // sorted
}

var idx = mustBuildIndex(files)

// Path returns the fingerprinted URL for an embedded file, e.g.
// Path("htmx.min.js") == "/assets/htmx.min.3f2a1b9c0d.js": the first 10 hex
// characters of the SHA-256 of the content are inserted before the extension.
// It panics for an unknown name, a programming error the tests catch.
func Path(name string) string {
	e, ok := idx.byName[name]
	if !ok {
		panic("assets: unknown asset " + strconv.Quote(name))
	}
	return e.url
}

// Handler serves GET and HEAD requests for the URLs Path returns. Mount it on
// "GET /assets/" without http.StripPrefix: it matches the full request path.
//
// A hit is answered with the file, Cache-Control "public, max-age=31536000,
// immutable", its Content-Type and Content-Length, an ETag (a matching
// If-None-Match gives 304), X-Content-Type-Options: nosniff and
// Vary: Accept-Encoding; the body is gzip-compressed (precomputed) when the
// client accepts gzip. HEAD gets the same headers and no body. Anything else under /assets/
// is 404: unknown names, the bare name without its fingerprint, a stale or
// wrong fingerprint, directories and traversal attempts. There is never a
// directory listing. Other methods get 405 with an Allow header.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

// Names lists the embedded file names (for tests), sorted, e.g.
// "css/app.css", "favicon.svg", "htmx.min.js".
func Names() []string {
	return slices.Clone(idx.names)
}

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	e, ok := idx.byURL[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}

	body, etag, length := e.body, e.etag, e.length
	h.Set("Vary", "Accept-Encoding")
	if e.gzBody != nil && acceptsGzip(r.Header.Values("Accept-Encoding")) {
		body, etag, length = e.gzBody, e.gzETag, e.gzLength
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Cache-Control", cacheForever)
	h.Set("ETag", etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagListMatches(inm, etag) {
		h.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", e.contentType)
	h.Set("Content-Length", length)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body) // a client that went away is not our error
	}
}

// etagListMatches reports whether an If-None-Match value names etag, using
// the weak comparison RFC 9110 prescribes for it ("W/" prefixes ignored).
func etagListMatches(list, etag string) bool {
	for list != "" {
		var tag string
		tag, list, _ = strings.Cut(list, ",")
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip:
// a "gzip" (or "*") coding whose q-value is not zero.
func acceptsGzip(values []string) bool {
	gz, star := -1.0, -1.0 // q-values; -1 means not mentioned
	for _, v := range values {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			coding, params, _ := strings.Cut(item, ";")
			coding = strings.TrimSpace(coding)
			var q *float64
			switch {
			case strings.EqualFold(coding, "gzip"), strings.EqualFold(coding, "x-gzip"):
				q = &gz
			case coding == "*":
				q = &star
			default:
				continue
			}
			*q = qValue(params)
		}
	}
	if gz >= 0 {
		return gz > 0
	}
	return star > 0
}

// qValue returns the q parameter of an Accept-Encoding item (default 1).
func qValue(params string) float64 {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || q < 0 {
				return 0
			}
			return q
		}
	}
	return 1
}

// mustBuildIndex reads every file of fsys once: hash, fingerprinted URL,
// content type and gzip body. It panics on error; the FS is compiled in.
func mustBuildIndex(fsys fs.FS) *index {
	ix := &index{byName: map[string]*entry{}, byURL: map[string]*entry{}}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		e, err := newEntry(name, body)
		if err != nil {
			return err
		}
		if other, dup := ix.byURL[e.url]; dup {
			return fmt.Errorf("%s and %s share the URL %s", other.name, name, e.url)
		}
		ix.byName[name] = e
		ix.byURL[e.url] = e
		ix.names = append(ix.names, name)
		return nil
	})
	if err != nil {
		panic("assets: building the index: " + err.Error())
	}
	slices.Sort(ix.names)
	return ix
}

func newEntry(name string, body []byte) (*entry, error) {
	sum := sha256.Sum256(body)
	hexSum := hex.EncodeToString(sum[:])
	e := &entry{
		name:        name,
		url:         fingerprint(name, hexSum[:hashLen]),
		contentType: contentType(name),
		body:        body,
		etag:        `"` + hexSum[:32] + `"`,
		length:      strconv.Itoa(len(body)),
	}
	gz, err := gzipBytes(body)
	if err != nil {
		return nil, fmt.Errorf("gzip %s: %w", name, err)
	}
	if len(gz) < len(body) {
		e.gzBody = gz
		e.gzETag = `"` + hexSum[:32] + `-gzip"`
		e.gzLength = strconv.Itoa(len(gz))
	}
	return e, nil
}

// fingerprint inserts hash before the file's extension and adds the prefix:
// ("css/app.css", "0123456789") -> "/assets/css/app.0123456789.css".
func fingerprint(name, hash string) string {
	ext := path.Ext(name)
	return urlPrefix + strings.TrimSuffix(name, ext) + "." + hash + ext
}

// contentType names the type of the file, with a charset for text.
func contentType(name string) string {
	switch ext := path.Ext(name); ext {
	case ".css":
		return "text/css; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".json", ".map":
		return "application/json"
	default:
		if t := mime.TypeByExtension(ext); t != "" {
			return t
		}
		return "application/octet-stream"
	}
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
