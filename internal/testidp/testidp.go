// Package testidp runs a real OpenID Provider for tests: the OpenID-certified
// `op` package of github.com/zitadel/oidc with a small in-memory store whose
// users carry groups, on a loopback port, with its own login page. Tests
// change users (groups, email, disabled), rotate the signing key, and stop
// and restart the provider to see how Gatehouse copes.
//
// It is imported only by tests.
package testidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// User is a person at the provider.
type User struct {
	ID            string // the subject
	Username      string // what they type on the login page
	Password      string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	// NoGroupsClaim leaves the groups claim out of their tokens.
	NoGroupsClaim bool
	// Disabled users cannot log in, and their refresh tokens are refused.
	Disabled bool
}

// Provider is a running OpenID Provider.
type Provider struct {
	// Issuer is the provider's issuer URL (http://127.0.0.1:port).
	Issuer       string
	ClientID     string
	ClientSecret string

	t     testing.TB
	addr  string
	st    *store
	op    *op.Provider
	mu    sync.Mutex
	srv   *http.Server
	login http.Handler
}

// Start runs a provider with one confidential web client (ClientID
// "gatehouse") until the test ends.
func Start(t testing.TB) *Provider {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{Issuer: "http://" + ln.Addr().String(), ClientID: "gatehouse", ClientSecret: "gatehouse-secret",
		t: t, addr: ln.Addr().String()}
	p.st = newStore(p.ClientID, p.ClientSecret)
	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:])
	cfg := &op.Config{CryptoKey: cryptoKey, CodeMethodS256: true, AuthMethodPost: true, GrantTypeRefreshToken: true}
	p.op, err = op.NewProvider(cfg, p.st, op.StaticIssuer(p.Issuer), op.WithAllowInsecure())
	if err != nil {
		t.Fatal(err)
	}
	p.st.loginURL = func(id string) string { return "/login?authRequestID=" + url.QueryEscape(id) }
	p.login = p.loginHandler(op.AuthCallbackURL(p.op))
	p.serve(ln)
	t.Cleanup(p.Stop)
	return p
}

func (p *Provider) serve(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("/login", op.NewIssuerInterceptor(p.op.IssuerFromRequest).Handler(p.login))
	mux.Handle("/", p.rewriteTokens(p.op))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Stop stops the provider (it is then "down": connections are refused).
func (p *Provider) Stop() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
}

// Restart starts a stopped provider again on the same address, with the
// same users, clients, keys and tokens.
func (p *Provider) Restart() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

// AllowRedirect registers a redirect URI for the client.
func (p *Provider) AllowRedirect(uri string) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.client.redirects = append(p.st.client.redirects, uri)
}

// AddUser adds (or replaces) a user.
func (p *Provider) AddUser(u User) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	cp := u
	cp.Groups = slices.Clone(u.Groups)
	p.st.users[u.ID] = &cp
}

// Update changes a user in place (groups, email, disabled...).
func (p *Provider) Update(id string, change func(*User)) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	change(p.st.users[id])
}

// RotateKey replaces the signing key; the old one is no longer published.
func (p *Provider) RotateKey() {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.key = newKey()
}

// SetAudience makes the ID tokens the token endpoint answers with from now
// on name aud (and no other) as their audience and authorized party,
// signed with the provider's current key: tokens minted for another client
// (nil: the client again).
func (p *Provider) SetAudience(aud []string) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.audience = aud
}

// SetNonce makes the ID tokens the token endpoint answers with from now on
// carry nonce instead of the one the relying party sent, signed with the
// provider's current key: a token replayed from another sign-in ("": the
// relying party's nonce again).
func (p *Provider) SetNonce(nonce string) {
	p.SetIDTokenClaim("nonce", nil)
	if nonce != "" {
		p.SetIDTokenClaim("nonce", nonce)
	}
}

