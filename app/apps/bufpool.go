package apps

import "sync"

// proxyBuffers lends ReverseProxy the buffers it copies response bodies
// through. Without a pool it allocates 32 KiB for every response: on a
// small upstream answer that was most of the bytes a proxied request
// allocated, and the collector's work with them (BENCHMARKS.md, "Apps").
var proxyBuffers bufferPool

// bufferPool is an httputil.BufferPool of 32 KiB buffers (io.Copy's size).
type bufferPool struct{ p sync.Pool }

const proxyBufferSize = 32 << 10

func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, proxyBufferSize)
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) != proxyBufferSize {
		return
	}
	buf = buf[:proxyBufferSize]
	b.p.Put(&buf)
}
