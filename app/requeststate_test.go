package app

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

type testCtxKey string

// TestRequestStateIsAContext: the request state, as the request's context,
// answers for itself and passes everything else (values, cancellation) to
// its parent, also to contexts made from it, and also after loadViewer put
// the snapshot under it.
func TestRequestStateIsAContext(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), testCtxKey("server"), "server value"))
	st := &requestState{parent: parent, id: "1"}
	derived, stop := context.WithCancel(context.WithValue(st, testCtxKey("other"), 1))
	defer stop()
	if stateFrom(st) != st || stateFrom(derived) != st {
		t.Fatal("the state is not found from its own context or one made from it")
	}
	st.parent = context.WithValue(parent, testCtxKey("snapshot"), 2) // as loadViewer does
	for _, ctx := range []context.Context{st, derived} {
		if ctx.Value(testCtxKey("server")) != "server value" || ctx.Value(testCtxKey("snapshot")) != 2 {
			t.Errorf("values of the parent are not seen: %v, %v", ctx.Value(testCtxKey("server")), ctx.Value(testCtxKey("snapshot")))
		}
	}
	cancel()
	for _, ctx := range []context.Context{st, derived} {
		select {
		case <-ctx.Done():
		default:
			t.Fatal("cancelling the request's context does not reach the state or its children")
		}
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("Err: %v", ctx.Err())
		}
	}
}

// TestHandlersSeeViewerAndSnapshotWithoutRequestCopy: through the whole
// chain, a logged-in request reaches the handler with one context that is
// the request state, carrying the viewer.
func TestHandlersSeeViewerAndSnapshotWithoutRequestCopy(t *testing.T) {
	ta := newTestApp(t)
	ta.createUser(t, "ann@example.com", false)
	cookie := ta.login(t, "ann@example.com")
	var seen *requestState
	h := chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = r.Context().(*requestState)
		if v := viewerFrom(r.Context()); v == nil || v.User.Email != "ann@example.com" {
			t.Errorf("viewer %+v, want ann", v)
		}
	}), ta.logRequests, ta.securityHeaders, ta.loadViewer)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: ta.sessions.CookieName(), Value: ta.sessionCookie(cookie)})
	h.ServeHTTP(httptest.NewRecorder(), r)
	if seen == nil || seen.parent == r.Context() {
		t.Fatalf("the handler's context is not the request state with the snapshot under it (%T)", seen)
	}
}
