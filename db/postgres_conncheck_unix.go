//go:build unix

package db

import (
	"errors"
	"syscall"
)

// rawConnClosed peeks at the socket without blocking: EOF or unexpected data
// means the server (or a proxy) is done with this connection; EAGAIN means
// nothing is waiting, as it should be between queries.
func rawConnClosed(raw syscall.RawConn) bool {
	closed := false
	err := raw.Read(func(fd uintptr) bool {
		var buf [1]byte
		n, err := syscall.Read(int(fd), buf[:])
		switch {
		case n == 0 && err == nil, n > 0:
			closed = true
		case err != nil && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR):
			closed = true
		}
		return true // never wait for readability
	})
	return closed || err != nil
}
