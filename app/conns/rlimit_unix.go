//go:build linux || darwin

package conns

import "syscall"

// RaiseFileLimit raises the process's soft limit on open files to its hard
// limit and returns the soft limit in force afterwards. Go's runtime does
// this too at start on most systems; doing it here makes it certain and
// tells the caller the figure to derive budgets from. When the raise is
// refused (darwin's hard limit may be unlimited, which it will not set),
// the current soft limit is returned.
func RaiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		raised := l
		raised.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			l = raised
		}
	}
	return l.Cur, nil
}

// FileLimit returns the process's soft limit on open files.
func FileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	return l.Cur, nil
}
