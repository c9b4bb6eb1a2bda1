package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"gatehouse/db"
)

// Prefix is where SCIM is served.
const Prefix = "/scim/v2"

// Schema and message URNs.
const (
	schemaUser        = "urn:ietf:params:scim:schemas:core:2.0:User"
	schemaGroup       = "urn:ietf:params:scim:schemas:core:2.0:Group"
	schemaEnterprise  = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	schemaError       = "urn:ietf:params:scim:api:messages:2.0:Error"
	schemaList        = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	schemaPatch       = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	schemaSPC         = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	schemaResType     = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	schemaSchema      = "urn:ietf:params:scim:schemas:core:2.0:Schema"
	contentType       = "application/scim+json"
	defaultMaxBody    = 1 << 20
	maxCount          = 1000 // the most resources one list answers
	noteEvery         = time.Second
	defaultListCount  = 100
	maxOperations     = 1000
	maxFilterLen      = 1000
	maxAttributeNames = 50
)

// Config is what the server lends the SCIM handler.
type Config struct {
	Store *db.Store
	Log   *slog.Logger
	// BaseURL is Gatehouse's public URL, for meta.location.
	BaseURL string
	// Policy is the SSO sign-in's rule for linking an existing account by
	// email (--oidc-domains, --oidc-link): SCIM links by the same rule.
	Policy db.SSOPolicy
	// ClientIP returns a request's client address for the audit log.
	ClientIP func(*http.Request) string
	// MaxBody caps a request body (default 1 MiB): more gets 413.
	MaxBody int64
}

// Handler serves /scim/v2.
type Handler struct {
	cfg Config
	mux *http.ServeMux

	mu    sync.Mutex
	noted map[string]time.Time // when each token's last request was last written
}

// New returns the SCIM handler.
func New(cfg Config) *Handler {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = defaultMaxBody
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = func(r *http.Request) string { return r.RemoteAddr }
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), noted: map[string]time.Time{}}
	m := h.mux
	m.HandleFunc("GET "+Prefix+"/ServiceProviderConfig", h.serviceProviderConfig)
	m.HandleFunc("GET "+Prefix+"/ResourceTypes", h.resourceTypes)
	m.HandleFunc("GET "+Prefix+"/ResourceTypes/{id}", h.resourceType)
	m.HandleFunc("GET "+Prefix+"/Schemas", h.schemas)
	m.HandleFunc("GET "+Prefix+"/Schemas/{id}", h.schema)
	m.HandleFunc("GET "+Prefix+"/Users", h.listUsers)
	m.HandleFunc("POST "+Prefix+"/Users", h.createUser)
	m.HandleFunc("GET "+Prefix+"/Users/{id}", h.getUser)
	m.HandleFunc("PUT "+Prefix+"/Users/{id}", h.replaceUser)
	m.HandleFunc("PATCH "+Prefix+"/Users/{id}", h.patchUser)
	m.HandleFunc("DELETE "+Prefix+"/Users/{id}", h.deleteUser)
	m.HandleFunc("GET "+Prefix+"/Groups", h.listGroups)
	m.HandleFunc("POST "+Prefix+"/Groups", h.createGroup)
	m.HandleFunc("GET "+Prefix+"/Groups/{id}", h.getGroup)
	m.HandleFunc("PUT "+Prefix+"/Groups/{id}", h.replaceGroup)
	m.HandleFunc("PATCH "+Prefix+"/Groups/{id}", h.patchGroup)
	m.HandleFunc("DELETE "+Prefix+"/Groups/{id}", h.deleteGroup)
	unknown := func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, &Error{Status: http.StatusNotFound, Detail: "There is no SCIM resource at " + r.URL.Path + " for " + r.Method + "."})
	}
	m.HandleFunc(Prefix+"/", unknown)
	m.HandleFunc(Prefix+"/{$}", unknown)
	m.HandleFunc(Prefix, unknown)
	return h
}

// Error is a SCIM error answer (RFC 7644 §3.12).
type Error struct {
	Status   int
	SCIMType string
	Detail   string
}

