//go:build linux || darwin || freebsd || netbsd || openbsd

package db

import (
	"os"
	"syscall"
)

// shmMapping is a read-only, shared mapping of a -shm file's first page and
// the descriptor it was mapped through.
//
// The descriptor is never closed while a connection of this process may
// hold SQLite's locks on the file (see sqlitefiles.go): only release closes
// it, when the last Store on the database has closed.
type shmMapping struct {
	fd  int
	mem []byte // nil when the file could not be mapped
}

// mapSharedMemory maps the first page of the -shm file at path, read-only
// and shared, so the process sees other processes' commits as they make
// them. It returns nil when the file cannot be opened, and a mapping
// without mem (keeping the descriptor, which must not be closed yet) when
// it cannot be mapped.
func mapSharedMemory(path string) *shmMapping {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	m := &shmMapping{fd: fd}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Size < 2*walHeaderWords*4 {
		return m
	}
	if mem, err := syscall.Mmap(fd, 0, os.Getpagesize(), syscall.PROT_READ, syscall.MAP_SHARED); err == nil {
		m.mem = mem
	}
	return m
}

// release unmaps the page and closes the descriptor. Call it only when no
// connection of this process is open on the database.
func (m *shmMapping) release() {
	if m == nil {
		return
	}
	if m.mem != nil {
		_ = syscall.Munmap(m.mem)
		m.mem = nil
	}
	_ = syscall.Close(m.fd)
}

// mmapPlatform says whether this platform maps the -shm file.
const mmapPlatform = true
