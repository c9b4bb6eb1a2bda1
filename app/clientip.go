package app

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// loopbackProxies is what --trust-proxy trusts: one proxy on this machine.
var loopbackProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// ParseTrustedProxies reads --trusted-proxies: comma-separated CIDRs or
// single addresses ("10.0.0.0/8, 192.0.2.7, fd00::/8").
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %q is not an address or a CIDR range like 10.0.0.0/8", part)
		}
		ip = ip.Unmap()
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}

// trusted reports whether ip is one of the configured proxies.
func (c Config) trusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range c.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// clientIP is the request's client address. Without trusted proxies it is
// the remote address. With them, and only when the remote address is a
// trusted proxy, every X-Forwarded-For line is merged (in order) and walked
// from the right, skipping trusted hops: the first address that is not a
// trusted proxy is the client. Entries to its left were written by the
// client and are never read, so a client cannot choose its address by
// sending the header itself, in one line or several. When every entry is
// a trusted proxy (or one cannot be parsed), the leftmost trusted address
// reached is the answer.
func (a *App) clientIP(r *http.Request) string {
	if len(a.cfg.TrustedProxies) == 0 {
		// An IPv4 connection's "ip:port", as net/http wrote it, is already
		// canonical: its host part needs no parsing (nor a new string).
		if host := remoteIP(r); strings.IndexByte(host, ':') < 0 && strings.IndexByte(host, '%') < 0 {
			if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
				return host
			}
		}
	}
	remote := remoteAddr(r)
	if len(a.cfg.TrustedProxies) == 0 || !remote.IsValid() || !a.cfg.trusted(remote) {
		return addrString(remote, r)
	}
	client := remote
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		entries := strings.Split(hops[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			e := strings.TrimSpace(entries[j])
			if e == "" {
				continue
			}
			ip, ok := parseHop(e)
			if !ok {
				return client.String()
			}
			client = ip
			if !a.cfg.trusted(ip) {
				return client.String()
			}
		}
	}
	return client.String()
}

// parseHop reads one X-Forwarded-For entry: an address, possibly with a
// port ("192.0.2.1:4711", "[2001:db8::1]:4711").
func parseHop(s string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// remoteAddr is the address of the connection's peer.
func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap().WithZone("")
}

func addrString(ip netip.Addr, r *http.Request) string {
	if ip.IsValid() {
		return ip.String()
	}
	return remoteIP(r) // not an IP address: as the connection gave it
}
