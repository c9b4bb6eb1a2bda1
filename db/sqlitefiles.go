package db

import (
	"os"
	"sync"
)

// SQLite locks its files (the database, its -wal and its -shm) with POSIX
// advisory locks, and those belong to the process and the file, not to a
// descriptor: closing ANY descriptor of a file drops every lock the process
// holds on it, SQLite's own included. A process that loses its lock on the
// -shm file looks, to the next process that opens the database (the CLI, a
// backup, another `serve`), like no process at all: that process rebuilds the
// wal-index under the running server, whose writes then fail with
// SQLITE_IOERR (issue 12).
//
// So while any connection of this process is open on a database, no code
// may close a descriptor of one of its files. Stat, chmod and anything else
// that goes by path are harmless; open-then-close is not. This file keeps
// the rule for the whole process:
//
//   - openFiles lists every SQLite database file a Store of this process
//     has open, with how many Stores use it;
//   - a Store opening a file that is not listed (no connection of this
//     process has it) may open and close it to check or create it; one
//     opening a listed file does not touch it;
//   - the -shm mapping the WAL watch reads (walwatch.go) belongs to the
//     listed file, and its descriptor stays open until the last Store on
//     that file has closed all of its connections.
var openFiles struct {
	mu   sync.Mutex
	list []*sqliteFile
}

// sqliteFile is a database file in use by Stores of this process.
type sqliteFile struct {
	info os.FileInfo // the database file (for os.SameFile; paths may differ)
	refs int         // Stores using it; guarded by openFiles.mu

	// shm is the WAL watch's mapping of the -shm file, shared by every
	// Store on the file; nil until a watch maps it (or where it cannot).
	// shmTried is set once a mapping was attempted.
	shm      *shmMapping
	shmTried bool
}

// acquireFile registers a Store's use of the database file at path. When no
// Store of this process has the file, prepare runs first (under the lock, so
// no other Store can open the file meanwhile): it may open and close the
// file, since no lock of this process can be lost. The file must exist once
// prepare returns.
func acquireFile(path string, prepare func() error) (*sqliteFile, error) {
	openFiles.mu.Lock()
	defer openFiles.mu.Unlock()
	if info, err := os.Stat(path); err == nil {
		for _, f := range openFiles.list {
			if os.SameFile(f.info, info) {
				f.refs++
				return f, nil
			}
		}
	}
	if err := prepare(); err != nil {
		return nil, err
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	f := &sqliteFile{info: info, refs: 1}
	openFiles.list = append(openFiles.list, f)
	return f, nil
}

// release ends one Store's use of the file. The caller must have closed
// every connection the Store had on it. The last release closes the -shm
// descriptor: no connection of this process is left to lose its locks.
func (f *sqliteFile) release() {
	if f == nil {
		return
	}
	openFiles.mu.Lock()
	defer openFiles.mu.Unlock()
	f.refs--
	if f.refs > 0 {
		return
	}
	for i, g := range openFiles.list {
		if g == f {
			openFiles.list = append(openFiles.list[:i], openFiles.list[i+1:]...)
			break
		}
	}
	f.shm.release()
	f.shm = nil
}

// sharedMemory returns the file's -shm mapping, mapping shmPath on first
// use. It returns nil where the file cannot be mapped.
func (f *sqliteFile) sharedMemory(shmPath string) []byte {
	openFiles.mu.Lock()
	defer openFiles.mu.Unlock()
	if !f.shmTried {
		f.shmTried = true
		f.shm = mapSharedMemory(shmPath)
	}
	if f.shm == nil {
		return nil
	}
	return f.shm.mem
}
