package filedash

import (
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"gatehouse/app/dashboards"
)

// maxEntries bounds the cache: past it, expired entries go, and if that is
// not enough, all of them.
const maxEntries = 10_000

// failTTL bounds how long a failed query's message is kept.
const failTTL = 5 * time.Second

// cache keeps rendered panels until their refresh interval has passed, with
// one query in flight per key: a thousand viewers of one panel cause one
// query per interval.
type cache struct {
	mu     sync.RWMutex
	m      map[string]entry
	flight singleflight.Group
}

type entry struct {
	body  dashboards.Rendered
	until time.Time
}

func newCache() *cache { return &cache{m: map[string]entry{}} }

// get returns key's rendered panel while it is fresh at now.
func (c *cache) get(key string, now time.Time) (dashboards.Rendered, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	return e.body, true
}

func (c *cache) put(key string, body dashboards.Rendered, until time.Time, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxEntries {
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxEntries {
			clear(c.m)
		}
	}
	c.m[key] = entry{body: body, until: until}
}

// load returns key's panel from the cache, or renders it with fill, once
// for all the callers asking for key at the same time. What fill renders
// is kept for ttl, or, when fill says it failed, at most failTTL, so a
// passing fault clears soon while a source that is down is still asked
// once per few seconds, not once per viewer.
func (c *cache) load(key string, now time.Time, ttl time.Duration, fill func() (dashboards.Rendered, bool)) dashboards.Rendered {
	if body, ok := c.get(key, now); ok {
		return body
	}
	v, _, _ := c.flight.Do(key, func() (any, error) {
		if body, ok := c.get(key, now); ok {
			return body, nil
		}
		body, ok := fill()
		if !ok {
			ttl = min(ttl, failTTL)
		}
		c.put(key, body, now.Add(ttl), now)
		return body, nil
	})
	return v.(dashboards.Rendered)
}
