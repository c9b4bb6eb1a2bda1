package app

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gorilla/securecookie"
	"golang.org/x/oauth2"

	"gatehouse/db"
)

// Sign-in with the organisation's identity provider (OpenID Connect): the
// authorization-code flow with PKCE (S256), state and nonce; ID tokens
// verified against the issuer's discovery document and keys (go-oidc's
// remote key set fetches new keys when the IdP rotates them, without a
// restart); group sync at every sign-in and, with a refresh token, at most
// every --oidc-recheck during a session.

// Session values an SSO sign-in adds.
const (
	// authMethodKey says how the session signed in (db.MethodSSO for SSO);
	// it is MethodKey, kept in the session's own column.
	authMethodKey = MethodKey
	authMethodSSO = db.MethodSSO
)

// Plain sentences for refused SSO sign-ins: one per kind of fault, never
// the IdP's own error text.
const (
	ssoMsgState       = "This sign-in attempt has expired or was already used. Start again from the sign-in page."
	ssoMsgRefused     = "The identity provider did not sign you in. Start again from the sign-in page."
	ssoMsgDown        = "The identity provider cannot be reached right now. Try again in a few minutes."
	ssoMsgInvalid     = "The identity provider's answer could not be verified, so you were not signed in."
	ssoMsgExpired     = "The identity provider's answer has expired. Start again from the sign-in page."
	ssoMsgUnverified  = "Your identity provider has not verified your email address, so Gatehouse cannot match it to an account."
	ssoMsgNoGroups    = "Your identity provider did not say which groups you are in, so Gatehouse cannot decide your access. Ask your administrator."
	ssoMsgOverage     = "You are in more groups than your identity provider puts in a sign-in, so Gatehouse cannot decide your access. Ask your administrator to send only the groups assigned to Gatehouse."
	ssoMsgNoAccount   = "There is no Gatehouse account for your email address. Ask an administrator to add you."
	ssoMsgDeactivated = "Your Gatehouse account is deactivated. Ask an administrator if you need access again."
	ssoMsgLinked      = "Your Gatehouse account is already linked to another account at this identity provider. Ask an administrator."
	ssoMsgNotLinked   = "Your email address already has a Gatehouse account, which is not linked to this identity provider, so sign in the way you usually do."
)

// ssoState is what the browser carries (signed and encrypted, in a
// short-lived cookie) between /auth/oidc/start and the callback.
type ssoState struct {
	State    string
	Nonce    string
	Verifier string
	Next     string
}

// ssoStateTTL bounds how long a sign-in at the IdP may take.
const ssoStateTTL = 10 * time.Minute

// oidcClient is the relying party: the IdP's discovered configuration once
// it has answered, and what verifies its tokens.
type oidcClient struct {
	issuer string
	// ctx carries the HTTP client for every request to the IdP; it lives as
	// long as the App (the remote key set fetches rotated keys with it).
	ctx    context.Context
	cancel context.CancelFunc
	client *http.Client
	codec  *securecookie.SecureCookie
	// retry is the first wait between discovery attempts (doubling up to a
	// minute).
	retry time.Duration

	mu       sync.RWMutex
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	done     chan struct{} // closed when discovery has succeeded or stopped

	// rechecks remembers, per session hash, when this process next
	// re-checks an SSO session with the IdP, so the database is asked once
	// per interval and not on every request.
	rechecks sync.Map // string -> int64 (Unix ms)
}

// newOIDC sets up sign-in with the IdP in cfg and starts discovery: one
// attempt now, then retries in the background until the IdP answers.
func (a *App) newOIDC(ctx context.Context) error {
	if a.cfg.OIDCIssuer == "" {
		return nil
	}
	hashKey, err := a.store.Secret(ctx, "oidc_state_hash_key", 64)
	if err != nil {
		return err
	}
	blockKey, err := a.store.Secret(ctx, "oidc_state_block_key", 32)
	if err != nil {
		return err
	}
	codec := securecookie.New(hashKey, blockKey)
	codec.MaxAge(int(ssoStateTTL / time.Second))
	client := &http.Client{Timeout: 15 * time.Second}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cctx = oidc.ClientContext(cctx, client)
	c := &oidcClient{issuer: a.cfg.OIDCIssuer, ctx: cctx, cancel: cancel, client: client, codec: codec, retry: a.cfg.OIDCRetry, done: make(chan struct{})}
	if c.retry <= 0 {
		c.retry = 2 * time.Second
	}
	a.oidc = c
	go a.discover()
	return nil
}

