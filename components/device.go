package components

import "strings"

// Device names the browser and system of a User-Agent string for people:
// "Chrome on Linux", "Safari on iPhone", "curl". Pages show the raw string
// on hover. An empty or unknown string is "Unknown browser".
func Device(ua string) string {
	if strings.TrimSpace(ua) == "" {
		return "Unknown browser"
	}
	browser := uaBrowser(ua)
	if os := uaSystem(ua); os != "" {
		if browser == "" {
			return "A browser on " + os
		}
		return browser + " on " + os
	}
	if browser == "" {
		// A tool: its name is the first word ("curl/8.5.0" is "curl").
		name, _, _ := strings.Cut(strings.Fields(ua)[0], "/")
		if len(name) > 40 {
			name = name[:40] + "…"
		}
		return name
	}
	return browser
}

// uaBrowser picks the browser from a User-Agent; the order matters, since
// Edge and Opera claim to be Chrome, and Chrome claims to be Safari.
func uaBrowser(ua string) string {
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"},
		{"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"},
		{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
		{"HeadlessChrome/", "Headless Chrome"}, {"CriOS/", "Chrome"}, {"Chromium/", "Chromium"}, {"Chrome/", "Chrome"},
		{"Safari/", "Safari"},
	} {
		if strings.Contains(ua, b.token) {
			return b.name
		}
	}
	return ""
}

func uaSystem(ua string) string {
	for _, s := range []struct{ token, name string }{
		{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"},
		{"CrOS", "ChromeOS"}, {"Windows", "Windows"}, {"Mac OS X", "macOS"}, {"Macintosh", "macOS"},
		{"Linux", "Linux"}, {"X11", "Linux"},
	} {
		if strings.Contains(ua, s.token) {
			return s.name
		}
	}
	return ""
}
