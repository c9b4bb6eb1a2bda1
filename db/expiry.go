package db

import (
	"fmt"
	"strings"
	"time"
)

// ParseExpiry reads an optional YYYY-MM-DD expiry: the membership ends at
// the start of that day (UTC), which must be in the future. "" means never.
func ParseExpiry(s string, now time.Time) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return 0, fmt.Errorf("expiry %q is not a date like 2026-12-31", s)
	}
	if !t.After(now) {
		return 0, fmt.Errorf("expiry %s is not in the future", s)
	}
	return t.UnixMilli(), nil
}