func (e *Error) Error() string { return e.Detail }

func badRequest(scimType, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, SCIMType: scimType, Detail: fmt.Sprintf(format, args...)}
}

type tokenKey struct{}

// token is the name of the request's token.
func token(ctx context.Context) string {
	name, _ := ctx.Value(tokenKey{}).(string)
	return name
}

// actor is who a request's changes are audited as.
func (h *Handler) actor(r *http.Request) db.Actor {
	return db.Actor{Email: "scim:" + token(r.Context()), IP: h.cfg.ClientIP(r)}
}

// ServeHTTP authenticates the bearer token, then serves the request. A
// cookie is never looked at: without a valid token the answer is 401.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	sw := &recorder{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.cfg.Log.ErrorContext(r.Context(), "scim panic", "value", fmt.Sprint(v), "stack", string(debug.Stack()))
			if sw.status == 0 {
				writeError(sw, r, &Error{Status: http.StatusInternalServerError, Detail: "Gatehouse failed to answer this request; the error is in its log."})
			}
		}
	}()
	name, err := h.authenticate(r)
	if err != nil {
		hd.Set("WWW-Authenticate", `Bearer realm="gatehouse-scim"`)
		writeError(sw, r, err)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), tokenKey{}, name))
	if p := r.URL.Path; path.Clean(p) != p && path.Clean(p)+"/" != p {
		// The mux would answer a redirect with an HTML page.
		writeError(sw, r, &Error{Status: http.StatusNotFound, Detail: "There is no SCIM resource at " + p + " for " + r.Method + "."})
	} else if r.ContentLength > h.cfg.MaxBody {
		writeError(sw, r, tooLarge(h.cfg.MaxBody))
	} else {
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(sw, r.Body, h.cfg.MaxBody)
		}
		h.mux.ServeHTTP(sw, r)
	}
	h.note(r, name, sw)
}

func tooLarge(max int64) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("The request body is larger than Gatehouse accepts (%d bytes).", max)}
}

// authenticate returns the name of the request's valid bearer token.
func (h *Handler) authenticate(r *http.Request) (string, *Error) {
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", &Error{Status: http.StatusUnauthorized, Detail: "A SCIM request needs an Authorization: Bearer header with a token from 'gatehouse scim token create'."}
	}
	t, err := h.cfg.Store.SCIMTokenByHash(r.Context(), db.HashToken(tok))
	if errors.Is(err, db.ErrNotFound) {
		return "", &Error{Status: http.StatusUnauthorized, Detail: "This SCIM token is not valid: it was revoked, or never made."}
	}
	if err != nil {
		h.cfg.Log.ErrorContext(r.Context(), "scim token lookup", "err", err)
		return "", &Error{Status: http.StatusServiceUnavailable, Detail: "Gatehouse cannot read its database just now."}
	}
	return t.Name, nil
}

// note records the token's last request (at most once a second per
// token) and its last error (always).
func (h *Handler) note(r *http.Request, name string, sw *recorder) {
	now := time.Now()
	h.mu.Lock()
	due := now.Sub(h.noted[name]) >= noteEvery
	if due || sw.errDetail != "" {
		h.noted[name] = now
	}
	h.mu.Unlock()
	if !due && sw.errDetail == "" {
		return
	}
	req := fmt.Sprintf("%s %s %d", r.Method, strings.TrimPrefix(r.URL.Path, Prefix), sw.status)
	msg := ""
	if sw.errDetail != "" {
		msg = req + ": " + sw.errDetail
	}
	if err := h.cfg.Store.NoteSCIMRequest(context.WithoutCancel(r.Context()), name, req, msg); err != nil {
		h.cfg.Log.WarnContext(r.Context(), "scim: recording the token's last request", "err", err)
	}
}

