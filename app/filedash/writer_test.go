package filedash

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/app/dashboards"
)

// writerEnv names the database TestSQLiteSourceWriterProcess's child
// process writes to; without it the helper test does nothing.
const writerEnv = "GATEHOUSE_FILEDASH_WRITER_DB"

const writerRows = 200

// TestSQLiteSourceWriterProcess: a team's SQLite file in WAL mode, written
// by another process (its app) the whole time Gatehouse reads it through a
// read-only source. Every panel answers with a count, never an error, the
// counts never go down, and once the writer is done the panel shows all
// its rows: read-only never means stale, locked or broken.
func TestSQLiteSourceWriterProcess(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	rw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`PRAGMA journal_mode=WAL`, `CREATE TABLE events (id INTEGER PRIMARY KEY, at TEXT)`} {
		if _, err := rw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	rw.Close()

	writeFile(t, dir, SourcesFile, "sources:\n  app: sqlite:app.db\n")
	writeFile(t, dir, "events.yaml", "slug: events\ntitle: Events\nsource: app\npanels:\n"+
		"  - {id: count, title: Events, chart: stat, refresh: 1s, sql: 'SELECT count(*) AS events FROM events'}\n")
	reg := dashboards.NewRegistry()
	srv, err := Open(context.Background(), Config{Dir: dir, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	f := &fixture{reg: reg, store: newStore(t)}

	child := exec.Command(os.Args[0], "-test.run=^TestSQLiteSourceWriterHelper$")
	child.Env = append(os.Environ(), writerEnv+"="+path)
	var out strings.Builder
	child.Stdout, child.Stderr = &out, &out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- child.Wait() }()

	last, reads, counts := -1, 0, map[int]bool{}
	now := testNow
	read := func() {
		t.Helper()
		now = now.Add(2 * time.Second) // past the panel's refresh: a fresh query each time
		got := f.panelAt(t, now, "events", "count", dashboards.Viewer{IsAdmin: true}, nil)
		var n int
		i := strings.Index(got, `stat-value">`)
		if i < 0 {
			t.Fatalf("read %d while another process writes: %s", reads, got)
		}
		if _, err := fmt.Sscanf(got[i+len(`stat-value">`):], "%d", &n); err != nil {
			t.Fatalf("read %d: no count in %s", reads, got)
		}
		if n < last {
			t.Fatalf("read %d: %d events after %d", reads, n, last)
		}
		last = n
		counts[n] = true
		reads++
	}
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("the writer process failed: %v\n%s", err, out.String())
			}
			running = false
		default:
			read()
		}
	}
	read()
	t.Logf("%d reads beside the writer saw %d different counts", reads, len(counts))
	if last != writerRows {
		t.Errorf("after the writer finished the panel shows %d events, want %d", last, writerRows)
	}
}

// TestSQLiteSourceWriterHelper is the other process of
// TestSQLiteSourceWriterProcess: it inserts writerRows rows, one
// transaction each, into the database writerEnv names.
func TestSQLiteSourceWriterHelper(t *testing.T) {
	path := os.Getenv(writerEnv)
	if path == "" {
		t.Skip("the writer process of TestSQLiteSourceWriterProcess")
	}
	rw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	for i := range writerRows {
		if _, err := rw.Exec(`INSERT INTO events (at) VALUES (?)`, time.Now().Format(time.RFC3339Nano)); err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
		time.Sleep(time.Millisecond)
	}
}
