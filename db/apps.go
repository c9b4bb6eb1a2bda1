package db

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// Audit actions for apps.
const (
	ActionAppCreate = "app.create"
	ActionAppUpdate = "app.update"
	ActionAppDelete = "app.delete"
	// ActionAppOpen is written when a session redeems a sign-in code on an
	// app's origin: the first time it opens the app.
	ActionAppOpen = "app.open"
)

// App is a dashboard whose content comes from an upstream URL. Its slug is
// a dashboard slug (grants, requests and decisions name it) and a host
// name label (it is served at SLUG.<apps-domain>).
type App struct {
	bun.BaseModel `bun:"table:apps"`

	Slug        string `bun:"slug,pk"`
	Upstream    string `bun:"upstream,notnull"`
	Title       string `bun:"title,notnull"`
	Description string `bun:"description,notnull"`
	// UserHeader is one more request header carrying the viewer's email
	// to the upstream (e.g. Grafana's X-WEBAUTH-USER); "" for none.
	UserHeader string `bun:"user_header,notnull"`
	// ExternalURL is where a team's own proxy serves the app, asking
	// Gatehouse before each request (forward authentication): an origin
	// (https://grafana.corp.example/) or a path under one
	// (https://tools.corp.example/grafana/); "" for none. CleanApp leaves
	// it ending in "/".
	ExternalURL string `bun:"external_url,notnull"`
	CreatedAt   int64  `bun:"created_at,notnull"`
	UpdatedAt   int64  `bun:"updated_at,notnull"`
}

// AppCode is a one-time sign-in code for an app's origin (stored hashed).
type AppCode struct {
	bun.BaseModel `bun:"table:app_codes"`

	CodeHash    string `bun:"code_hash,pk"`
	App         string `bun:"app,notnull"`
	SessionHash string `bun:"session_hash,notnull"`
	// Ticket is what the app origin's cookie will hold (sealed by app/apps).
	Ticket    string `bun:"ticket,notnull"`
	ExpiresAt int64  `bun:"expires_at,notnull"`
}

// appSlugRE is a dashboard slug that is also a DNS label: at most 63 bytes,
// not ending in a dash.
var appSlugRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// headerNameRE is an HTTP header name (RFC 9110 token).
var headerNameRE = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")

// reservedUserHeaders are headers Gatehouse sets itself (or that decide
// how a request travels); an app's user header cannot be one of them.
var reservedUserHeaders = map[string]bool{
	"Host": true, "Cookie": true, "Authorization": true, "Connection": true, "Upgrade": true,
	"Content-Length": true, "Transfer-Encoding": true, "Te": true, "Origin": true,
	"X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
	"X-Forwarded-User": true, "X-Forwarded-Email": true, "X-Forwarded-Groups": true,
	"X-Forwarded-Preferred-Username": true, "X-Gatehouse-Assertion": true, "Remote-User": true,
}

// MaxAppTitleLen bounds an app's title.
const MaxAppTitleLen = 100

// CleanApp checks and normalizes an app's fields, returning one
// user-facing error for the first bad one.
func CleanApp(a App) (App, error) {
	a.Slug = strings.TrimSpace(a.Slug)
	if !appSlugRE.MatchString(a.Slug) {
		return a, fmt.Errorf("app slug %q must be 1-63 of a-z, 0-9 and - (not at either end): it is a host name label", a.Slug)
	}
	u, err := url.Parse(strings.TrimSpace(a.Upstream))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return a, fmt.Errorf("upstream %q must be an http:// or https:// URL with a host and no user, query or fragment", a.Upstream)
	}
	a.Upstream = u.String()
	if a.Title, err = CleanName("title", a.Title, 1, MaxAppTitleLen); err != nil {
		return a, err
	}
	if a.Description, err = CleanName("description", a.Description, 0, MaxDescriptionLen); err != nil {
		return a, err
	}
	if a.UserHeader = strings.TrimSpace(a.UserHeader); a.UserHeader != "" {
		if !headerNameRE.MatchString(a.UserHeader) {
			return a, fmt.Errorf("user header %q is not a valid header name", a.UserHeader)
		}
		a.UserHeader = http.CanonicalHeaderKey(a.UserHeader)
		if reservedUserHeaders[a.UserHeader] {
			return a, fmt.Errorf("user header %s is set by Gatehouse or the connection itself; choose another (e.g. X-WEBAUTH-USER)", a.UserHeader)
		}
	}
	if a.ExternalURL, err = cleanExternalURL(a.ExternalURL); err != nil {
		return a, err
	}
	return a, nil
}