// SetIDTokenClaim makes the ID tokens the token endpoint answers with from
// now on (at sign-in and at refresh) carry claim name with value (any JSON
// value, e.g. the string "false" for email_verified, or another "sub"),
// signed with the provider's current key; value nil stops overriding name.
func (p *Provider) SetIDTokenClaim(name string, value any) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	if value == nil {
		delete(p.st.claims, name)
		return
	}
	if p.st.claims == nil {
		p.st.claims = map[string]any{}
	}
	p.st.claims[name] = value
}

// rewriteTokens re-signs the ID token of token responses with the audience
// SetAudience chose and the claims SetNonce and SetIDTokenClaim set.
func (p *Provider) rewriteTokens(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.st.mu.Lock()
		aud, key, override := p.st.audience, p.st.key, maps.Clone(p.st.claims)
		p.st.mu.Unlock()
		if (aud == nil && len(override) == 0) || r.URL.Path != "/oauth/token" {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err == nil {
			if raw, ok := body["id_token"].(string); ok {
				if jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256}); err == nil {
					var claims map[string]any
					if json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims) == nil {
						if aud != nil {
							claims["aud"], claims["azp"] = aud, aud[0]
						}
						maps.Copy(claims, override)
						payload, _ := json.Marshal(claims)
						signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key.key},
							(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", key.id))
						if err == nil {
							if obj, err := signer.Sign(payload); err == nil {
								body["id_token"], _ = obj.CompactSerialize()
							}
						}
					}
				}
			}
		}
		for k, v := range rec.Header() {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(rec.Code)
		_ = json.NewEncoder(w).Encode(body)
	})
}

// SetIDTokenLifetime changes how long ID tokens are valid (0: an hour).
func (p *Provider) SetIDTokenLifetime(d time.Duration) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.client.idTokenLifetime = d
}

