package app

import "runtime/debug"

// Version is stamped at build time with -ldflags "-X gatehouse/app.Version=v1.2.3".
var Version = ""

// VersionString is Version, or for a build without it the VCS revision
// ("devel-0b0b9ac1e2f3", "-dirty" when modified), or "devel".
func VersionString() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			if dirty {
				rev += "-dirty"
			}
			return "devel-" + rev
		}
	}
	return "devel"
}
