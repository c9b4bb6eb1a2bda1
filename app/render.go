package app

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/a-h/templ"

	"gatehouse/components"
	"gatehouse/db"
)

// isHTMX reports whether the request wants a fragment: htmx sent it and it
// is not a boosted navigation.
func isHTMX(r *http.Request) bool {
	// Looked up by their canonical forms: Header.Get would canonicalise
	// "HX-Request" into a new string on every call, several per poll.
	return firstValue(r.Header["Hx-Request"]) == "true" && firstValue(r.Header["Hx-Boosted"]) != "true"
}

func firstValue(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// render writes body with status: alone for htmx requests, inside the page
// layout otherwise. It renders into a buffer first so a failed render never
// leaves half a page.
func (a *App) render(w http.ResponseWriter, r *http.Request, status int, page components.Page, body templ.Component) {
	if page.Viewer == nil {
		if v := viewerFrom(r.Context()); v != nil {
			page.Viewer = &v.User
		}
	}
	c := body
	if !isHTMX(r) {
		if page.Viewer != nil && !page.Viewer.IsAdmin && !page.Bare && page.Managed == nil {
			// The top bar's "Groups you manage" (one cached read per full page).
			managed, err := a.store.ManagedGroups(r.Context(), page.Viewer.ID)
			if err != nil {
				a.serverError(w, r, err)
				return
			}
			page.Managed = managed
		}
		c = templ.ComponentFunc(func(ctx context.Context, w2 io.Writer) error {
			return components.Layout(page).Render(templ.WithChildren(ctx, body), w2)
		})
	}
	a.write(w, r, status, c)
}

// renderFragment writes a fragment with no layout, whatever the request.
func (a *App) renderFragment(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	a.write(w, r, status, c)
}

func (a *App) write(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	buf := renderBuffers.Get().(*bytes.Buffer)
	defer putRenderBuffer(buf)
	ctx := r.Context()
	if v := viewerFrom(ctx); v != nil && !v.User.IsAdmin {
		ctx = components.WithManagerView(ctx)
	}
	if err := c.Render(ctx, buf); err != nil {
		a.serverError(w, r, err)
		return
	}
	writeHTML(w, status, buf.Bytes())
}

// writeHTML writes a whole HTML body with status: every rendered page,
// fragment and error goes out through it.
func writeHTML(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = htmlHeader
	// net/http adds Content-Length itself to a body that fits its 2 KiB
	// buffer, without touching the header map; a larger body written in one
	// piece would go out chunked, so say its length.
	if len(body) > chunkingThreshold {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// chunkingThreshold is net/http's bufferBeforeChunkingSize.
const chunkingThreshold = 2048

// renderBuffers reuses render buffers: a panel polled by every open
// dashboard otherwise grows a fresh buffer, allocation by allocation, on
// every request.
var renderBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putRenderBuffer(buf *bytes.Buffer) {
	if buf.Cap() > 256<<10 { // let the rare huge page go
		return
	}
	buf.Reset()
	renderBuffers.Put(buf)
}

// redirect sends the browser to url: HX-Redirect for htmx requests (which
// cannot follow a 303 into a full page), 303 See Other otherwise.
func (a *App) redirect(w http.ResponseWriter, r *http.Request, to string) {
	if isHTMX(r) {
		w.Header().Set("HX-Redirect", to)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// loginURL is the login page that returns to the request's path.
func loginURL(r *http.Request) string {
	next := r.URL.RequestURI()
	if isHTMX(r) {
		// For a fragment, come back to the page that held it.
		if cur := r.Header.Get("HX-Current-URL"); cur != "" {
			if u, err := url.Parse(cur); err == nil {
				next = u.RequestURI()
			}
		}
	}
	return "/login?next=" + url.QueryEscape(safeNext(next))
}

// errorPage renders a plain error page or fragment.
func (a *App) errorPage(w http.ResponseWriter, r *http.Request, status int, heading, message string) {
	a.render(w, r, status, components.Page{Title: heading}, components.ErrorPage(heading, message))
}

func (a *App) notFound(w http.ResponseWriter, r *http.Request) {
	a.errorPage(w, r, http.StatusNotFound, "Not found", "There is nothing at this address.")
}

func (a *App) forbidden(w http.ResponseWriter, r *http.Request, message string) {
	a.errorPage(w, r, http.StatusForbidden, "Forbidden", message)
}

// failed answers a store error: 404 for db.ErrNotFound, the error page
// (500, or 503 when the database is unavailable) for anything else. It
// reports whether there was an error to answer.
func (a *App) failed(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, db.ErrNotFound):
		a.notFound(w, r)
	default:
		a.serverError(w, r, err)
	}
	return true
}

// statusClientClosed is nginx's 499, "client closed request": the status a
// request is logged with when its client left before the answer.
const statusClientClosed = 499

// serverError logs err and answers a plain 500 page: never err's text.
func (a *App) serverError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		// The client went away (a closed tab, a load generator stopping)
		// and the work was cancelled with its request: nothing failed, and
		// nobody reads the answer. Logged, and counted in metrics, as nginx
		// logs it, so that it never shows as a server error.
		w.WriteHeader(statusClientClosed)
		return
	}
	a.log.ErrorContext(r.Context(), "request failed", "err", err, "method", r.Method, "path", r.URL.Path, "request_id", requestID(r.Context()))
	status, msg := storageStatus(err)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	body := components.ErrorPage("Something went wrong", msg)
	c := body
	if !isHTMX(r) {
		c = templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
			return components.Layout(components.Page{Title: "Error"}).Render(templ.WithChildren(ctx, body), w)
		})
	}
	var buf bytes.Buffer
	_ = c.Render(r.Context(), &buf)
	writeHTML(w, status, buf.Bytes())
}
