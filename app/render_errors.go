package app

import (
	"errors"
	"net/http"
	"strings"

	"gatehouse/db"
)

// storageStatus maps an error to a status and a message safe to show.
func storageStatus(err error) (int, string) {
	if errors.Is(err, db.ErrUnavailable) {
		msg := strings.TrimPrefix(err.Error(), db.ErrUnavailable.Error()+": ")
		return http.StatusServiceUnavailable, "The database is unavailable right now (" + msg + "). Nothing was changed; try again in a moment."
	}
	return http.StatusInternalServerError, "The server could not complete the request. It has been logged; try again."
}