// cleanExternalURL checks an app's external URL: "" or an http(s) URL
// with a host and no user, query or fragment, whose path is not under
// /.gatehouse/ (Gatehouse's own paths on that host). It returns it with a
// lower-case scheme and host and a path ending in "/".
func cleanExternalURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" || strings.ContainsAny(u.Host, "*") {
		return "", fmt.Errorf("external URL %q must be an http:// or https:// URL with a host and no user, query or fragment, e.g. https://grafana.corp.example/ or https://tools.corp.example/grafana/", raw)
	}
	u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawPath = ""
	if strings.HasPrefix(u.Path, "/.gatehouse/") || strings.Contains(u.Path, "/../") || strings.Contains(u.Path, "/./") || strings.Contains(u.Path, "//") {
		return "", fmt.Errorf("external URL %q has a path Gatehouse cannot mount an app at (not under /.gatehouse/, no . or .. segments)", raw)
	}
	return u.String(), nil
}

func appAudit(a App) map[string]any {
	m := map[string]any{"slug": a.Slug, "upstream": a.Upstream, "title": a.Title,
		"description": a.Description, "user_header": a.UserHeader}
	if a.ExternalURL != "" {
		m["external_url"] = a.ExternalURL
	}
	return m
}

// CreateApp stores a new app (fields as CleanApp returns them), audited.
// ErrDuplicate when the slug is taken.
func (s *Store) CreateApp(ctx context.Context, actor Actor, a App) (App, error) {
	now := s.nowMS()
	a.CreatedAt, a.UpdatedAt = now, now
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&a).Exec(ctx); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, actor, Event{Action: ActionAppCreate, Target: a.Slug,
			Detail: map[string]any{"after": appAudit(a)}})
	})
	return a, err
}

// UpdateApp replaces the fields of the app with a.Slug, audited with what
// it was. ErrNotFound when there is no such app.
func (s *Store) UpdateApp(ctx context.Context, actor Actor, a App) (App, error) {
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var before App
		if err := tx.NewSelect().Model(&before).Where("slug = ?", a.Slug).Limit(1).Scan(ctx); err != nil {
			return err
		}
		a.CreatedAt, a.UpdatedAt = before.CreatedAt, s.nowMS()
		if before.Upstream == a.Upstream && before.Title == a.Title && before.Description == a.Description && before.UserHeader == a.UserHeader &&
			before.ExternalURL == a.ExternalURL {
			a.UpdatedAt = before.UpdatedAt
			return nil
		}
		if _, err := tx.NewUpdate().Model(&a).Column("upstream", "title", "description", "user_header", "external_url", "updated_at").WherePK().Exec(ctx); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, actor, Event{Action: ActionAppUpdate, Target: a.Slug,
			Detail: map[string]any{"before": appAudit(before), "after": appAudit(a)}})
	})
	return a, err
}

// DeleteApp removes an app and its unredeemed sign-in codes, audited. Its
// grants stay (like a dashboard's whose code was removed). ErrNotFound when
// there is no such app.
func (s *Store) DeleteApp(ctx context.Context, actor Actor, slug string) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var before App
		if err := tx.NewSelect().Model(&before).Where("slug = ?", slug).Limit(1).Scan(ctx); err != nil {
			return err
		}
		if _, err := tx.NewDelete().Model((*AppCode)(nil)).Where("app = ?", slug).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.NewDelete().Model((*App)(nil)).Where("slug = ?", slug).Exec(ctx); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, actor, Event{Action: ActionAppDelete, Target: slug,
			Detail: map[string]any{"before": appAudit(before)}})
	})
}

