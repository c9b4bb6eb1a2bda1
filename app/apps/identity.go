package apps

import (
	"context"
	"sync"
	"time"

	"gatehouse/db"
)

// identity is what rewrite sets for one viewer on one app: their groups and
// a signed assertion. Reading the groups is a query and signing costs as
// much as the rest of a request, so both are kept, per user and app, while
// the authorization version is unchanged (any change to memberships, groups
// or the user moves it) and for at most half the assertion's life.
type identity struct {
	groups    []string
	assertion string
	// groupsHeader and assertionHeader are the X-Forwarded-Groups
	// (groups.go) and X-Gatehouse-Assertion values, made once and shared by
	// every request the identity is cached for (never changed in place).
	groupsHeader, assertionHeader []string
}

type identityKey struct {
	userID int64
	app    string
	aud    string // the built-in origin, or where a team's proxy serves the app
}

type identityEntry struct {
	identity
	version int64
	until   time.Time
}

// maxIdentities bounds the cache; a full cache is emptied.
const maxIdentities = 10_000

type identityCache struct {
	mu sync.Mutex
	m  map[identityKey]identityEntry
}

// identity returns v's identity for app d at origin aud, from the cache
// when it is current.
func (h *Handler) identity(ctx context.Context, u db.User, app, aud string) (identity, error) {
	version, err := h.cfg.Store.AuthzVersion(ctx) // read first: what is loaded next is at least as new
	if err != nil {
		return identity{}, err
	}
	now := h.cfg.Store.Now()
	key := identityKey{u.ID, app, aud}
	c := &h.idents
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && e.version == version && now.Before(e.until) {
		return e.identity, nil
	}
	groups, err := h.groups(ctx, u.ID)
	if err != nil {
		return identity{}, err
	}
	jwt, err := h.keys.assertion(aud, u, groups)
	if err != nil {
		return identity{}, err
	}
	id := identity{groups: groups, assertion: jwt,
		groupsHeader: []string{groupsHeader(groups)}, assertionHeader: []string{jwt}}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxIdentities {
		c.m = map[identityKey]identityEntry{}
	}
	c.m[key] = identityEntry{identity: id, version: version, until: now.Add(AssertionTTL / 2)}
	c.mu.Unlock()
	return id, nil
}
