//go:build !unix

package db

import "syscall"

// rawConnClosed cannot peek at sockets here; a dead connection then fails
// its next query once and is replaced.
func rawConnClosed(syscall.RawConn) bool { return false }
