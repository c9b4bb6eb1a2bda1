package scim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gatehouse/app/scim"
	"gatehouse/db"
	"gatehouse/db/postgrestest"
)

// env is a SCIM handler over a fresh database, served by httptest.
type env struct {
	t     testing.TB
	store *db.Store
	srv   *httptest.Server
	token string
	ids   map[string]string // ids saved by replayed steps
}

// dialects runs f on SQLite and, when GATEHOUSE_TEST_POSTGRES is set, on
// a fresh PostgreSQL schema.
func dialects(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, "") })
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv(postgrestest.EnvVar) == "" {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not set in CI", postgrestest.EnvVar)
			}
			t.Skipf("%s not set: PostgreSQL not tested", postgrestest.EnvVar)
		}
		f(t, postgrestest.Schema(t))
	})
}

func newEnv(t testing.TB, dsn string, policy db.SSOPolicy) *env {
	t.Helper()
	ctx := context.Background()
	store, err := db.Open(ctx, db.Config{DSN: dsn, DataDir: filepath.Join(t.TempDir(), "data")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if store.Dialect == db.Postgres {
		store.AccessFeed()
		for deadline := time.Now().Add(10 * time.Second); !store.LeaseStats().Trusted; {
			if time.Now().After(deadline) {
				t.Fatal("the PostgreSQL store never came to trust the version NOTIFY")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	tok, err := store.CreateSCIMToken(ctx, db.Actor{Email: "test"}, "okta")
	if err != nil {
		t.Fatal(err)
	}
	h := scim.New(scim.Config{Store: store, BaseURL: "https://gatehouse.example", Policy: policy, MaxBody: 64 << 10,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		store.Close()
	})
	return &env{t: t, store: store, srv: srv, token: tok, ids: map[string]string{}}
}

// do sends a SCIM request with the env's token; body may be nil, a string
// (sent as is) or anything else (sent as JSON).
func (e *env) do(method, path string, body any) (int, map[string]any, http.Header) {
	e.t.Helper()
	return e.doWith(method, path, body, "Bearer "+e.token)
}

func (e *env) doWith(method, path string, body any, auth string) (int, map[string]any, http.Header) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+"/scim/v2"+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/scim+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if len(raw) > 0 {
		if ct := res.Header.Get("Content-Type"); ct != "application/scim+json" {
			e.t.Fatalf("%s %s: Content-Type %q, body %s", method, path, ct, raw)
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			e.t.Fatalf("%s %s: not JSON: %s", method, path, raw)
		}
	}
	return res.StatusCode, out, res.Header
}

// replay is a request sequence in testdata.
type replay struct {
	About string `json:"about"`
	Steps []struct {
		Name   string         `json:"name"`
		Method string         `json:"method"`
		Path   string         `json:"path"`
		Body   any            `json:"body"`
		Status int            `json:"status"`
		Want   map[string]any `json:"want"`
		Save   string         `json:"save"`
		Absent []string       `json:"absent"`
		// AbsentInResources: attributes no listed resource may have.
		AbsentInResources []string `json:"absentInResources"`
	} `json:"steps"`
}

// expand replaces {name} with the id saved under name.
func (e *env) expand(s string) string {
	for k, v := range e.ids {
		s = strings.ReplaceAll(s, "{"+k+"}", v)
	}
	return s
}

func (e *env) replay(t *testing.T, file string) {
	raw, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var r replay
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	for i, s := range r.Steps {
		var body any
		if s.Body != nil {
			b, _ := json.Marshal(s.Body)
			body = e.expand(string(b))
		}
		status, got, _ := e.do(s.Method, e.expand(s.Path), body)
		where := fmt.Sprintf("%s step %d (%s): %s %s", file, i+1, s.Name, s.Method, s.Path)
		if status != s.Status {
			t.Fatalf("%s: status %d, want %d: %v", where, status, s.Status, got)
		}
		if s.Want != nil {
			var want map[string]any
			b, _ := json.Marshal(s.Want)
			if err := json.Unmarshal([]byte(e.expand(string(b))), &want); err != nil {
				t.Fatal(err)
			}
			if msg := subset(want, got, ""); msg != "" {
				t.Fatalf("%s: %s\ngot %v", where, msg, got)
			}
		}
		for _, a := range s.Absent {
			if _, ok := got[a]; ok {
				t.Fatalf("%s: %s present: %v", where, a, got)
			}
		}
		for _, a := range s.AbsentInResources {
			for _, res := range got["Resources"].([]any) {
				if _, ok := res.(map[string]any)[a]; ok {
					t.Fatalf("%s: %s present in a resource: %v", where, a, res)
				}
			}
		}
		if s.Save != "" {
			e.ids[s.Save] = got["id"].(string)
		}
	}
}

// subset says how got differs from want: every key of want must be in
// got with the same value; lists must have the same length, element by
// element subsets.
func subset(want, got any, at string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: got %T, want an object", at, got)
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				return fmt.Sprintf("%s.%s missing", at, k)
			}
			if msg := subset(wv, gv, at+"."+k); msg != "" {
				return msg
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: got %v, want %v", at, got, want)
		}
		for i := range w {
			if msg := subset(w[i], g[i], fmt.Sprintf("%s[%d]", at, i)); msg != "" {
				return msg
			}
		}
	default:
		if !reflect.DeepEqual(want, got) {
			return fmt.Sprintf("%s: got %v, want %v", at, got, want)
		}
	}
	return ""
}

// testWriter sends the handler's log to the test's.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
