package apps

// OpenConnections counts the requests this instance has in flight to
// upstreams, by app slug: WebSockets and streaming responses included,
// apps with none left out.
func (h *Handler) OpenConnections() map[string]int {
	t := h.conns
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int, len(t.m))
	for k, sc := range t.m {
		out[k.app] += len(sc.open)
	}
	return out
}
