// Package postgrestest gives tests a fresh, empty PostgreSQL schema of their
// own on the server named by GATEHOUSE_TEST_POSTGRES.
//
// Without that variable the PostgreSQL half of a test skips with a message,
// except under CI=true, where it fails: CI must run it (.ci/run starts a
// throwaway server and sets the variable).
package postgrestest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"
)

// EnvVar names the variable holding the test server's DSN, e.g.
// postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable.
const EnvVar = "GATEHOUSE_TEST_POSTGRES"

// ServerDSN returns the test server's DSN, or skips t when none is set
// (fails it under CI=true).
func ServerDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvVar)
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set, and CI=true requires the PostgreSQL tests to run", EnvVar)
		}
		t.Skipf("skipping the PostgreSQL half: set %s to a PostgreSQL DSN (as .ci/run does) to run it", EnvVar)
	}
	return dsn
}

// Schema creates a fresh schema on the test server, drops it (with
// everything in it) when t ends, and returns a DSN whose connections use it
// as their search_path: what a test sees is as empty as a new database.
func Schema(t testing.TB) string {
	t.Helper()
	base := ServerDSN(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s is not a URL: %v", EnvVar, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "test_" + hex.EncodeToString(b[:])

	admin := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(base)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("cannot create a test schema on the PostgreSQL server in %s: %v", EnvVar, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping test schema %s: %v", schema, err)
		}
	})

	// pgdriver sends unknown DSN parameters as SET commands on every new
	// connection, so search_path=<schema> pins the pool to the schema.
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Proxy forwards a local port to a PostgreSQL server, so a test can cut
// the database off (closing every connection, refusing new ones) and bring
// it back on the same address.
type Proxy struct {
	t      testing.TB
	target string
	// Addr is the proxy's address; DSN is the test's DSN through it.
	Addr string
	DSN  string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

// NewProxy reserves a local address for a proxy to dsn's server; call
// Start. It stops when the test ends.
func NewProxy(t testing.TB, dsn string) *Proxy {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	if u.Port() == "" {
		target = u.Hostname() + ":5432"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, target: target, Addr: ln.Addr().String()}
	ln.Close()
	u.Host = p.Addr
	p.DSN = u.String()
	t.Cleanup(p.Stop)
	return p
}

// Start accepts connections and forwards each to the server.
func (p *Proxy) Start() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.Addr)
	if err != nil {
		p.t.Fatalf("proxy: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// Stop closes the listener and every forwarded connection.
func (p *Proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
