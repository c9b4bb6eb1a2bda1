package db

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"sync/atomic"
	"unsafe"
)

// walWatch lets a SQLite store tell, without a query, that no transaction
// has committed since it last read the authorization version.
//
// In WAL mode every connection of every process maps the database's -shm
// file, whose first 96 bytes are two copies of the wal-index header
// (https://www.sqlite.org/walformat.html). A commit rewrites both: it
// increments iChange, moves mxFrame and the checksums, and writes copy 2
// before copy 1, so a reader that finds the copies equal has a header no
// writer was halfway through. SQLite itself compares this header to decide
// whether its page cache is still good; Gatehouse compares it to decide
// whether the authz_version it read last is still current:
//
//   - before reading the version, a request takes the header's stamp;
//   - a version read that started after stamp S was taken is current for as
//     long as the header still equals S, because any commit, by any
//     process, changes the header before the commit returns;
//   - a torn, uninitialised or unmapped header means "read the database".
//
// The store keeps one connection of its own open for its lifetime. SQLite
// deletes the -shm file only when the last connection to the database
// closes, and reinitialises it only when no other process holds its
// dead-man-switch lock; with that connection open, neither happens to the
// file the watch has mapped (TestWALWatchSeesOtherProcesses fails without
// it).
//
// The mapping belongs to the database file's entry in openFiles
// (sqlitefiles.go), which keeps the descriptor it was mapped through open
// until the last Store on the file has closed: closing it earlier would drop
// this process's SQLite locks on the -shm file, the dead-man-switch lock
// among them (TestCLIDuringWriteLoadKeepsTheServerWriting in app fails).
type walWatch struct {
	mu  sync.RWMutex // held for reading while the mapping is read
	mem []byte       // the -shm file's first page; nil once closed
	pin *sql.DB      // one idle connection: pins the shared-memory file
}

// walStamp is one consistent copy of the wal-index header.
type walStamp [walHeaderWords]uint32

const (
	walHeaderWords = 12 // sizeof(WalIndexHdr) = 48 bytes
	walIsInitByte  = 12 // offset of isInit within the header
)

// openWALWatch opens one connection of its own (outside the store's pool,
// whose size operators and tests may change), makes it open the WAL and its
// -shm file, and maps that file. Where that is not possible (another
// platform, a read-only file system, not WAL mode) it returns nil: every
// request reads the database.
func openWALWatch(ctx context.Context, dsn, path string, file *sqliteFile) *walWatch {
	pin, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil
	}
	pin.SetMaxOpenConns(1)
	pin.SetMaxIdleConns(1)
	pin.SetConnMaxIdleTime(0)
	pin.SetConnMaxLifetime(0)
	// Any read of the file opens the WAL and maps the -shm file.
	var mode string
	if err := pin.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		pin.Close()
		return nil
	}
	var n int
	if err := pin.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&n); err != nil {
		pin.Close()
		return nil
	}
	// SQLite names the -shm file after the database's real path, with
	// symbolic links resolved.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	mem := file.sharedMemory(path + "-shm")
	if mem == nil {
		pin.Close()
		return nil
	}
	return &walWatch{mem: mem, pin: pin}
}

// stamp returns the current wal-index header, and false when there is no
// consistent one to trust (no watch, closed, mid-write or uninitialised).
func (w *walWatch) stamp() (walStamp, bool) {
	var a, b walStamp
	if w == nil {
		return a, false
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.mem == nil {
		return a, false
	}
	words := (*[2 * walHeaderWords]uint32)(unsafe.Pointer(&w.mem[0]))
	// Copy 1 first, then copy 2: the reverse of a writer's order, as
	// SQLite's own walIndexTryHdr reads them.
	for i := range a {
		a[i] = atomic.LoadUint32(&words[i])
	}
	for i := range b {
		b[i] = atomic.LoadUint32(&words[walHeaderWords+i])
	}
	isInit := (*[walHeaderWords * 4]byte)(unsafe.Pointer(&a))[walIsInitByte]
	if a != b || isInit == 0 {
		return a, false
	}
	return a, true
}

// close stops reading the header and releases the pinned connection. The
// mapping itself is undone when the last Store on the file releases it.
func (w *walWatch) close() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.mem = nil
	w.mu.Unlock()
	w.pin.Close()
}

// walVersion is an authorization version and the wal-index stamp taken
// before the read that returned it.
type walVersion struct {
	stamp   walStamp
	version int64
}
