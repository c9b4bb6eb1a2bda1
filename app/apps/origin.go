package apps

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// DefaultDomain is the apps domain when --apps-domain is not given:
// "localhost" when the base URL's host is a loopback address or name
// (apps then work at http://SLUG.localhost:PORT/ with no set-up), else ""
// (apps off: serving them needs wildcard DNS the operator must set up).
func DefaultDomain(baseURL string) string {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return ""
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return "localhost"
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return "localhost"
	}
	return ""
}

// Origin returns the origin app slug is served at: the base URL's scheme
// and port with host SLUG.domain, e.g. http://sales.localhost:8080.
func Origin(baseURL, domain, slug string) string {
	u, err := url.Parse(baseURL)
	if err != nil {
		return ""
	}
	host := slug + "." + domain
	if port := u.Port(); port != "" {
		host = net.JoinHostPort(host, port)
	}
	return u.Scheme + "://" + host
}
