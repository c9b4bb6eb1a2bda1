package cli

import (
	"flag"
	"strings"

	"gatehouse/app"
)

// addOIDCFlags adds serve's flags for sign-in with the identity provider
// and password sign-in to fs; the returned function checks and applies
// them after parsing.
func addOIDCFlags(fs *flag.FlagSet, cfg *app.Config) func() error {
	fs.StringVar(&cfg.OIDCIssuer, "oidc-issuer", "", "OpenID Connect issuer URL of the organisation's identity provider (turns on \"Sign in with …\"; see docs/sso.md)")
	fs.StringVar(&cfg.OIDCClientID, "oidc-client-id", "", "client ID registered at the identity provider")
	fs.StringVar(&cfg.OIDCClientSecret, "oidc-client-secret", "", "client secret (prefer the env var GATEHOUSE_OIDC_CLIENT_SECRET)")
	fs.StringVar(&cfg.OIDCName, "oidc-name", cfg.OIDCName, "the identity provider's name on the sign-in button: \"Sign in with <name>\"")
	fs.StringVar(&cfg.OIDCGroupsClaim, "oidc-groups-claim", cfg.OIDCGroupsClaim, "claim holding the identity provider's group names (empty: no group sync)")
	scopes := fs.String("oidc-scopes", strings.Join(cfg.OIDCScopes, " "), "scopes to request (add groups or offline_access where the IdP needs them)")
	domains := fs.String("oidc-domains", "", "comma-separated email domains whose new users are created at their first SSO sign-in (empty: only existing users)")
	fs.StringVar(&cfg.OIDCMissingGroups, "oidc-missing-groups", cfg.OIDCMissingGroups, "a token without the groups claim (many IdPs leave it out when the list is empty): refuse the sign-in, or empty (no IdP groups: mapped memberships removed, manual ones kept); Entra ID's groups overage is always refused")
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
		return nil
	}
}