// discover fetches the IdP's discovery document, retrying with backoff
// while it cannot be reached or answers wrongly, and logs each failure in
// one clear line.
func (a *App) discover() {
	c := a.oidc
	defer close(c.done)
	wait := c.retry
	for {
		p, err := oidc.NewProvider(c.ctx, c.issuer)
		if err == nil {
			c.mu.Lock()
			c.provider = p
			c.verifier = p.VerifierContext(c.ctx, &oidc.Config{ClientID: a.cfg.OIDCClientID, Now: func() time.Time { return a.now() }})
			c.mu.Unlock()
			a.log.Info("identity provider ready", "issuer", c.issuer)
			return
		}
		if c.ctx.Err() != nil {
			return
		}
		a.log.Error("cannot read the identity provider's discovery document; SSO sign-in is unavailable until it answers",
			"issuer", c.issuer, "url", discoveryURL(c.issuer), "err", err, "retry_in", wait)
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, time.Minute)
	}
}

func discoveryURL(issuer string) string {
	u, err := url.JoinPath(issuer, ".well-known/openid-configuration")
	if err != nil {
		return issuer
	}
	return u
}

// close stops discovery and the IdP requests in flight.
func (c *oidcClient) close() {
	if c != nil {
		c.cancel()
		<-c.done
	}
}

// ready returns the discovered provider and verifier (nil while the IdP has
// not answered yet).
func (c *oidcClient) ready() (*oidc.Provider, *oidc.IDTokenVerifier) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.provider, c.verifier
}

// oauth2Config is the client's configuration for the discovered provider.
func (a *App) oauth2Config(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     a.cfg.OIDCClientID,
		ClientSecret: a.cfg.OIDCClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  a.cfg.PublicURL() + "/auth/oidc/callback",
		Scopes:       a.cfg.OIDCScopes,
	}
}

// ssoCookieName is the state cookie's name (__Host- prefixed over https).
func (a *App) ssoCookieName() string {
	if a.cfg.Secure() {
		return "__Host-gatehouse_oidc"
	}
	return "gatehouse_oidc"
}

// oidcStart handles GET /auth/oidc/start?next=/path: it answers 302 to the
// IdP with a fresh state, nonce and PKCE (S256) challenge, and keeps them,
// with next, in a signed and encrypted cookie for the callback.
func (a *App) oidcStart(w http.ResponseWriter, r *http.Request) {
	if a.oidc == nil {
		a.notFound(w, r)
		return
	}
	p, _ := a.oidc.ready()
	if p == nil {
		a.ssoRefused(w, r, "", "identity provider not discovered yet", ssoMsgDown)
		return
	}
	st := ssoState{State: db.RandomToken(32), Nonce: db.RandomToken(32), Verifier: oauth2.GenerateVerifier(),
		Next: safeNext(r.URL.Query().Get("next"))}
	value, err := a.oidc.codec.Encode(a.ssoCookieName(), st)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: a.ssoCookieName(), Value: value, Path: "/", MaxAge: int(ssoStateTTL / time.Second),
		HttpOnly: true, Secure: a.cfg.Secure(), SameSite: http.SameSiteLaxMode})
	to := a.oauth2Config(p).AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier))
	http.Redirect(w, r, to, http.StatusFound)
}

