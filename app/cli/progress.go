package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"gatehouse/db"
)

// progressLine shows a long command's progress on one terminal line,
// rewritten at most a few times a second, and ends it with a newline.
type progressLine struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	start time.Time
	last  time.Time
	now   func() time.Time
	shown bool
	every time.Duration
}

// progress returns a db.Progress that draws on stderr, or nil (stay quiet)
// when stderr is not a terminal: logs and pipes get only the final summary.
func (c *CLI) progress(label string) (db.Progress, func()) {
	w := c.Stderr
	if tw, ok := w.(termWriter); ok {
		w = tw.w // the progress line draws with CR and ESC[K on purpose
	}
	if !c.ShowProgress && !isTerminal(w) {
		return nil, func() {}
	}
	p := &progressLine{w: w, label: label, now: time.Now, every: 200 * time.Millisecond}
	p.start = p.now()
	return p.report, p.finish
}

func (p *progressLine) report(done, total int64, unit string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.shown && now.Sub(p.last) < p.every && done < total {
		return
	}
	p.last, p.shown = now, true
	fmt.Fprintf(p.w, "\r\033[K%s: %s", p.label, db.FormatProgress(done, total, unit, now.Sub(p.start)))
}

func (p *progressLine) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprintln(p.w)
	}
}

// isTerminal reports whether w (a standard stream) is a terminal (a
// character device).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
