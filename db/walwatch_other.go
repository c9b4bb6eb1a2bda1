//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package db

// Without mmap every request reads the authorization version from the
// database.
func mapSharedMemory(string) []byte { return nil }

// mmapPlatform says whether this platform maps the -shm file.
const mmapPlatform = false

func unmapSharedMemory([]byte) {}
