package apps

import "strings"

// groupsHeader is the X-Forwarded-Groups value for a viewer's groups: their
// names joined by commas, as oauth2-proxy sends them and upstreams split
// them. A group name may itself hold a comma ("Sales, EMEA"), which would
// read as two groups, so within a name "%" is sent as "%25" and "," as
// "%2C": a name without either (nearly all) is sent as it is, splitting on
// "," never cuts a name, and percent-decoding each part gives the name
// back exactly. The assertion's groups claim (a JSON array) carries the
// names unchanged.
func groupsHeader(groups []string) string {
	var b strings.Builder
	for i, g := range groups {
		if i > 0 {
			b.WriteByte(',')
		}
		if !strings.ContainsAny(g, ",%") {
			b.WriteString(g)
			continue
		}
		for _, r := range g {
			switch r {
			case ',':
				b.WriteString("%2C")
			case '%':
				b.WriteString("%25")
			default:
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}
