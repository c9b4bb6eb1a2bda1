package app

import (
	"errors"
	"math"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"gatehouse/db"
)

// recheckSSO re-checks sessions signed in with the identity provider, at
// most every --oidc-recheck, when the IdP returned a refresh token: it
// refreshes, re-reads the person's groups and re-syncs mapped groups. When
// the IdP refuses the refresh (the person was disabled or removed there),
// the session ends and the request goes on anonymous (so it is sent to the
// login page, or gets 401 under htmx). When the IdP cannot be reached the
// session is kept and re-checked again a minute later.
//
// Each process asks the database once per session and interval (it
// remembers when a session is next due), and of several requests or
// instances exactly one re-checks a due session.
func (a *App) recheckSSO(next http.Handler) http.Handler {
	if a.oidc == nil || a.cfg.OIDCRecheck <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := viewerFrom(r.Context()); v != nil && sessionMethod(v.Session) == authMethodSSO && !a.recheck(r, v) {
			stateFrom(r.Context()).viewer = nil // the session ended: anonymous from here on
		}
		next.ServeHTTP(w, r)
	})
}

// recheckRetry is how soon a re-check is tried again when the IdP could not
// be reached.
const recheckRetry = time.Minute

// recheck re-checks v's session with the IdP when it is due and reports
// whether the session goes on.
func (a *App) recheck(r *http.Request, v *Viewer) bool {
	ctx := r.Context()
	hash := db.HashToken(v.Session.ID)
	now := a.now()
	if due, ok := a.oidc.rechecks.Load(hash); ok && now.UnixMilli() < due.(int64) {
		return true
	}
	// First sight of the session in this process, or due: ask the
	// database (a read), then take the re-check (a write) only when due.
	due, found, err := a.store.OIDCNextCheck(ctx, hash)
	switch {
	case err != nil:
		a.log.WarnContext(ctx, "SSO re-check: reading the session failed", "err", err)
		return true
	case !found: // an SSO session from before its IdP side was kept
		a.oidc.rememberRecheck(hash, math.MaxInt64, now)
		return true
	case due > now.UnixMilli():
		a.oidc.rememberRecheck(hash, due, now)
		return true
	}
	next := now.Add(a.cfg.OIDCRecheck).UnixMilli()
	o, claimed, err := a.store.ClaimOIDCRecheck(ctx, hash, next)
	if err != nil {
		a.log.WarnContext(ctx, "SSO re-check: taking the re-check failed", "err", err)
		return true
	}
	if !claimed {
		// Another request or instance is re-checking it right now.
		a.oidc.rememberRecheck(hash, now.Add(5*time.Second).UnixMilli(), now)
		return true
	}
	a.oidc.rechecks.Store(hash, next)
	retry := func(reason string, err error) bool {
		at := now.Add(min(a.cfg.OIDCRecheck, recheckRetry)).UnixMilli()
		a.log.WarnContext(ctx, "SSO re-check postponed: "+reason, "user", v.User.Email, "err", err)
		a.metrics.rechecked(recheckPostponed)
		if err := a.store.UpdateOIDCSession(ctx, hash, "", at); err == nil {
			a.oidc.rechecks.Store(hash, at)
		}
		return true
	}
	p, verifier := a.oidc.ready()
	if p == nil {
		return retry("the identity provider has not answered discovery yet", nil)
	}
	tok, err := a.oauth2Config(p).TokenSource(a.oidcContext(ctx), &oauth2.Token{RefreshToken: o.RefreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			reason, _ := idpFailure(err)
			return a.endSSOSession(r, v, hash, reason)
		}
		return retry("the identity provider cannot be reached", err)
	}
	claims, reason, msg := a.verifiedClaims(ctx, p, verifier, tok, o.Subject, "")
	if msg != "" {
		return a.endSSOSession(r, v, hash, reason)
	}
	if claims.SyncGroups {
		if _, err := a.store.SyncIdPGroups(ctx, db.Actor{Email: "idp", IP: a.clientIP(r)}, v.User.ID, claims.Groups); err != nil {
			return retry("syncing groups failed", err)
		}
	}
	if err := a.store.UpdateOIDCSession(ctx, hash, tok.RefreshToken, next); err != nil {
		a.log.WarnContext(ctx, "SSO re-check: saving the refresh token failed", "err", err)
	}
	a.metrics.rechecked(recheckKept)
	a.log.DebugContext(ctx, "SSO re-check: the identity provider still vouches for the session", "user", v.User.Email,
		"groups", len(claims.Groups), "synced", claims.SyncGroups, "next", time.UnixMilli(next).UTC().Format(time.RFC3339))
	return true
}

// endSSOSession ends a session the IdP no longer vouches for, audited, and
// reports false (the request goes on anonymous).
func (a *App) endSSOSession(r *http.Request, v *Viewer, hash, reason string) bool {
	ctx := r.Context()
	a.oidc.rechecks.Delete(hash)
	if err := a.sessions.Revoke(ctx, v.Session.ID); err != nil {
		a.log.ErrorContext(ctx, "SSO re-check: ending the session failed", "err", err)
	}
	_ = a.store.Audit(ctx, db.Actor{Email: "idp", IP: a.clientIP(r)}, db.Event{Action: db.ActionSessionEnded,
		Target: v.User.Email, Detail: map[string]string{"reason": reason}})
	a.log.WarnContext(ctx, "SSO session ended by the re-check", "user", v.User.Email, "reason", reason)
	a.metrics.rechecked(recheckEnded)
	return false
}

// rememberRecheck remembers when this process next looks at a session:
// at due, but at least once a day (so entries of ended sessions are pruned).
func (c *oidcClient) rememberRecheck(hash string, due int64, now time.Time) {
	c.rechecks.Store(hash, min(due, now.Add(24*time.Hour).UnixMilli()))
}

// pruneRechecks forgets remembered re-check times that are past (their
// sessions may be gone; a live one is looked up again).
func (a *App) pruneRechecks() {
	if a.oidc == nil {
		return
	}
	now := a.now().UnixMilli()
	a.oidc.rechecks.Range(func(k, v any) bool {
		if v.(int64) < now {
			a.oidc.rechecks.Delete(k)
		}
		return true
	})
}
