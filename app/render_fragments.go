package app

import (
	"bytes"
	"context"
	"net/http"
	"sync"

	"github.com/a-h/templ"
)

// fragmentCache keeps rendered fragments whose bytes depend only on their
// key. It never decides anything: callers render from it only after the
// access decision for the request has been made. It holds at most
// maxCachedFragments entries and starts over when full.
type fragmentCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

const maxCachedFragments = 1024

// get returns the fragment for key, rendering it with render on a miss. A
// failed render is not cached and returns nil bytes.
func (c *fragmentCache) get(key string, render func() ([]byte, error)) []byte {
	c.mu.Lock()
	b, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return b
	}
	b, err := render()
	if err != nil {
		return nil
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedFragments {
		c.m = make(map[string][]byte)
	}
	c.m[key] = b
	c.mu.Unlock()
	return b
}

func renderBytes(ctx context.Context, c templ.Component) ([]byte, error) {
	var buf bytes.Buffer
	if err := c.Render(ctx, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeBytes writes an HTML fragment with status; nil bytes (a failed
// render) become a plain 500.
func (a *App) writeBytes(w http.ResponseWriter, status int, b []byte) {
	if b == nil {
		http.Error(w, "The server could not render this fragment.", http.StatusInternalServerError)
		return
	}
	writeHTML(w, status, b)
}
