//go:build linux || darwin || freebsd || netbsd || openbsd

package db

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// sqliteLocks lists, as another process sees them, the processes holding a
// lock on the bytes SQLite uses to say "a connection is open": the
// dead-man-switch byte of the -shm file (offset 128 in SQLite's unix VFS)
// and the SHARED range of the database file.
func sqliteLocks(t *testing.T, path string) (shmHolder, dbHolder int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSQLiteLockHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GATEHOUSE_LOCKCHECK_DB="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper process: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "shm-holder "); ok {
			shmHolder, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(line, "db-holder "); ok {
			dbHolder, _ = strconv.Atoi(v)
		}
	}
	return shmHolder, dbHolder
}

// TestSQLiteLockHelperProcess is sqliteLocks' other process: it asks which
// process would block a write lock, and prints its pid (0 for none).
func TestSQLiteLockHelperProcess(t *testing.T) {
	path := os.Getenv("GATEHOUSE_LOCKCHECK_DB")
	if path == "" {
		t.Skip("runs only as sqliteLocks' helper process")
	}
	holder := func(file string, start int64) int {
		f, err := os.OpenFile(file, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close() // this process has no SQLite connection: nothing to lose
		lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: start, Len: 1}
		if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
			t.Fatal(err)
		}
		if lk.Type == syscall.F_UNLCK {
			return 0
		}
		return int(lk.Pid)
	}
	os.Stdout.WriteString("shm-holder " + strconv.Itoa(holder(path+"-shm", 128)) + "\n")
	os.Stdout.WriteString("db-holder " + strconv.Itoa(holder(path, 1073741826)) + "\n")
}

// TestStoresKeepTheirSQLiteLocks: POSIX locks belong to the process, and
// closing any descriptor of a file drops them all, SQLite's own included.
// A store keeps its locks on the database and its -shm file for its whole
// life: through its WAL watch's mapping, through other stores of the same
// process opening (by another path) and closing the same database, and
// through a backup. Without them, the next process to open the database
// rebuilds the wal-index under this one (issue 12).
func TestStoresKeepTheirSQLiteLocks(t *testing.T) {
	s := watchedStore(t)
	ctx := context.Background()
	link := filepath.Join(t.TempDir(), "link.db")
	if err := os.Symlink(s.Path, link); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		shm, dbf := sqliteLocks(t, s.Path)
		if shm != os.Getpid() || dbf != os.Getpid() {
			t.Errorf("%s: lock holders -shm %d, database %d; want this process (%d) on both", when, shm, dbf, os.Getpid())
		}
	}
	check("after opening")

	other, err := Open(ctx, Config{DSN: link})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.UserByEmail(ctx, "nobody@example.com"); err != ErrNotFound {
		t.Fatalf("a read through the second store: %v", err)
	}
	other.Close()
	check("after a second store on the same file opened and closed")

	if err := s.Backup(ctx, filepath.Join(t.TempDir(), "backup.db")); err != nil {
		t.Fatal(err)
	}
	check("after a backup")
}
