package db

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// Progress is told how far a long operation (copy, backup) has come: done
// and total in units ("rows" or "bytes"); total is 0 when unknown.
type Progress func(done, total int64, unit string)

type progressKey struct{}

// WithProgress returns a context whose copy or backup reports to p.
func WithProgress(ctx context.Context, p Progress) context.Context {
	return context.WithValue(ctx, progressKey{}, p)
}

// progressTracker counts units done against a total for the context's
// Progress, if any.
type progressTracker struct {
	report Progress
	done   int64
	total  int64
	unit   string
}

func trackProgress(ctx context.Context, total int64, unit string) *progressTracker {
	p, _ := ctx.Value(progressKey{}).(Progress)
	t := &progressTracker{report: p, total: total, unit: unit}
	t.add(0)
	return t
}

func (t *progressTracker) add(n int64) {
	if t == nil || t.report == nil {
		return
	}
	t.done += n
	t.report(t.done, t.total, t.unit)
}

type trackerKey struct{}

func trackerFrom(ctx context.Context) *progressTracker {
	t, _ := ctx.Value(trackerKey{}).(*progressTracker)
	return t
}

// watchFileGrowth reports the size of path every interval until stop is
// closed: the progress of a statement (VACUUM INTO) that writes a file and
// says nothing until it is done. It only stats the file by name, never
// opening it, so no lock SQLite holds on it can be dropped.
func watchFileGrowth(path string, total int64, report Progress, interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if st, err := os.Stat(path); err == nil {
				report(min(st.Size(), total), total, "bytes")
			}
		}
	}
}

// FormatProgress renders one progress line: how much of what, the rate and
// the time left, e.g. "12,000 of 40,000 rows (30%), 8,000 rows/s, about 4s left".
func FormatProgress(done, total int64, unit string, elapsed time.Duration) string {
	var b strings.Builder
	amount := func(n int64) string {
		if unit == "bytes" {
			return humanBytes(n)
		}
		return groupDigits(n)
	}
	b.WriteString(amount(done))
	if total > 0 {
		fmt.Fprintf(&b, " of %s", amount(total))
	}
	if unit != "bytes" {
		b.WriteString(" " + unit)
	}
	if total > 0 {
		fmt.Fprintf(&b, " (%d%%)", done*100/max(total, 1))
	}
	if secs := elapsed.Seconds(); secs >= 0.5 && done > 0 {
		rate := float64(done) / secs
		if unit == "bytes" {
			fmt.Fprintf(&b, ", %s/s", humanBytes(int64(rate)))
		} else {
			fmt.Fprintf(&b, ", %s %s/s", groupDigits(int64(rate)), unit)
		}
		if total > done {
			left := time.Duration(float64(total-done) / rate * float64(time.Second))
			fmt.Fprintf(&b, ", about %s left", left.Round(time.Second))
		}
	}
	return b.String()
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
