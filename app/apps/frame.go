package apps

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// An app is shown framed in its dashboard page on the main origin
// (/dashboards/SLUG), so every response of its origin must let that page,
// and only that page, frame it. Upstreams often forbid framing (Grafana's
// X-Frame-Options: deny, Jupyter's frame-ancestors 'self'); Gatehouse,
// which decides who sees the app, decides who frames it too.

// frameAncestors is the directive every app origin response carries: the
// main origin may frame the app, and the app itself may frame its own
// pages (Streamlit's components and Jupyter's widgets are frames of the
// app's own origin inside the app); no other site may.
func (h *Handler) frameAncestors() string {
	return "frame-ancestors " + h.base.Scheme + "://" + h.base.Host + " 'self'"
}

// frameable is the proxy's ModifyResponse: it drops the upstream's
// X-Frame-Options and gives each of its Content-Security-Policy policies
// Gatehouse's frame-ancestors in place of its own, keeping every other
// directive. A response without a policy gets one with that directive
// alone.
func (h *Handler) frameable(res *http.Response) error {
	hd := res.Header
	hd.Del("X-Frame-Options")
	hd["Content-Security-Policy"] = withFrameAncestors(hd.Values("Content-Security-Policy"), h.frameAncestors())
	return nil
}

// withFrameAncestors returns the header values policies (each a list of
// policies separated by commas, their directives by semicolons) with every
// frame-ancestors directive replaced by directive, added to policies that
// have none.
func withFrameAncestors(policies []string, directive string) []string {
	var out []string
	for _, value := range policies {
		for policy := range strings.SplitSeq(value, ",") {
			var kept []string
			for d := range strings.SplitSeq(policy, ";") {
				fields := strings.Fields(d)
				if len(fields) == 0 || strings.EqualFold(fields[0], "frame-ancestors") {
					continue
				}
				kept = append(kept, strings.Join(fields, " "))
			}
			if len(kept) == 0 {
				continue // an empty policy, or one that only restricted framing
			}
			out = append(out, strings.Join(append(kept, directive), "; "))
		}
	}
	if len(out) == 0 {
		out = []string{directive}
	}
	return out
}

// Signing in inside the frame.
//
// In production the main origin and the app origins share a registrable
// domain (gatehouse.corp.example, sales.apps.corp.example): the frame is
// same-site and the host-only SameSite=Lax app cookie is set and sent
// there as at the top level. Where they do not (locally: 127.0.0.1 and
// sales.localhost are different sites) the frame is cross-site: browsers
// neither send nor store a Lax cookie there, and block a SameSite=None one
// as a third-party cookie. What they allow is a partitioned cookie (CHIPS),
// kept for this app origin under the top-level site, and only when it was
// set inside the frame. So a sign-in the frame starts (Sec-Fetch-Dest:
// iframe) keeps its state, and ends with its app cookie, in partitioned
// cookies of their own names; the callback sets the Lax cookie too, for
// the same-site case, where the browser stores both.

// secureContext reports whether app origins under domain, reached with
// scheme, are secure contexts, where browsers accept Secure (and so
// partitioned) cookies: https, or http on *.localhost.
func secureContext(scheme, domain string) bool {
	return scheme == "https" || domain == "localhost" || strings.HasSuffix(domain, ".localhost")
}

// inFrame reports whether r is a navigation inside a frame, and the
// origin can set partitioned cookies there.
func (h *Handler) inFrame(r *http.Request) bool {
	dest := r.Header.Get("Sec-Fetch-Dest")
	return h.partitioned && (dest == "iframe" || dest == "frame")
}

// stateCookieName is the name of the sign-in state cookie for a sign-in
// started inside a frame or not.
func (h *Handler) stateCookieName(framed bool) string {
	if framed {
		return h.framedState
	}
	return h.stateCookie
}

// stateCookieFor is the sign-in state cookie, valid ten minutes. maxAge -1
// (state "") removes it.
func (h *Handler) stateCookieFor(framed bool, state string) *http.Cookie {
	c := &http.Cookie{Name: h.stateCookie, Value: state, Path: "/", MaxAge: 600,
		HttpOnly: true, Secure: h.base.Scheme == "https", SameSite: http.SameSiteLaxMode}
	if state == "" {
		c.MaxAge = -1
	}
	if framed {
		c.Name, c.Secure, c.SameSite, c.Partitioned = h.framedState, true, http.SameSiteNoneMode, true
	}
	return c
}

// stateMatches reports whether state is the one a sign-in started in this
// browser, at the top level or in a frame, holds in its state cookie.
func (h *Handler) stateMatches(r *http.Request, state string) bool {
	return cookieMatches(r, h.stateCookie, state) || cookieMatches(r, h.framedState, state)
}

// cookieMatches reports whether the request carries cookie name with
// value want (compared in constant time); an empty want never matches.
func cookieMatches(r *http.Request, name, want string) bool {
	if want == "" {
		return false
	}
	for _, c := range r.CookiesNamed(name) {
		if subtle.ConstantTimeCompare([]byte(c.Value), []byte(want)) == 1 {
			return true
		}
	}
	return false
}

// setAppCookies ends a sign-in: the app cookie carrying ticket (host-only,
// HttpOnly, SameSite=Lax), its partitioned twin when the sign-in ran
// inside a frame, and the state cookies removed.
func (h *Handler) setAppCookies(w http.ResponseWriter, r *http.Request, ticket string) {
	http.SetCookie(w, &http.Cookie{Name: h.cookieName, Value: ticket, Path: "/", HttpOnly: true,
		Secure: h.base.Scheme == "https", SameSite: http.SameSiteLaxMode})
	if h.inFrame(r) {
		http.SetCookie(w, &http.Cookie{Name: h.framedCookie, Value: ticket, Path: "/", HttpOnly: true,
			Secure: true, SameSite: http.SameSiteNoneMode, Partitioned: true})
	}
	for _, framed := range [2]bool{false, true} {
		if len(r.CookiesNamed(h.stateCookieName(framed))) > 0 {
			http.SetCookie(w, h.stateCookieFor(framed, ""))
		}
	}
}