// AppBySlug returns the app with slug; ErrNotFound when there is none.
func (s *Store) AppBySlug(ctx context.Context, slug string) (App, error) {
	var a App
	err := s.DB.NewSelect().Model(&a).Where("slug = ?", slug).Limit(1).Scan(ctx)
	return a, storageErr(err)
}

// ListApps returns every app, ordered by slug.
func (s *Store) ListApps(ctx context.Context) ([]App, error) {
	var apps []App
	err := s.DB.NewSelect().Model(&apps).Order("slug").Scan(ctx)
	return apps, storageErr(err)
}

// AppCodeTTL is how long a sign-in code may wait to be redeemed.
const AppCodeTTL = time.Minute

// IssueAppCode stores a new one-time code for app, bound to the session
// whose id hashes to sessionHash, that redeems to ticket within AppCodeTTL.
// It returns the code (only its hash is stored) and sweeps expired codes.
func (s *Store) IssueAppCode(ctx context.Context, app, sessionHash, ticket string) (string, error) {
	code := RandomToken(32)
	now := s.nowMS()
	row := &AppCode{CodeHash: HashToken(code), App: app, SessionHash: sessionHash, Ticket: ticket,
		ExpiresAt: now + AppCodeTTL.Milliseconds()}
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewDelete().Model((*AppCode)(nil)).Where("expires_at <= ?", now).Exec(ctx); err != nil {
			return err
		}
		_, err := tx.NewInsert().Model(row).Exec(ctx)
		return err
	})
	if err != nil {
		return "", err
	}
	return code, nil
}

// RedeemAppCode uses up code for app and returns its ticket and session
// hash. A code is good once, for its own app, within AppCodeTTL, and only
// while its session lives; anything else is ErrNotFound.
func (s *Store) RedeemAppCode(ctx context.Context, app, code string) (AppCode, error) {
	var row AppCode
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		hash := HashToken(code)
		if err := tx.NewSelect().Model(&row).Where("code_hash = ?", hash).Limit(1).Scan(ctx); err != nil {
			return err
		}
		// Used up whatever happens next: a code shown to the wrong app is
		// spent too.
		res, err := tx.NewDelete().Model((*AppCode)(nil)).Where("code_hash = ?", hash).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNotFound // redeemed concurrently
		}
		return nil
	})
	if err != nil {
		return AppCode{}, err
	}
	if row.App != app || row.ExpiresAt <= s.nowMS() {
		return AppCode{}, ErrNotFound
	}
	alive, err := s.DB.NewSelect().Model((*SessionRow)(nil)).Where("id_hash = ?", row.SessionHash).Count(ctx)
	if err != nil {
		return AppCode{}, storageErr(err)
	}
	if alive == 0 {
		return AppCode{}, ErrNotFound
	}
	return row, nil
}

// ActionKeysRotate is written when the assertion signing keys rotate.
const ActionKeysRotate = "keys.rotate"

// Setting returns the value stored under key; ErrNotFound when unset.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var row Setting
	err := s.DB.NewSelect().Model(&row).Where("key = ?", key).Limit(1).Scan(ctx)
	return row.Value, storageErr(err)
}

// InitSetting stores value under key unless a value is there already, and
// returns the stored one: instances starting at once agree on one value.
func (s *Store) InitSetting(ctx context.Context, key, value string) (string, error) {
	row := &Setting{Key: key, Value: value}
	if _, err := s.DB.NewInsert().Model(row).On("CONFLICT (key) DO NOTHING").Exec(ctx); err != nil {
		return "", storageErr(err)
	}
	return s.Setting(ctx, key)
}

// SwapSetting replaces key's value old with next, audited as ev; it
// returns false (and changes nothing) when the value is no longer old.
func (s *Store) SwapSetting(ctx context.Context, a Actor, key, old, next string, ev Event) (bool, error) {
	swapped := false
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model((*Setting)(nil)).Set("value = ?", next).Where("key = ? AND value = ?", key, old).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		swapped = true
		return s.insertAudit(ctx, tx, a, ev)
	})
	return swapped, err
}
