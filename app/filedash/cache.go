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

// maxBytes bounds the cache's rendered panels: a panel may render 10,000
// rows, and distinct filter values make distinct entries, so a count alone
// would let one viewer fill gigabytes.
const maxBytes = 64 << 20

// failTTL bounds how long a failed query's message is kept.
const failTTL = 5 * time.Second

// cache keeps rendered panels until their refresh interval has passed, with
// one query in flight per key: a thousand viewers of one panel cause one
// query per interval.
type cache struct {
	mu     sync.RWMutex
	m      map[string]entry
	bytes  int // the size of the keys and bodies in m
	flight singleflight.Group
}

type entry struct {
	body  dashboards.Rendered
	admin dashboards.Rendered // what admins see instead, when it differs (a failure's cause)
	until time.Time
}

// pick returns what a viewer sees of e: admins see a failure's cause.
func (e entry) pick(admin bool) dashboards.Rendered {
	if admin && e.admin != nil {
		return e.admin
	}
	return e.body
}

func newCache() *cache { return &cache{m: map[string]entry{}} }

// get returns key's entry while it is fresh at now.
func (c *cache) get(key string, now time.Time) (entry, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return entry{}, false
	}
	return e, true
}

func (e entry) size(key string) int { return len(key) + len(e.body) + len(e.admin) }

func (c *cache) put(key string, e entry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[key]; ok {
		c.bytes -= old.size(key)
		delete(c.m, key)
	}
	n := e.size(key)
	if n > maxBytes {
		return // served to the callers asking now, not kept
	}
	if len(c.m) >= maxEntries || c.bytes+n > maxBytes {
		for k, old := range c.m {
			if !now.Before(old.until) {
				c.bytes -= old.size(k)
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxEntries || c.bytes+n > maxBytes {
			clear(c.m)
			c.bytes = 0
		}
	}
	c.m[key] = e
	c.bytes += n
}

// load returns key's panel from the cache, or renders it with fill, once
// for all the callers asking for key at the same time; admin picks the
// admins' version of a failure. What fill renders is kept for ttl, or,
// when it failed, at most failTTL, so a passing fault clears soon while a
// source that is down is still asked once per few seconds, not once per
// viewer.
func (c *cache) load(key string, now time.Time, ttl time.Duration, admin bool, fill func() rendered) dashboards.Rendered {
	if e, ok := c.get(key, now); ok {
		return e.pick(admin)
	}
	v, _, _ := c.flight.Do(key, func() (any, error) {
		if e, ok := c.get(key, now); ok {
			return e, nil
		}
		r := fill()
		if r.failed {
			ttl = min(ttl, failTTL)
		}
		e := entry{body: r.body, admin: r.admin, until: now.Add(ttl)}
		c.put(key, e, now)
		return e, nil
	})
	return v.(entry).pick(admin)
}

// rendered is a panel as fill renders it: what viewers see, what admins
// see when that differs, and whether the query failed.
type rendered struct {
	body, admin dashboards.Rendered
	failed      bool
}
