package db

import (
	"errors"
	"strings"
)

// Sentence turns an error into one plain sentence for people (stderr, a
// health answer): a wrapped ErrNotFound's own words are dropped when the
// wrapping already says what was not found, and so is a final full stop.
func Sentence(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, ErrUnavailable):
	case errors.Is(err, ErrNotFound) && !strings.Contains(msg, ": not found"):
		msg = strings.TrimSuffix(msg, ": "+ErrNotFound.Error())
	}
	msg = strings.TrimSuffix(msg, ".")
	return msg
}
