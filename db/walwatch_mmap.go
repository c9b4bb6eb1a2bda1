//go:build linux || darwin || freebsd || netbsd || openbsd

package db

import (
	"os"
	"syscall"
)

// mapSharedMemory maps the first page of the -shm file at path, read-only
// and shared, so the process sees other processes' commits as they make
// them. It returns nil when the file cannot be mapped.
func mapSharedMemory(path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if !shmFileOK(f) {
		return nil
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, os.Getpagesize(), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil
	}
	return mem
}

// mmapPlatform says whether this platform maps the -shm file.
const mmapPlatform = true

func unmapSharedMemory(mem []byte) { _ = syscall.Munmap(mem) }
