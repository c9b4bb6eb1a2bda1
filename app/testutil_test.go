package app

import (
	"bytes"
	"sync"
)

// lockedBuffer is a bytes.Buffer safe for a server's concurrent log writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
