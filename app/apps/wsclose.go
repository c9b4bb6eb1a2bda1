package apps

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"sync"
)

// When access ends, an upgraded WebSocket is told why before it closes: a
// close frame with code 4403 and "access revoked", which the page's script
// can show (a bare TCP close looks like a network fault and makes most
// clients reconnect at once). The upstream's frames are relayed unchanged;
// frameConn only follows their boundaries, so the close frame is never
// written into the middle of one.

// CloseAccessRevoked is the WebSocket close code sent when access ends.
const CloseAccessRevoked = 4403

var errConnCut = errors.New("connection cut: access revoked")

// frameConn is the client side of an upgraded connection.
type frameConn struct {
	net.Conn
	mu     sync.Mutex
	cut    bool
	hdr    []byte // the header of the frame being written, while incomplete
	remain uint64 // payload bytes of the current frame still to come
}

// Write relays the upstream's bytes to the client, following frames.
func (c *frameConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return 0, errConnCut
	}
	n, err := c.Conn.Write(p)
	c.follow(p[:n])
	return n, err
}

// follow advances the frame parser over bytes written to the client.
func (c *frameConn) follow(p []byte) {
	for len(p) > 0 {
		if c.remain > 0 {
			k := uint64(len(p))
			if k > c.remain {
				k = c.remain
			}
			c.remain -= k
			p = p[k:]
			continue
		}
		c.hdr = append(c.hdr, p[0])
		p = p[1:]
		if need := frameHeaderLen(c.hdr); need > 0 && len(c.hdr) == need {
			c.remain = framePayloadLen(c.hdr)
			c.hdr = c.hdr[:0]
		}
	}
}

func frameHeaderLen(h []byte) int {
	if len(h) < 2 {
		return 0
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4 // masked (never from a server, but follow it anyway)
	}
	return n
}

func framePayloadLen(h []byte) uint64 {
	switch l := h[1] & 0x7f; l {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		return binary.BigEndian.Uint64(h[2:10])
	default:
		return uint64(l)
	}
}

// revoke stops relaying and, between frames, writes the close frame.
func (c *frameConn) revoke() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return
	}
	c.cut = true
	if c.remain == 0 && len(c.hdr) == 0 {
		reason := "access revoked"
		frame := []byte{0x88, byte(2 + len(reason)), CloseAccessRevoked >> 8, CloseAccessRevoked & 0xff}
		_, _ = c.Conn.Write(append(frame, reason...))
	}
}

// hijackWriter hands ReverseProxy the client connection wrapped in a
// frameConn, and gives it to onHijack.
type hijackWriter struct {
	http.ResponseWriter
	onHijack func(*frameConn)
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	fc := &frameConn{Conn: conn}
	w.onHijack(fc)
	return fc, brw, nil
}

func (w *hijackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