// oidcCallback handles GET /auth/oidc/callback: it checks state, exchanges
// the code (with the PKCE verifier), verifies the ID token and its nonce,
// finds or creates the user and syncs mapped groups, then answers 303 to
// next with a new session. Every refusal is a 401 page with one plain
// sentence and an audit row, and changes nothing.
func (a *App) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if a.oidc == nil {
		a.notFound(w, r)
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	// The state cookie is single use: it goes whatever happens next.
	var st ssoState
	ck, cerr := r.Cookie(a.ssoCookieName())
	http.SetCookie(w, &http.Cookie{Name: a.ssoCookieName(), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: a.cfg.Secure(), SameSite: http.SameSiteLaxMode})
	switch {
	case cerr != nil:
		a.ssoRefused(w, r, "", "no state cookie", ssoMsgState)
		return
	case a.oidc.codec.Decode(a.ssoCookieName(), ck.Value, &st) != nil:
		a.ssoRefused(w, r, "", "state cookie invalid or expired", ssoMsgState)
		return
	case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(st.State)) != 1:
		a.ssoRefused(w, r, "", "wrong state", ssoMsgState)
		return
	case q.Get("error") != "":
		a.ssoRefused(w, r, "", "identity provider error: "+truncateRunes(q.Get("error"), 64), ssoMsgRefused)
		return
	case q.Get("code") == "":
		a.ssoRefused(w, r, "", "no code", ssoMsgRefused)
		return
	}
	p, verifier := a.oidc.ready()
	if p == nil {
		a.ssoRefused(w, r, "", "identity provider not discovered yet", ssoMsgDown)
		return
	}
	tok, err := a.oauth2Config(p).Exchange(a.oidcContext(ctx), q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		reason, msg := idpFailure(err)
		a.ssoRefused(w, r, "", "code exchange: "+reason, msg)
		return
	}
	claims, reason, msg := a.verifiedClaims(ctx, p, verifier, tok, "", st.Nonce)
	if msg != "" {
		a.ssoRefused(w, r, claims.Email, reason, msg)
		return
	}
	ip := a.clientIP(r)
	res, err := a.store.SignInWithIdP(ctx, db.Actor{Email: "idp", IP: ip}, claims, db.SSOPolicy{Domains: a.cfg.OIDCDomains, NoEmailLink: a.cfg.OIDCLink == "never"})
	if err != nil {
		for _, refusal := range []struct {
			err error
			msg string
		}{{db.ErrEmailUnverified, ssoMsgUnverified}, {db.ErrNoAccount, ssoMsgNoAccount},
			{db.ErrDeactivated, ssoMsgDeactivated}, {db.ErrLinkedElsewhere, ssoMsgLinked}, {db.ErrLinkRefused, ssoMsgNotLinked}} {
			if errors.Is(err, refusal.err) {
				a.ssoRefused(w, r, claims.Email, refusal.err.Error(), refusal.msg)
				return
			}
		}
		a.serverError(w, r, err)
		return
	}
	u := res.User
	if a.ssoSecondFactor(w, r, u, st.Next) {
		return
	}
	sess, err := a.sessions.LoginWith(w, r, u.ID, map[any]any{authMethodKey: authMethodSSO})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	// Every SSO session gets its IdP side; it is re-checked only with a
	// refresh token.
	next, refresh := int64(math.MaxInt64), ""
	if tok.RefreshToken != "" && a.cfg.OIDCRecheck > 0 {
		next, refresh = a.now().Add(a.cfg.OIDCRecheck).UnixMilli(), tok.RefreshToken
	}
	hash := db.HashToken(sess.ID)
	if err := a.store.SaveOIDCSession(ctx, db.OIDCSession{SessionHash: hash, UserID: u.ID, Issuer: claims.Issuer,
		Subject: claims.Subject, RefreshToken: refresh, NextCheckAt: next}); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.oidc.rememberRecheck(hash, next, a.now())
	a.metrics.signedIn(authMethodSSO)
	if err := a.store.RecordLoginVia(ctx, db.Actor{ID: u.ID, Email: u.Email, IP: ip}, u.ID, authMethodSSO); err != nil {
		a.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, st.Next, http.StatusSeeOther)
}

// ssoSecondFactor is the hook for Gatehouse's own second factor after an
// SSO sign-in. Gatehouse trusts the IdP's sign-in (and its second factor),
// so it returns false and the session starts at once. When --require-mfa
// asks for a Gatehouse second factor after SSO too, this is where it is
// asked for: write the response (e.g. a redirect to the second-factor
// page carrying next) and return true; the session then must not start
// here. The session's method (authMethodKey) tells an SSO session apart.
func (a *App) ssoSecondFactor(w http.ResponseWriter, r *http.Request, u db.User, next string) bool {
	return false
}

// oidcContext is ctx carrying the HTTP client for requests to the IdP.
func (a *App) oidcContext(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, a.oidc.client)
}

// idpFailure tells an IdP that refused (an OAuth error answer) from one
// that could not be reached, for the audit log and the user.
func idpFailure(err error) (reason, msg string) {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		code := re.ErrorCode
		if code == "" {
			code = fmt.Sprintf("status %d", status)
		}
		if status >= 500 {
			return "identity provider failed: " + truncateRunes(code, 64), ssoMsgDown
		}
		return "refused: " + truncateRunes(code, 64), ssoMsgRefused
	}
	return "identity provider unreachable", ssoMsgDown
}

