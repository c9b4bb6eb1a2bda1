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
	"net/url"
	"os"
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
