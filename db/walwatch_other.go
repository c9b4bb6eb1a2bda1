//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package db

// Without mmap every request reads the authorization version from the
// database.

type shmMapping struct{ mem []byte }

func mapSharedMemory(string) *shmMapping { return nil }

func (*shmMapping) release() {}

// mmapPlatform says whether this platform maps the -shm file.
const mmapPlatform = false
