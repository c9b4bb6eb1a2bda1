package app

import (
	"bytes"
	"io"
	"net"
	"strings"
)

// goErrorHeaders is what net/http writes after the status line of the
// answers it gives on its own, before any handler runs: 431 for headers
// over MaxHeaderBytes, 400 for a missing or malformed Host, a bad request
// line or header, 501 for an unsupported transfer encoding. A handler's
// response never has exactly these headers in this order (net/http sorts
// handler headers, so Connection would come first).
const goErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// guardListener wraps the server's listener so that the answers net/http
// writes on its own carry the same security headers as every other
// response (they bypass the handler chain, so securityHeaders never sees
// them).
func (a *App) guardListener(ln net.Listener) net.Listener {
	var b strings.Builder
	b.WriteString("\r\nContent-Security-Policy: " + contentSecurityPolicy)
	b.WriteString("\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: same-origin")
	b.WriteString("\r\nCross-Origin-Opener-Policy: same-origin\r\nCache-Control: no-store")
	if a.cfg.Secure() {
		b.WriteString("\r\nStrict-Transport-Security: max-age=63072000; includeSubDomains")
	}
	return guardedListener{Listener: ln, headers: []byte(b.String())}
}

type guardedListener struct {
	net.Listener
	headers []byte
}

func (l guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardedConn{Conn: c, headers: l.headers}, nil
}

type guardedConn struct {
	net.Conn
	headers []byte
}

// Write adds the security headers to net/http's own error answers (each
// written in one Write straight to the connection) and passes everything
// else through untouched.
func (c *guardedConn) Write(p []byte) (int, error) {
	if !bytes.HasPrefix(p, []byte("HTTP/1.1 4")) && !bytes.HasPrefix(p, []byte("HTTP/1.1 5")) {
		return c.Conn.Write(p)
	}
	i := bytes.Index(p, []byte(goErrorHeaders))
	if i < 0 || bytes.IndexByte(p[:i], '\n') >= 0 {
		return c.Conn.Write(p)
	}
	out := make([]byte, 0, len(p)+len(c.headers))
	out = append(out, p[:i]...)
	out = append(out, c.headers...)
	out = append(out, p[i:]...)
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseWrite and ReadFrom keep what net/http looks for on a *net.TCPConn:
// the half-close after an error answer, and sendfile for static files.
func (c *guardedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *guardedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}
