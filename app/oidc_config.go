package app

import (
	"flag"
	"net/url"
	"strings"
)

// addOIDCFlags adds serve's flags for sign-in with the identity provider
// and password sign-in to fs; the returned function checks and applies
// them after parsing.
func addOIDCFlags(fs *flag.FlagSet, cfg *Config) func() error {
	fs.StringVar(&cfg.OIDCIssuer, "oidc-issuer", "", "OpenID Connect issuer URL of the organisation's identity provider (turns on \"Sign in with …\"; see docs/sso.md)")
	fs.StringVar(&cfg.OIDCClientID, "oidc-client-id", "", "client ID registered at the identity provider")
	fs.StringVar(&cfg.OIDCClientSecret, "oidc-client-secret", "", "client secret (prefer the env var GATEHOUSE_OIDC_CLIENT_SECRET)")
	fs.StringVar(&cfg.OIDCName, "oidc-name", cfg.OIDCName, "the identity provider's name on the sign-in button: \"Sign in with <name>\"")
	fs.StringVar(&cfg.OIDCGroupsClaim, "oidc-groups-claim", cfg.OIDCGroupsClaim, "claim holding the identity provider's group names (empty: no group sync)")
	scopes := fs.String("oidc-scopes", strings.Join(cfg.OIDCScopes, " "), "scopes to request (add groups or offline_access where the IdP needs them)")
	domains := fs.String("oidc-domains", "", "comma-separated email domains whose new users are created at their first SSO sign-in (empty: only existing users)")
	fs.StringVar(&cfg.OIDCLink, "oidc-link", cfg.OIDCLink, "what a first SSO sign-in does with an existing account of the same verified email: email (link it; the IdP's sign-in then protects it, not Gatehouse's second factor) or never (refuse)")
	fs.DurationVar(&cfg.OIDCRecheck, "oidc-recheck", cfg.OIDCRecheck, "re-check SSO sessions with the identity provider (refresh, re-sync groups) at most this often (0: only at sign-in)")
	fs.BoolVar(&cfg.PasswordLogin, "password-login", cfg.PasswordLogin, "allow password sign-in for everyone; false keeps it for admins only")
	return func() error {
		cfg.OIDCScopes = strings.FieldsFunc(*scopes, func(r rune) bool { return r == ' ' || r == ',' })
		cfg.OIDCDomains = nil
		for _, d := range strings.Split(*domains, ",") {
			if d = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@")); d != "" {
				cfg.OIDCDomains = append(cfg.OIDCDomains, d)
			}
		}
		return cfg.checkOIDC()
	}
}

// checkOIDC checks the sign-in settings and says in one sentence what is wrong.
func (c *Config) checkOIDC() error {
	if !c.PasswordLogin && c.AllowSignup {
		return usageError{"--allow-signup creates password accounts, which --password-login=false does not let sign in"}
	}
	if c.OIDCIssuer == "" {
		if !c.PasswordLogin {
			return usageError{"--password-login=false needs --oidc-issuer: otherwise only admins could sign in"}
		}
		return nil
	}
	u, err := url.Parse(c.OIDCIssuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return usageError{"--oidc-issuer must be the identity provider's issuer URL, e.g. https://idp.example.com/realms/main"}
	}
	if c.OIDCClientID == "" {
		return usageError{"--oidc-issuer needs --oidc-client-id"}
	}
	hasOpenID := false
	for _, s := range c.OIDCScopes {
		hasOpenID = hasOpenID || s == "openid"
	}
	if !hasOpenID {
		return usageError{"--oidc-scopes must include openid"}
	}
	if c.OIDCLink != "email" && c.OIDCLink != "never" {
		return usageError{"--oidc-link must be email or never"}
	}
	if c.OIDCRecheck < 0 {
		return usageError{"--oidc-recheck must not be negative"}
	}
	if strings.TrimSpace(c.OIDCName) == "" {
		c.OIDCName = "SSO"
	}
	return nil
}
