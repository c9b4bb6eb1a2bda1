package db

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestFormatProgress(t *testing.T) {
	for _, c := range []struct {
		done, total int64
		unit        string
		elapsed     time.Duration
		want        string
	}{
		{0, 40000, "rows", 0, "0 of 40,000 rows (0%)"},
		{12000, 40000, "rows", 1500 * time.Millisecond, "12,000 of 40,000 rows (30%), 8,000 rows/s, about 4s left"},
		{40000, 40000, "rows", 5 * time.Second, "40,000 of 40,000 rows (100%), 8,000 rows/s"},
		{3 << 20, 12 << 20, "bytes", 3 * time.Second, "3.0 MiB of 12.0 MiB (25%), 1.0 MiB/s, about 9s left"},
		{512, 0, "bytes", 0, "512 B"},
		{1234567, 0, "rows", time.Second, "1,234,567 rows, 1,234,567 rows/s"},
	} {
		if got := FormatProgress(c.done, c.total, c.unit, c.elapsed); got != c.want {
			t.Errorf("FormatProgress(%d, %d, %s, %v) = %q, want %q", c.done, c.total, c.unit, c.elapsed, got, c.want)
		}
	}
}

// progressLog records reports, checking they only move forward.
type progressLog struct {
	t       *testing.T
	mu      sync.Mutex
	reports int
	done    int64
	total   int64
	unit    string
}

func (p *progressLog) report(done, total int64, unit string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if done < p.done {
		p.t.Errorf("progress went back from %d to %d", p.done, done)
	}
	p.reports++
	p.done, p.total, p.unit = done, total, unit
}

func TestCopyAndBackupReportProgress(t *testing.T) {
	ctx := context.Background()
	src := newStoreOf(t, SQLite)
	fillForCopy(t, src)
	var rows int64
	for _, tbl := range copyTables {
		var n int64
		if err := src.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+tbl.table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		rows += n
	}

	copyLog := &progressLog{t: t}
	dst := newStoreOf(t, SQLite)
	if _, err := src.CopyInto(WithProgress(ctx, copyLog.report), dst); err != nil {
		t.Fatal(err)
	}
	if copyLog.unit != "rows" || copyLog.done != rows || copyLog.total != rows || copyLog.reports < 2 {
		t.Errorf("copy progress ended at %d of %d %s after %d reports; want %d of %d rows", copyLog.done, copyLog.total, copyLog.unit, copyLog.reports, rows, rows)
	}

	backupLog := &progressLog{t: t}
	path := filepath.Join(t.TempDir(), "b.db")
	if err := src.Backup(WithProgress(ctx, backupLog.report), path); err != nil {
		t.Fatal(err)
	}
	if backupLog.unit != "bytes" || backupLog.done == 0 || backupLog.done != backupLog.total {
		t.Errorf("backup progress ended at %d of %d %s", backupLog.done, backupLog.total, backupLog.unit)
	}
}
