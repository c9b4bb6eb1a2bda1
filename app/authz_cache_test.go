package app

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/db"
)

// The hot path answers sessions, users and access facts from memory while
// the database's authorization version is unchanged (db/authz_cache.go).
// These tests make each change from a second *db.Store opened on the same
// file, as the CLI or another instance would, after the first app has
// served (and remembered) the viewer, and check the very next request.

// otherProcess opens a second store on the test app's database (its
// SQLite file, or its PostgreSQL schema).
func otherProcess(t *testing.T, ta *testApp) *db.Store {
	t.Helper()
	s, err := db.Open(context.Background(), db.Config{DSN: ta.cfg.DSN, DataDir: filepath.Join(ta.Dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// warm requests path as c twice, wanting status both times, so that what
// the request needs is remembered before the change.
func warm(t *testing.T, ta *testApp, c *http.Client, path string, status int) {
	t.Helper()
	for range 2 {
		if res, body := ta.get(t, c, path, true); res.StatusCode != status {
			t.Fatalf("before the change: GET %s = %d, want %d: %s", path, res.StatusCode, status, body)
		}
	}
}

func TestChangesByAnotherProcessApplyOnTheNextRequest(t *testing.T) {
	ctx := context.Background()
	cli := db.Actor{Email: "cli"}
	const open, leads = "/dashboards/test/panels/open", "/dashboards/test/panels/leads"
	tests := []struct {
		name   string
		who    func(f *accessFixture) *http.Client
		path   string
		before int
		change func(t *testing.T, f *accessFixture, other *db.Store) error
		after  int
		want   string // in the body after the change
	}{
		{"membership removed", (*accessFixture).memberClient, open, 200,
			func(t *testing.T, f *accessFixture, o *db.Store) error {
				return o.RemoveMember(ctx, cli, f.team.ID, f.member.ID)
			}, 403, "You cannot view this dashboard"},
		{"panel group membership removed", (*accessFixture).leadClient, leads, 200,
			func(t *testing.T, f *accessFixture, o *db.Store) error {
				return o.RemoveMember(ctx, cli, f.leads.ID, f.lead.ID)
			}, 403, "only for members of"},
		{"grant removed", (*accessFixture).memberClient, open, 200,
			func(t *testing.T, f *accessFixture, o *db.Store) error {
				return o.RemoveGrant(ctx, cli, "test", f.team.ID)
			}, 403, "You cannot view this dashboard"},
		{"granted group deleted", (*accessFixture).memberClient, open, 200,
			func(t *testing.T, f *accessFixture, o *db.Store) error { return o.DeleteGroup(ctx, cli, f.team.ID) },
			403, "You cannot view this dashboard"},
		{"user deactivated", (*accessFixture).memberClient, open, 200,
			func(t *testing.T, f *accessFixture, o *db.Store) error {
				return o.SetActive(ctx, cli, f.member.ID, false)
			}, 401, "Log in"},
		{"sessions revoked", (*accessFixture).memberClient, open, 200,
			func(t *testing.T, f *accessFixture, o *db.Store) error {
				return o.RevokeUserSessions(ctx, f.member.ID, "")
			}, 401, "Log in"},
		{"admin demoted", (*accessFixture).adminClient, open, 200,
			func(t *testing.T, f *accessFixture, o *db.Store) error {
				// Another admin first: the last one cannot be demoted.
				if _, err := o.CreateUser(ctx, cli, db.NewUser{Email: "admin2@example.com", PasswordHash: "x", IsAdmin: true}); err != nil {
					return err
				}
				return o.SetAdmin(ctx, cli, f.admin.ID, false)
			}, 403, "You cannot view this dashboard"},
		{"deactivated by raw SQL", (*accessFixture).memberClient, open, 200,
			func(t *testing.T, f *accessFixture, o *db.Store) error {
				_, err := o.DB.ExecContext(ctx, "UPDATE users SET is_active = FALSE WHERE id = ?", f.member.ID)
				return err
			}, 401, "Log in"},
		{"membership added", (*accessFixture).outsiderClient, open, 403,
			func(t *testing.T, f *accessFixture, o *db.Store) error {
				return o.AddMember(ctx, cli, f.team.ID, f.outsider.ID, 0)
			}, 200, "secret open data"},
		{"grant added", (*accessFixture).outsiderClient, "/dashboards/access/panels/groups", 403,
			func(t *testing.T, f *accessFixture, o *db.Store) error {
				g, err := o.CreateGroup(ctx, cli, "watchers", "")
				if err != nil {
					return err
				}
				if err := o.AddMember(ctx, cli, g.ID, f.outsider.ID, 0); err != nil {
					return err
				}
				return o.AddGrant(ctx, cli, "access", g.ID)
			}, 200, "Members per group"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newAccessFixture(t)
			c := tc.who(f)
			warm(t, f.ta, c, tc.path, tc.before)
			if err := tc.change(t, f, otherProcess(t, f.ta)); err != nil {
				t.Fatal(err)
			}
			res, body := f.ta.get(t, c, tc.path, true)
			if res.StatusCode != tc.after || !strings.Contains(body, tc.want) {
				t.Fatalf("the very next request: %d, want %d with %q; body: %.300s", res.StatusCode, tc.after, tc.want, body)
			}
		})
	}
}

// TestExpiryNeedsNoChange: a membership that expires is judged on the
// clock of each request, although nothing in the database changed.
func TestExpiryNeedsNoChange(t *testing.T) {
	f := newAccessFixture(t)
	exp := f.ta.Clock.Now().Add(time.Minute).UnixMilli()
	if err := otherProcess(t, f.ta).SetMemberExpiry(context.Background(), db.Actor{Email: "cli"}, f.team.ID, f.member.ID, exp); err != nil {
		t.Fatal(err)
	}
	warm(t, f.ta, f.memberC, "/dashboards/test/panels/open", 200)
	f.ta.Clock.Advance(time.Minute)
	if res, body := f.ta.get(t, f.memberC, "/dashboards/test/panels/open", true); res.StatusCode != 403 || !strings.Contains(body, "has expired") {
		t.Fatalf("after expiry: %d %.300s", res.StatusCode, body)
	}
}

// TestLogoutEndsTheRememberedSession: the cookie of a logged-out session
// is anonymous on the next request, though the app remembered it.
func TestLogoutEndsTheRememberedSession(t *testing.T) {
	f := newAccessFixture(t)
	cookie := f.ta.sessionCookie(f.memberC)
	warm(t, f.ta, f.memberC, "/dashboards/test/panels/open", 200)
	if res, _ := f.ta.post(t, f.memberC, "/logout", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, f.ta.Server.URL+"/dashboards/test/panels/open", nil)
	req.Header.Set("HX-Request", "true")
	req.AddCookie(&http.Cookie{Name: f.ta.sessions.CookieName(), Value: cookie})
	if res, _ := f.ta.do(t, http.DefaultClient, req); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the old cookie after logout: %d, want 401", res.StatusCode)
	}
}

func (f *accessFixture) memberClient() *http.Client   { return f.memberC }
func (f *accessFixture) leadClient() *http.Client     { return f.leadC }
func (f *accessFixture) outsiderClient() *http.Client { return f.outsiderC }
func (f *accessFixture) adminClient() *http.Client    { return f.adminC }
