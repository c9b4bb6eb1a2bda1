package app

import (
	"errors"
	"net/url"
	"strings"
)

// Check checks the settings that depend on one another and says in one
// sentence what is wrong; it fills in defaults (an empty --oidc-name).
func (c *Config) Check() error {
	if !validRequireMFA(c.RequireMFA) {
		return errors.New("--require-mfa must be off, admins or all")
	}
	if c.StreamsPerUser < 1 || c.MaxStreams < 0 {
		return errors.New("--streams-per-user must be at least 1 and --max-streams 0 or more")
	}
	if c.BaseURL != "" && !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
		return errors.New("--base-url must start with http:// or https://")
	}
	if !c.PasswordLogin && c.AllowSignup {
		return errors.New("--allow-signup creates password accounts, which --password-login=false does not let sign in")
	}
	if c.OIDCIssuer == "" {
		if !c.PasswordLogin {
			return errors.New("--password-login=false needs --oidc-issuer: otherwise only admins could sign in")
		}
		return nil
	}
	u, err := url.Parse(c.OIDCIssuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("--oidc-issuer must be the identity provider's issuer URL, e.g. https://idp.example.com/realms/main")
	}
	if c.OIDCClientID == "" {
		return errors.New("--oidc-issuer needs --oidc-client-id")
	}
	hasOpenID := false
	for _, s := range c.OIDCScopes {
		hasOpenID = hasOpenID || s == "openid"
	}
	if !hasOpenID {
		return errors.New("--oidc-scopes must include openid")
	}
	if c.OIDCLink != "email" && c.OIDCLink != "never" {
		return errors.New("--oidc-link must be email or never")
	}
	if c.OIDCMissingGroups != "refuse" && c.OIDCMissingGroups != "empty" {
		return errors.New("--oidc-missing-groups must be refuse or empty")
	}
	if c.OIDCRecheck < 0 {
		return errors.New("--oidc-recheck must not be negative")
	}
	if strings.TrimSpace(c.OIDCName) == "" {
		c.OIDCName = "SSO"
	}
	return nil
}
