package app

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// cliEnv runs gatehouse commands the way an operator's shell does while a
// server runs: as another process, the binary built from this tree
// (buildGatehouse), on the database in data (or dsn when set). The command
// line is a package above this one (app/cli), so the server's tests reach it
// only as a program.
type cliEnv struct {
	t    testing.TB
	data string
	dsn  string
}

// run executes args with stdin and returns stdout, stderr and the exit code.
func (e *cliEnv) run(stdin string, args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(buildGatehouse(e.t), args...)
	cmd.Env = append(os.Environ(), "GATEHOUSE_DATA="+e.data, "GATEHOUSE_DB="+e.dsn)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return out.String(), errOut.String(), exit.ExitCode()
	case err != nil:
		e.t.Fatalf("gatehouse %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), 0
}

// ok runs args and fails the test unless they exit 0; it returns stdout.
func (e *cliEnv) ok(stdin string, args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(stdin, args...)
	if code != 0 {
		e.t.Fatalf("gatehouse %s: exit %d, stderr %s", strings.Join(args, " "), code, errOut)
	}
	return out
}
