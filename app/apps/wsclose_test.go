package apps

import (
	"bytes"
	"net"
	"testing"
)

// recordConn is a net.Conn that keeps what is written to it.
type recordConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *recordConn) Write(p []byte) (int, error) { return c.buf.Write(p) }

func TestCloseFrameOnlyBetweenFrames(t *testing.T) {
	closeFrame := append([]byte{0x88, 16, 0x11, 0x33}, "access revoked"...)
	long := make([]byte, 300) // a 16-bit extended length
	frame := func(payload []byte) []byte {
		if len(payload) < 126 {
			return append([]byte{0x81, byte(len(payload))}, payload...)
		}
		return append([]byte{0x82, 126, byte(len(payload) >> 8), byte(len(payload))}, payload...)
	}
	for _, tc := range []struct {
		name      string
		writes    [][]byte
		wantClose bool
	}{
		{"after whole frames", [][]byte{frame([]byte("hi")), frame(long)}, true},
		{"mid payload", [][]byte{frame(long)[:100]}, false},
		{"mid header", [][]byte{frame(long)[:3]}, false},
		{"frame split across writes", [][]byte{frame(long)[:3], frame(long)[3:200], frame(long)[200:]}, true},
		{"nothing yet", nil, true},
	} {
		rc := &recordConn{}
		fc := &frameConn{Conn: rc}
		var sent []byte
		for _, w := range tc.writes {
			if _, err := fc.Write(w); err != nil {
				t.Fatal(err)
			}
			sent = append(sent, w...)
		}
		fc.revoke()
		got := rc.buf.Bytes()
		if closed := bytes.Equal(got, append(sent, closeFrame...)); closed != tc.wantClose || (!closed && !bytes.Equal(got, sent)) {
			t.Errorf("%s: wrote %x after the frames, want close frame: %v", tc.name, got[len(sent):], tc.wantClose)
		}
		if _, err := fc.Write([]byte{0x81, 0}); err == nil {
			t.Errorf("%s: a write after revoke went through", tc.name)
		}
	}
}