// Login drives the provider's login page with c, starting from authURL
// (the provider's authorization URL the relying party redirected to), and
// returns the redirect back to the relying party (its callback URL with
// code and state). c must not follow redirects.
func (p *Provider) Login(c *http.Client, authURL, username, password string) (string, error) {
	res, err := c.Get(authURL)
	if err != nil {
		return "", err
	}
	res.Body.Close()
	loginPage := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || loginPage == "" {
		return "", fmt.Errorf("authorize: status %d, no redirect to the login page", res.StatusCode)
	}
	u, err := url.Parse(p.Issuer)
	if err != nil {
		return "", err
	}
	lu, err := u.Parse(loginPage)
	if err != nil {
		return "", err
	}
	id := lu.Query().Get("authRequestID")
	res, err = c.PostForm(p.Issuer+"/login", url.Values{"id": {id}, "username": {username}, "password": {password}})
	if err != nil {
		return "", err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		return "", fmt.Errorf("login: status %d", res.StatusCode)
	}
	cb, err := u.Parse(res.Header.Get("Location"))
	if err != nil {
		return "", err
	}
	res, err = c.Get(cb.String())
	if err != nil {
		return "", err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound && res.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("authorize callback: status %d", res.StatusCode)
	}
	return res.Header.Get("Location"), nil
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><title>Test IdP: sign in</title></head><body>
<h1>Test identity provider</h1>
{{if .Error}}<p id="error">{{.Error}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="id" value="{{.ID}}">
<label for="username">Username</label> <input id="username" name="username">
<label for="password">Password</label> <input id="password" name="password" type="password">
<button type="submit" id="submit">Sign in</button>
</form></body></html>`))

// loginHandler is the provider's own login page.
func (p *Provider) loginHandler(callback func(context.Context, string) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		id := r.FormValue("authRequestID")
		if r.Method == http.MethodGet {
			_ = loginPage.Execute(w, map[string]string{"ID": id})
			return
		}
		id = r.FormValue("id")
		if err := p.st.checkLogin(id, r.FormValue("username"), r.FormValue("password")); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			_ = loginPage.Execute(w, map[string]string{"ID": id, "Error": err.Error()})
			return
		}
		http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
	})
}

// store is the provider's in-memory storage (op.Storage).
type store struct {
	mu        sync.Mutex
	client    *client
	users     map[string]*User
	requests  map[string]*authRequest
	codes     map[string]string // code -> request id
	tokens    map[string]*token // access token id -> token
	refreshes map[string]*token // refresh token -> token
	key       *signingKey
	audience  []string
	claims    map[string]any // ID token claims to override (SetIDTokenClaim)
	loginURL  func(string) string
	seq       int
}

type token struct {
	id, subject, clientID string
	scopes, audience      []string
	authTime              time.Time
	amr                   []string
}

func newStore(clientID, secret string) *store {
	return &store{client: &client{id: clientID, secret: secret}, users: map[string]*User{}, requests: map[string]*authRequest{},
		codes: map[string]string{}, tokens: map[string]*token{}, refreshes: map[string]*token{}, key: newKey()}
}

func (s *store) nextID(prefix string) string {
	s.seq++
	var b [12]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%d-%x", prefix, s.seq, b)
}

func (s *store) checkLogin(id, username, password string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[id]
	if !ok {
		return errors.New("request not found")
	}
	for _, u := range s.users {
		if u.Username == username && u.Password == password && !u.Disabled {
			req.subject, req.done, req.authTime = u.ID, true, time.Now()
			return nil
		}
	}
	return errors.New("wrong username or password")
}

// signingKey is an RSA key, published in the key set while current.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func newKey() *signingKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &signingKey{id: fmt.Sprintf("key-%x", b), key: k}
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ *signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

// authRequest is one authorization request (op.AuthRequest).
type authRequest struct {
	id, clientID, redirectURI, state, nonce, subject string
	scopes, audience                                 []string
	responseType                                     oidc.ResponseType
	challenge                                        *oidc.CodeChallenge
	done                                             bool
	authTime                                         time.Time
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return a.audience }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return "" }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

// refreshRequest is a refresh token's grant (op.RefreshTokenRequest).
type refreshRequest struct{ t *token }

func (r *refreshRequest) GetAMR() []string                 { return r.t.amr }
func (r *refreshRequest) GetAudience() []string            { return r.t.audience }
func (r *refreshRequest) GetAuthTime() time.Time           { return r.t.authTime }
func (r *refreshRequest) GetClientID() string              { return r.t.clientID }
func (r *refreshRequest) GetScopes() []string              { return r.t.scopes }
func (r *refreshRequest) GetSubject() string               { return r.t.subject }
func (r *refreshRequest) SetCurrentScopes(scopes []string) { r.t.scopes = scopes }

func (s *store) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &authRequest{id: s.nextID("req"), clientID: req.ClientID, redirectURI: req.RedirectURI, state: req.State,
		nonce: req.Nonce, scopes: req.Scopes, responseType: req.ResponseType, audience: []string{req.ClientID}}
	if req.CodeChallenge != "" {
		a.challenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}
	s.requests[a.id] = a
	return a, nil
}

func (s *store) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.requests[id]; ok {
		return a, nil
	}
	return nil, errors.New("request not found")
}

func (s *store) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errors.New("code invalid or already used")
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *store) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *store) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
	return nil
}

func (s *store) newToken(req op.TokenRequest) *token {
	t := &token{id: s.nextID("at"), subject: req.GetSubject(), scopes: req.GetScopes(), audience: req.GetAudience()}
	switch r := req.(type) {
	case *authRequest:
		t.clientID, t.authTime, t.amr = r.clientID, r.authTime, r.GetAMR()
	case *refreshRequest:
		t.clientID, t.authTime, t.amr = r.t.clientID, r.t.authTime, r.t.amr
	}
	s.tokens[t.id] = t
	return t
}

func (s *store) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.newToken(req)
	return t.id, time.Now().Add(5 * time.Minute), nil
}

func (s *store) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if current != "" {
		if _, ok := s.refreshes[current]; !ok {
			return "", "", time.Time{}, errors.New("invalid refresh token")
		}
		delete(s.refreshes, current) // rotation: a refresh token works once
	}
	t := s.newToken(req)
	rt := s.nextID("rt")
	s.refreshes[rt] = t
	return t.id, rt, time.Now().Add(5 * time.Minute), nil
}

func (s *store) TokenRequestByRefreshToken(_ context.Context, rt string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.refreshes[rt]
	if !ok {
		return nil, errors.New("invalid refresh token")
	}
	if u := s.users[t.subject]; u == nil || u.Disabled {
		return nil, errors.New("user disabled")
	}
	cp := *t
	return &refreshRequest{&cp}, nil
}

func (s *store) TerminateSession(context.Context, string, string) error { return nil }

func (s *store) RevokeToken(_ context.Context, tok, _, _ string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, tok)
	delete(s.refreshes, tok)
	return nil
}

func (s *store) GetRefreshTokenInfo(_ context.Context, _ string, tok string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.refreshes[tok]; ok {
		return t.subject, tok, nil
	}
	return "", "", op.ErrInvalidRefreshToken
}

func (s *store) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key, nil
}

func (s *store) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *store) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return []op.Key{publicKey{s.key}}, nil
}

func (s *store) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != s.client.id {
		return nil, errors.New("client not found")
	}
	cp := *s.client
	cp.redirects = slices.Clone(s.client.redirects)
	cp.loginURL = s.loginURL
	return &cp, nil
}

func (s *store) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id != s.client.id || secret != s.client.secret {
		return errors.New("invalid client")
	}
	return nil
}

func (s *store) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's claims: the email and profile
// only when the client asks for them there (as OIDC Core says when an access
// token is issued: from the userinfo endpoint otherwise), the groups always.
func (s *store) SetUserinfoFromRequest(_ context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.userinfo(ui, req.GetSubject(), scopes)
}

func (s *store) SetUserinfoFromToken(_ context.Context, ui *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok {
		return errors.New("token invalid")
	}
	return s.userinfo(ui, subject, t.scopes)
}

func (s *store) userinfo(ui *oidc.UserInfo, subject string, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[subject]
	if u == nil {
		return errors.New("user not found")
	}
	ui.Subject = u.ID
	if slices.Contains(scopes, oidc.ScopeEmail) {
		ui.Email, ui.EmailVerified = u.Email, oidc.Bool(u.EmailVerified)
	}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		ui.Name, ui.PreferredUsername = u.Name, u.Username
	}
	if !u.NoGroupsClaim {
		ui.AppendClaims("groups", append([]string{}, u.Groups...))
	}
	return nil
}

func (s *store) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("not supported")
}

func (s *store) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *store) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("not supported")
}

func (s *store) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("not supported")
}

func (s *store) Health(context.Context) error { return nil }

// client is the one registered client (op.Client): a confidential web app
// using the code flow with refresh tokens.
type client struct {
	id, secret      string
	redirects       []string
	loginURL        func(string) string
	idTokenLifetime time.Duration
}

func (c *client) GetID() string                    { return c.id }
func (c *client) RedirectURIs() []string           { return c.redirects }
func (c *client) PostLogoutRedirectURIs() []string { return nil }
func (c *client) ApplicationType() op.ApplicationType {
	return op.ApplicationTypeWeb
}
func (c *client) AuthMethod() oidc.AuthMethod { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *client) LoginURL(id string) string            { return c.loginURL(id) }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *client) DevMode() bool                        { return true }
func (c *client) IsScopeAllowed(scope string) bool     { return strings.HasPrefix(scope, "groups") }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) IDTokenLifetime() time.Duration {
	if c.idTokenLifetime != 0 {
		return c.idTokenLifetime
	}
	return time.Hour
}
