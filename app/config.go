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
}

// DefaultConfig returns the defaults documented in the README.
func DefaultConfig() Config {
	return Config{
		Addr:            "127.0.0.1:8080",
		DataDir:         "data",
		DBWait:          db.DefaultWait,
		SessionIdle:     12 * time.Hour,
		SessionMax:      7 * 24 * time.Hour,
		AccountFailures: 5,
		IPFailures:      50,
		ThrottleWindow:  5 * time.Minute,
		HashWait:        500 * time.Millisecond,
		MaxBodyBytes:    64 << 10,
		MailPoll:        5 * time.Second,
		ResetPerAccount: 3,
		ResetPerIP:      20,
		ResetWindow:     15 * time.Minute,
	}
}

// Secure reports whether the base URL is https (Secure, __Host- cookies and HSTS).
func (c Config) Secure() bool { return strings.HasPrefix(strings.ToLower(c.BaseURL), "https://") }

// baseURL returns the configured base URL or one derived from Addr.
func (c Config) baseURL() string {
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
