package apps

import "io"

// An upgraded connection spends most of its life waiting for the next
// message. httputil.ReverseProxy relays it with io.Copy in each direction,
// which allocates a 32 KiB buffer for each and holds both for as long as
// the socket is open: 64 KiB per socket, most of what an idle proxied
// WebSocket cost (BENCHMARKS.md, "10,000 proxied WebSockets"). frameConn
// implements io.ReaderFrom and io.WriterTo, which io.Copy prefers, so the
// relay waits with a small buffer and borrows a pooled 32 KiB one only
// while data comes faster than the small one holds.

// idleBufferSize is what each direction of a socket holds while it waits.
const idleBufferSize = 2 << 10

// ReadFrom relays the upstream's bytes (src) to the client.
func (c *frameConn) ReadFrom(src io.Reader) (int64, error) {
	return relay(writerOnly{c}, src)
}

// WriteTo relays the client's bytes to the upstream (dst).
func (c *frameConn) WriteTo(dst io.Writer) (int64, error) {
	return relay(dst, readerOnly{c.Conn})
}

// relay copies src to dst until src ends (a nil error, as io.Copy) or
// either fails. A read that fills its buffer switches to a pooled
// 32 KiB buffer; the first read that does not fill it gives it back.
func relay(dst io.Writer, src io.Reader) (int64, error) {
	small := make([]byte, idleBufferSize)
	buf, big := small, []byte(nil)
	defer func() {
		if big != nil {
			proxyBuffers.Put(big)
		}
	}()
	var written int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			written += int64(w)
			if werr != nil {
				return written, werr
			}
			if w != n {
				return written, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return written, nil
		} else if rerr != nil {
			return written, rerr
		}
		switch {
		case n == len(buf) && big == nil:
			big = proxyBuffers.Get()
			buf = big
		case n < len(buf) && big != nil:
			proxyBuffers.Put(big)
			big, buf = nil, small
		}
	}
}

// writerOnly and readerOnly hide a type's ReadFrom and WriteTo from relay's
// callees, so that a Write or Read does not come back to relay.
type writerOnly struct{ io.Writer }

type readerOnly struct{ io.Reader }
