package apps

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"
	"testing/iotest"
)

// TestRelayCopiesEverything: the socket relay delivers every byte in order
// whether the source hands them over in full buffers (the pooled buffer
// in use), one at a time, or mixed.
func TestRelayCopiesEverything(t *testing.T) {
	data := make([]byte, 200<<10)
	_, _ = rand.Read(data)
	for name, src := range map[string]func() io.Reader{
		"full reads": func() io.Reader { return bytes.NewReader(data) },
		"one byte":   func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
		"halves":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"data and EOF together": func() io.Reader {
			return iotest.DataErrReader(bytes.NewReader(data))
		},
	} {
		var out bytes.Buffer
		n, err := relay(&out, src())
		if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
			t.Errorf("%s: relayed %d bytes (%v), equal %v", name, n, err, bytes.Equal(out.Bytes(), data))
		}
	}
	if _, err := relay(&bytes.Buffer{}, iotest.ErrReader(io.ErrUnexpectedEOF)); err != io.ErrUnexpectedEOF {
		t.Errorf("a failing source: %v", err)
	}
}