// verifiedClaims verifies the ID token in tok (signature, issuer, audience,
// expiry; the nonce when nonce is not empty; the subject when subject is
// not empty) and reads the person's claims, from the userinfo endpoint for
// those the ID token lacks. A non-empty msg is the refusal to show.
func (a *App) verifiedClaims(ctx context.Context, p *oidc.Provider, verifier *oidc.IDTokenVerifier, tok *oauth2.Token, subject, nonce string) (id db.IdPIdentity, reason, msg string) {
	claims := map[string]any{}
	issuer := a.cfg.OIDCIssuer
	raw, _ := tok.Extra("id_token").(string)
	switch {
	case raw == "" && subject == "":
		return id, "no ID token", ssoMsgInvalid
	case raw == "":
		// Some IdPs answer a refresh without a new ID token: the userinfo
		// endpoint, called with the fresh access token, speaks for them.
	default:
		idt, err := verifier.Verify(a.oidcContext(ctx), raw)
		if err != nil {
			var expired *oidc.TokenExpiredError
			if errors.As(err, &expired) {
				return id, "ID token expired", ssoMsgExpired
			}
			return id, "ID token refused: " + truncateRunes(err.Error(), 200), ssoMsgInvalid
		}
		if nonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
			return id, "wrong nonce", ssoMsgInvalid
		}
		if subject != "" && idt.Subject != subject {
			return id, "subject changed", ssoMsgInvalid
		}
		if err := idt.Claims(&claims); err != nil {
			return id, "ID token claims unreadable", ssoMsgInvalid
		}
		issuer, subject = idt.Issuer, idt.Subject
	}
	groupsClaim := a.cfg.OIDCGroupsClaim
	_, hasGroups := claims[groupsClaim]
	if _, hasEmail := claims["email"]; (!hasEmail || (groupsClaim != "" && !hasGroups)) && p.UserInfoEndpoint() != "" {
		ui, err := p.UserInfo(a.oidcContext(ctx), oauth2.StaticTokenSource(tok))
		switch {
		case err != nil && raw == "":
			return id, "userinfo after refresh: " + truncateRunes(err.Error(), 200), ssoMsgInvalid
		case err != nil:
			a.log.Warn("reading the identity provider's userinfo failed", "issuer", a.cfg.OIDCIssuer, "err", err)
		case ui.Subject != subject:
			return id, "userinfo subject differs", ssoMsgInvalid
		default:
			more := map[string]any{}
			if err := ui.Claims(&more); err == nil {
				for k, v := range more {
					if _, ok := claims[k]; !ok {
						claims[k] = v
					}
				}
			}
		}
	} else if raw == "" {
		return id, "no ID token and no userinfo endpoint", ssoMsgInvalid
	}
	id = db.IdPIdentity{Issuer: issuer, Subject: subject}
	id.Email, _ = claims["email"].(string)
	id.Email = truncateRunes(id.Email, 254)
	switch v := claims["email_verified"].(type) {
	case bool:
		id.EmailVerified = v
	case string: // some IdPs send "true"
		id.EmailVerified = v == "true"
	}
	// Entra ID sends no email_verified; its optional claim xms_edov says the
	// tenant owns (has verified) the email's domain.
	if edov, ok := claims["xms_edov"].(bool); ok && edov {
		id.EmailVerified = true
	}
	id.Name, _ = claims["name"].(string)
	id.Name = truncateRunes(id.Name, 100)
	if groupsClaim != "" {
		groups, ok := claimStrings(claims[groupsClaim])
		switch {
		case ok:
		case overage(claims, groupsClaim):
			// Entra ID: too many groups for a token; they are elsewhere.
			return id, fmt.Sprintf("groups overage: the token names a source for %q (_claim_names) instead of the groups; assign Gatehouse's groups to the app registration (groupMembershipClaims ApplicationGroup)", groupsClaim), ssoMsgOverage
		case a.cfg.OIDCMissingGroups == "empty":
			groups = nil // the claim is left out when the list is empty
		default:
			return id, fmt.Sprintf("no groups claim %q (IdPs that leave it out for someone in no group: --oidc-missing-groups=empty)", groupsClaim), ssoMsgNoGroups
		}
		id.Groups, id.SyncGroups = groups, true
	}
	return id, "", ""
}

// overage reports whether claims carry Entra ID's groups overage: the
// claim is missing and _claim_names points at where the groups are.
func overage(claims map[string]any, claim string) bool {
	names, ok := claims["_claim_names"].(map[string]any)
	if !ok {
		return false
	}
	_, ok = names[claim]
	return ok
}

// claimStrings reads a claim holding a list of names (or one name).
func claimStrings(v any) ([]string, bool) {
	switch v := v.(type) {
	case string:
		return []string{v}, true
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out, true
	}
	return nil, false
}

// ssoRefused audits a refused SSO sign-in and answers 401 with one plain
// sentence and a way back to the sign-in page.
func (a *App) ssoRefused(w http.ResponseWriter, r *http.Request, email, reason, msg string) {
	ctx := r.Context()
	if err := a.store.Audit(ctx, db.Actor{Email: email, IP: a.clientIP(r)}, db.Event{Action: db.ActionSSOFailed,
		Target: email, Detail: map[string]string{"reason": reason, "issuer": a.cfg.OIDCIssuer}}); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.log.LogAttrs(ctx, slog.LevelWarn, "SSO sign-in refused", slog.String("reason", reason), slog.String("email", email))
	a.errorPage(w, r, http.StatusUnauthorized, "Not signed in", msg)
}