// recorder keeps the status and the error detail of an answer.
type recorder struct {
	http.ResponseWriter
	status    int
	errDetail string
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writeJSON answers status with v as SCIM JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(true)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"schemas":["` + schemaError + `"],"status":"500","detail":"Gatehouse could not encode its answer."}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeError answers err as a SCIM error.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Detail: "Gatehouse failed to answer this request; the error is in its log."}
	}
	body := map[string]any{"schemas": []string{schemaError}, "status": strconv.Itoa(e.Status), "detail": e.Detail}
	if e.SCIMType != "" {
		body["scimType"] = e.SCIMType
	}
	if rec, ok := w.(*recorder); ok {
		rec.errDetail = e.Detail
	}
	writeJSON(w, e.Status, body)
}

// fail answers an error from the store or the request: SCIM errors as
// they are, the store's refusals with their SCIM status, anything else
// logged and answered 500 without its text.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &e):
	case errors.As(err, &mbe):
		e = tooLarge(mbe.Limit)
	case errors.Is(err, db.ErrNotFound):
		e = &Error{Status: http.StatusNotFound, Detail: "No such resource."}
	case errors.Is(err, db.ErrDuplicate):
		e = &Error{Status: http.StatusConflict, SCIMType: "uniqueness", Detail: plain(err)}
	case errors.Is(err, db.ErrSCIMLinkRefused):
		e = &Error{Status: http.StatusConflict, SCIMType: "uniqueness", Detail: "An account with this email exists and is not linked: " +
			"only accounts of the SSO domains (--oidc-domains), with linking by email on (--oidc-link=email), and not an admin's, are linked by SCIM."}
	case errors.Is(err, db.ErrSCIMAdminEmail):
		e = &Error{Status: http.StatusForbidden, Detail: "This account is a Gatehouse admin's: its email is changed in Gatehouse, not over SCIM."}
	case errors.Is(err, db.ErrSCIMUnknownMember):
		msg := err.Error()
		e = badRequest("invalidValue", "%s%s (a member must be a user provisioned over SCIM).", strings.ToUpper(msg[:1]), msg[1:])
	case errors.Is(err, db.ErrLastAdmin):
		e = &Error{Status: http.StatusConflict, SCIMType: "mutability", Detail: "This is the last active admin of Gatehouse: it cannot be deactivated."}
	case errors.Is(err, db.ErrUnavailable):
		e = &Error{Status: http.StatusServiceUnavailable, Detail: "Gatehouse cannot write to its database just now."}
		h.cfg.Log.ErrorContext(r.Context(), "scim", "err", err)
	default:
		h.cfg.Log.ErrorContext(r.Context(), "scim", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &Error{Status: http.StatusInternalServerError, Detail: "Gatehouse failed to answer this request; the error is in its log."}
	}
	writeError(w, r, e)
}

// plain is an error's message with its sentinel suffix removed, first
// letter capitalised, ending in a full stop.
func plain(err error) string {
	msg := err.Error()
	for _, s := range []error{db.ErrDuplicate, db.ErrNotFound, db.ErrSCIMUnknownMember} {
		msg = strings.TrimSuffix(msg, ": "+s.Error())
	}
	if msg == "" {
		return msg
	}
	msg = strings.ToUpper(msg[:1]) + msg[1:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// readJSON decodes a request body that must be one JSON object.
func readJSON(r *http.Request) (map[string]any, error) {
	if r.Body == nil {
		return nil, badRequest("invalidSyntax", "The request has no body; it must be a JSON object.")
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(mbe.Limit)
		}
		return nil, badRequest("invalidSyntax", "The request body could not be read.")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, badRequest("invalidSyntax", "The request body is not valid JSON: %s.", jsonProblem(err))
	}
	if dec.More() {
		return nil, badRequest("invalidSyntax", "The request body holds more than one JSON value.")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, badRequest("invalidSyntax", "The request body must be a JSON object.")
	}
	return m, nil
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "it ends too early"
	}
	return "it could not be decoded"
}

// parseID reads a resource id from the path: ids are Gatehouse's numbers.
func parseID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id, err == nil && id > 0
}

// location is a resource's URL.
func (h *Handler) location(kind string, id int64) string {
	return h.cfg.BaseURL + Prefix + "/" + kind + "/" + strconv.FormatInt(id, 10)
}

func stamp(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }
