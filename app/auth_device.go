package app

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device
// Cookies"): a browser that has logged in to an account holds a signed
// cookie naming that account. At login:
//
//   - with a valid device cookie for the account, failures are counted for
//     that cookie alone: its owner is not locked out by failures made
//     elsewhere, and a stolen cookie still allows only AccountFailures
//     guesses per window;
//   - without one, failures are counted for the account, and lock out
//     every browser without a device cookie for it (as before);
//   - the per-IP limit applies to everyone.
//
// The cookie holds up to deviceCookieAccounts entries (a browser shared
// by several accounts), each the user id, a random 128-bit device id and
// an HMAC-SHA256 over both with a key kept in the database, so every
// instance accepts it and a restart does not reset it.
const (
	deviceCookieAccounts = 4
	deviceCookieMaxAge   = 365 * 24 * time.Hour
	deviceKeySetting     = "device_cookie_key"
	// deviceTargetPrefix marks a failed login made with a device cookie in
	// the audit log's target column, where the device's failures are
	// counted (the actor column still holds the email typed).
	deviceTargetPrefix = "device:"
)

// deviceCookieName is the device cookie's name: __Host- prefixed over https.
func (a *App) deviceCookieName() string {
	if a.cfg.Secure() {
		return "__Host-gatehouse_device"
	}
	return "gatehouse_device"
}

// deviceEntries returns the valid entries of the request's device cookie.
func (a *App) deviceEntries(r *http.Request) []deviceEntry {
	c, err := r.Cookie(a.deviceCookieName())
	if err != nil || len(c.Value) > 1024 {
		return nil
	}
	var out []deviceEntry
	for _, part := range strings.Split(c.Value, ".") {
		if e, ok := a.parseDeviceEntry(part); ok && len(out) < deviceCookieAccounts {
			out = append(out, e)
		}
	}
	return out
}

// trustedDevice returns the id of the request's device cookie entry for
// userID ("" when the browser has none, or a forged one).
func (a *App) trustedDevice(r *http.Request, userID int64) string {
	if userID == 0 {
		return ""
	}
	for _, e := range a.deviceEntries(r) {
		if e.userID == userID {
			return e.id
		}
	}
	return ""
}

// rememberDevice sets the device cookie after a successful login to userID:
// this browser's entry for that account is kept (or made) and moved first.
func (a *App) rememberDevice(w http.ResponseWriter, r *http.Request, userID int64) {
	entries := a.deviceEntries(r)
	mine := deviceEntry{userID: userID}
	var rest []deviceEntry
	for _, e := range entries {
		if e.userID == userID {
			mine = e
		} else {
			rest = append(rest, e)
		}
	}
	if mine.id == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		mine.id = hex.EncodeToString(b[:])
	}
	all := append([]deviceEntry{mine}, rest...)
	if len(all) > deviceCookieAccounts {
		all = all[:deviceCookieAccounts]
	}
	parts := make([]string, len(all))
	for i, e := range all {
		parts[i] = a.signDeviceEntry(e)
	}
	http.SetCookie(w, &http.Cookie{Name: a.deviceCookieName(), Value: strings.Join(parts, "."), Path: "/",
		MaxAge: int(deviceCookieMaxAge / time.Second), HttpOnly: true, Secure: a.cfg.Secure(), SameSite: http.SameSiteStrictMode})
}

type deviceEntry struct {
	userID int64
	id     string // 32 hex digits
}

func (a *App) deviceMAC(userID int64, id []byte) []byte {
	m := hmac.New(sha256.New, a.deviceKey)
	m.Write([]byte("gatehouse device cookie\x00"))
	var u [8]byte
	binary.BigEndian.PutUint64(u[:], uint64(userID))
	m.Write(u[:])
	m.Write(id)
	return m.Sum(nil)
}

func (a *App) signDeviceEntry(e deviceEntry) string {
	id, _ := hex.DecodeString(e.id)
	b := make([]byte, 0, 8+16+32)
	b = binary.BigEndian.AppendUint64(b, uint64(e.userID))
	b = append(b, id...)
	b = append(b, a.deviceMAC(e.userID, id)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (a *App) parseDeviceEntry(s string) (deviceEntry, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 8+16+32 || len(a.deviceKey) == 0 {
		return deviceEntry{}, false
	}
	userID := int64(binary.BigEndian.Uint64(b[:8]))
	id := b[8:24]
	if !hmac.Equal(b[24:], a.deviceMAC(userID, id)) {
		return deviceEntry{}, false
	}
	return deviceEntry{userID: userID, id: hex.EncodeToString(id)}, true
}
