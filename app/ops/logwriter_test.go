package ops

import (
	"gatehouse/internal/testutil"
	"strings"
	"testing"
	"time"
)

func TestBufferedLogFlushesOnTickAndClose(t *testing.T) {
	var out testutil.LockedBuffer
	b := NewBufferedLog(&out)
	b.Write([]byte("first line\n"))
	// The flusher delivers the line without a Close (polled, not timed).
	for i := 0; i < 200 && !strings.Contains(out.String(), "first line"); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "first line") {
		t.Fatal("a buffered line never reached the output")
	}
	b.Write([]byte("last line\n"))
	b.Close()
	if !strings.Contains(out.String(), "last line") {
		t.Error("Close did not flush the last line")
	}
}
