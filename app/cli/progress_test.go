package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// runWithProgress runs a command as if stderr were a terminal.
func (e *cliEnv) runWithProgress(args ...string) (string, string, int) {
	e.t.Helper()
	var out, errOut bytes.Buffer
	c := &CLI{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, ShowProgress: true,
		Getenv: func(k string) string {
			if k == "GATEHOUSE_DATA" {
				return e.data
			}
			return ""
		}}
	code := c.Run(context.Background(), args)
	return out.String(), errOut.String(), code
}

func TestCopyAndBackupShowProgressOnATerminal(t *testing.T) {
	e := newCLIEnv(t)
	seedForCopy(t, e)

	// Not a terminal (a pipe, a log): no progress, only the summary.
	backup := filepath.Join(t.TempDir(), "quiet.db")
	out, errOut, code := e.run("", "backup", backup)
	if code != 0 || errOut != "" || !strings.Contains(out, "backup written") {
		t.Fatalf("backup to a pipe: exit %d, stderr %q, stdout %q", code, errOut, out)
	}

	_, errOut, code = e.runWithProgress("backup", filepath.Join(t.TempDir(), "shown.db"))
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, errOut)
	}
	last := lastProgressLine(errOut)
	if !strings.HasPrefix(last, "backing up: ") || !strings.Contains(last, "KiB of ") || !strings.Contains(last, "(100%)") {
		t.Errorf("backup's last progress line is %q (stderr %q)", last, errOut)
	}

	_, errOut, code = e.runWithProgress("copy", "--from", e.data, "--to", filepath.Join(t.TempDir(), "copy.db"))
	if code != 0 {
		t.Fatalf("copy: exit %d: %s", code, errOut)
	}
	last = lastProgressLine(errOut)
	if !strings.HasPrefix(last, "copying: ") || !strings.Contains(last, " rows (100%)") {
		t.Errorf("copy's last progress line is %q (stderr %q)", last, errOut)
	}
	if !strings.HasSuffix(errOut, "\n") {
		t.Errorf("progress does not end its line: %q", errOut)
	}
}

// lastProgressLine is what a terminal shows last: the text after the last
// carriage return and erase-line.
func lastProgressLine(s string) string {
	s = strings.TrimSuffix(s, "\n")
	if i := strings.LastIndex(s, "\r\033[K"); i >= 0 {
		s = s[i+len("\r\033[K"):]
	}
	return s
}
