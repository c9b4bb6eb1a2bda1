//go:build !(linux || darwin)

package conns

import "errors"

// RaiseFileLimit is not supported here: it returns 0 (unknown).
func RaiseFileLimit() (uint64, error) { return 0, errors.ErrUnsupported }

// FileLimit is not known here: it returns 0.
func FileLimit() (uint64, error) { return 0, errors.ErrUnsupported }
