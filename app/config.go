package app

import (
	"net/netip"
	"net/url"
	"strings"
	"time"

	"gatehouse/db"
)

// Config is the server's configuration, from flags or GATEHOUSE_* env vars.
type Config struct {
	Addr    string
	DataDir string
	DSN     string
	BaseURL string
	Demo    bool

	// DBWait is how long serve and migrate wait at start for a PostgreSQL
	// server that cannot be reached yet (starting up, restarting).
	DBWait time.Duration

	// SessionIdle and SessionMax are the idle and absolute session limits.
	SessionIdle time.Duration
	SessionMax  time.Duration

	// Dashboards is the directory of dashboard files (app/filedash); empty:
	// ./dashboards when it exists, else none.
	Dashboards string

	// PanelRefresh, when not zero, replaces every dashboard panel's own
	// refresh interval (for demos and tests; at least one second).
	PanelRefresh time.Duration

	// TrustedProxies are the reverse proxies whose X-Forwarded-For entries
	// are believed (see clientIP). TrustProxy adds loopback: "the one proxy
	// on this machine".
	TrustedProxies []netip.Prefix
	TrustProxy     bool

	// Registration.
	AllowSignup   bool
	SignupDomains []string
	SignupGroup   string
	// SignupsPerIP bounds sign-ups per client IP per hour (0: no limit).
	SignupsPerIP int

	// Login throttling: at most AccountFailures failed logins per account and
	// IPFailures per client IP within ThrottleWindow.
	AccountFailures int
	IPFailures      int
	ThrottleWindow  time.Duration

	// HashSlots bounds concurrent argon2 hashes (0: one fewer than the
	// number of CPUs, at least one);
	// HashWait is how long a login waits for a slot before a 503.
	HashSlots int
	HashWait  time.Duration

	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64

	// Mail: SMTPURL (smtp:// with STARTTLS, or smtps://) and MailFrom turn
	// on password resets by mail, confirmed sign-ups and request notices.
	// MailPoll is how often the outbox is checked for mail queued by other
	// processes and retries that came due.
	SMTPURL  string
	MailFrom string
	MailPoll time.Duration

	// Forgotten-password throttling: at most ResetPerAccount requests per
	// address and ResetPerIP per client IP within ResetWindow.
	ResetPerAccount int
	ResetPerIP      int
	ResetWindow     time.Duration

	// Sign-in with the organisation's identity provider (OpenID Connect),
	// on when OIDCIssuer is set. See docs/sso.md.
	OIDCIssuer       string
	OIDCClientID     string
	OIDCClientSecret string
	// OIDCName is the sign-in button's text: "Sign in with <OIDCName>".
	OIDCName string
	// OIDCGroupsClaim names the claim holding the IdP's groups ("": no
	// group sync).
	OIDCGroupsClaim string
	OIDCScopes      []string
	// OIDCDomains lists the email domains whose unknown users are created
	// at their first sign-in (empty: only existing users).
	OIDCDomains []string
	// OIDCLink says whether a first SSO sign-in may take over an existing
	// account by its (verified) email: "email" (the default) or "never".
	// Either way --oidc-domains decides only who is created.
	OIDCLink string
	// OIDCMissingGroups is what a sign-in whose token has no groups claim
	// means: "refuse" (the default: Gatehouse cannot tell) or "empty" (no
	// IdP groups: mapped memberships are removed, manual ones kept). Many
	// IdPs leave the claim out when the list is empty. Entra ID's groups
	// overage (_claim_names) is always refused.
	OIDCMissingGroups string
	// OIDCRecheck is how often, at most, a session with a refresh token is
	// re-checked with the IdP (0: only at sign-in).
	OIDCRecheck time.Duration
	// OIDCRetry is the first wait between discovery attempts while the IdP
	// cannot be reached (0: 2s).
	OIDCRetry time.Duration
	// PasswordLogin false keeps password sign-in for admins only.
	PasswordLogin bool
	// RequireMFA says who must have a second factor: "off", "admins" or
	// "all". Someone who must and has none is sent to set one up right after
	// their password, and can do nothing else first.
	RequireMFA string
	// MetricsAddr, when set, is the address of a separate listener serving
	// Prometheus /metrics (off by default so it is never public by accident).
	MetricsAddr string
	// AuditLog, when set, is a file (or "stdout") that receives every audit
	// event as one JSON line as it is written, for log shippers.
	AuditLog string

	// Long-lived connections (event streams; see app/conns): at most
	// StreamsPerPage per session and dashboard and StreamsPerSession per
	// session (a new one closes the oldest), StreamsPerUser per user (429
	// past it), and MaxStreams on the server (503 past it; 0: derived from
	// the open-file limit by conns.DefaultTotal).
	StreamsPerPage    int
	StreamsPerSession int
	StreamsPerUser    int
	MaxStreams        int
	// AppsDomain serves app SLUG at SLUG.AppsDomain (app/apps); empty:
	// localhost for a loopback base URL, else apps are off.
	AppsDomain string
}

// DefaultConfig returns the defaults documented in the README.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:8080",
		DataDir:           "data",
		DBWait:            db.DefaultWait,
		SessionIdle:       12 * time.Hour,
		SessionMax:        7 * 24 * time.Hour,
		SignupsPerIP:      10,
		AccountFailures:   5,
		IPFailures:        50,
		ThrottleWindow:    5 * time.Minute,
		HashWait:          500 * time.Millisecond,
		MaxBodyBytes:      64 << 10,
		MailPoll:          5 * time.Second,
		ResetPerAccount:   3,
		ResetPerIP:        20,
		ResetWindow:       15 * time.Minute,
		OIDCName:          "SSO",
		OIDCGroupsClaim:   "groups",
		OIDCScopes:        []string{"openid", "email", "profile"},
		OIDCRecheck:       15 * time.Minute,
		OIDCLink:          "email",
		OIDCMissingGroups: "refuse",
		PasswordLogin:     true,
		RequireMFA:        "off",

		StreamsPerPage:    4,
		StreamsPerSession: 16,
		StreamsPerUser:    32,
	}
}

// Secure reports whether the base URL is https (Secure, __Host- cookies and HSTS).
func (c Config) Secure() bool { return strings.HasPrefix(strings.ToLower(c.BaseURL), "https://") }

// PublicURL returns the configured base URL or one derived from Addr.
func (c Config) PublicURL() string {
	if c.BaseURL != "" {
		return strings.TrimRight(c.BaseURL, "/")
	}
	host := c.Addr
	if strings.HasPrefix(host, ":") {
		host = "localhost" + host
	}
	return "http://" + host
}

// origin is the scheme://host of the base URL, for CrossOriginProtection.
func (c Config) origin() string {
	u, err := url.Parse(c.BaseURL)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
