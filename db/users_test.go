package db

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

func emails(users []User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.Email
	}
	return out
}

func TestCreateAndFindUsers(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u, err := s.CreateUser(ctx, Actor{Email: "cli"}, NewUser{Email: "ann@example.com", Name: "Ann", PasswordHash: "h", IsAdmin: true, MustChangePassword: true})
		if err != nil || u.ID == 0 {
			t.Fatalf("CreateUser: %+v %v", u, err)
		}
		if _, err := s.CreateUser(ctx, Actor{}, NewUser{Email: "ann@example.com", PasswordHash: "h"}); !errors.Is(err, ErrDuplicate) {
			t.Errorf("duplicate email: %v, want ErrDuplicate", err)
		}
		got, err := s.UserByEmail(ctx, "  ANN@example.com ")
		if err != nil || got.ID != u.ID || got.Name != "Ann" || !got.IsAdmin || !got.IsActive || !got.MustChangePassword || got.LastLoginAt != 0 {
			t.Errorf("UserByEmail: %+v %v", got, err)
		}
		if got, err := s.UserByID(ctx, u.ID); err != nil || got.Email != "ann@example.com" {
			t.Errorf("UserByID: %+v %v", got, err)
		}
		if _, err := s.UserByID(ctx, u.ID+100); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown id: %v", err)
		}
		if _, err := s.UserByEmail(ctx, "nobody@example.com"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown email: %v", err)
		}
		// The creation is audited in the same transaction.
		events, n, err := s.ListAudit(ctx, AuditFilter{Action: ActionUserCreate})
		if err != nil || n != 1 || events[0].Target != "ann@example.com" || events[0].ActorEmail != "cli" {
			t.Errorf("audit: %d %+v %v", n, events, err)
		}
		if err := s.RecordLogin(ctx, Actor{ID: u.ID, Email: u.Email}, u.ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.UserByID(ctx, u.ID); got.LastLoginAt == 0 {
			t.Error("RecordLogin did not stamp last_login_at")
		}
	})
}

func TestListUsersFiltersAndPages(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		mk := func(email, name string, admin bool) User {
			u, err := s.CreateUser(ctx, Actor{}, NewUser{Email: email, Name: name, PasswordHash: "h", IsAdmin: admin})
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		// Byte-wise order, as SQLite's: '.' (0x2e) sorts before 'b', '_' (0x5f) before 'a'.
		ann := mk("ann@example.com", "Ann Lee", true)
		mk("a.b@example.com", "Dot", false)
		mk("a_b@example.com", "Under_score", false)
		bob := mk("bob@example.com", "Bob 100% Real", false)
		mk("carl@example.org", "Carl", false)
		if err := s.SetActive(ctx, Actor{}, bob.ID, false); err != nil {
			t.Fatal(err)
		}
		g, _ := s.CreateGroup(ctx, Actor{}, "Ops", "")
		if err := s.AddMember(ctx, Actor{}, g.ID, ann.ID, 0); err != nil {
			t.Fatal(err)
		}

		for _, tc := range []struct {
			name string
			f    UserFilter
			want []string
		}{
			{"all, byte order", UserFilter{}, []string{"a.b@example.com", "a_b@example.com", "ann@example.com", "bob@example.com", "carl@example.org"}},
			{"email substring", UserFilter{Search: "EXAMPLE.ORG"}, []string{"carl@example.org"}},
			{"name substring, any case", UserFilter{Search: "lee"}, []string{"ann@example.com"}},
			{"% is literal", UserFilter{Search: "100%"}, []string{"bob@example.com"}},
			{"_ is literal", UserFilter{Search: "a_b"}, []string{"a_b@example.com"}},
			{"backslash is literal", UserFilter{Search: `a\`}, nil},
			{"group", UserFilter{GroupID: g.ID}, []string{"ann@example.com"}},
			{"admins", UserFilter{Admin: true}, []string{"ann@example.com"}},
			{"inactive", UserFilter{Inactive: true}, []string{"bob@example.com"}},
		} {
			users, total, err := s.ListUsers(ctx, tc.f)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if got := emails(users); !slices.Equal(got, tc.want) || total != len(tc.want) {
				t.Errorf("%s: %v (total %d), want %v", tc.name, got, total, tc.want)
			}
		}
		page, total, err := s.ListUsers(ctx, UserFilter{Limit: 2, Offset: 2})
		if err != nil || total != 5 || !slices.Equal(emails(page), []string{"ann@example.com", "bob@example.com"}) {
			t.Errorf("page 2: %v total %d %v", emails(page), total, err)
		}
	})
}

func TestPasswordChangesRevokeSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		st := s.Sessions(SessionLimits{})
		u := testUser(t, s, "ann@example.com")
		c := newSession(t, st, u.ID)
		if err := s.SetPassword(ctx, Actor{}, u.ID, "new", true); err != nil {
			t.Fatal(err)
		}
		got, _ := s.UserByID(ctx, u.ID)
		if got.PasswordHash != "new" || !got.MustChangePassword {
			t.Errorf("after SetPassword: %+v", got)
		}
		if userOf(t, st, c) != 0 {
			t.Error("session survived a password change")
		}
		if err := s.SetPassword(ctx, Actor{}, u.ID+99, "x", false); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown user: %v", err)
		}
		// A rehash only replaces the hash it read.
		if err := s.UpdatePasswordHash(ctx, u.ID, "stale", "rehash"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.UserByID(ctx, u.ID); got.PasswordHash != "new" {
			t.Error("UpdatePasswordHash overwrote a hash it did not read")
		}
		if err := s.UpdatePasswordHash(ctx, u.ID, "new", "rehash"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.UserByID(ctx, u.ID); got.PasswordHash != "rehash" {
			t.Error("UpdatePasswordHash did not replace the hash")
		}
	})
}

func TestActivationAdminAndName(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		st := s.Sessions(SessionLimits{})
		ann, _ := s.CreateUser(ctx, Actor{}, NewUser{Email: "ann@example.com", PasswordHash: "h", IsAdmin: true})
		bob := testUser(t, s, "bob@example.com")
		if n, err := s.CountActiveAdmins(ctx); n != 1 || err != nil {
			t.Fatalf("CountActiveAdmins = %d %v", n, err)
		}
		if err := s.SetAdmin(ctx, Actor{}, ann.ID, false); !errors.Is(err, ErrLastAdmin) {
			t.Errorf("demoting the last admin: %v", err)
		}
		if err := s.SetActive(ctx, Actor{}, ann.ID, false); !errors.Is(err, ErrLastAdmin) {
			t.Errorf("deactivating the last admin: %v", err)
		}
		if err := s.SetAdmin(ctx, Actor{}, bob.ID, true); err != nil {
			t.Fatal(err)
		}
		c := newSession(t, st, ann.ID)
		if err := s.SetActive(ctx, Actor{}, ann.ID, false); err != nil {
			t.Fatalf("deactivating one of two admins: %v", err)
		}
		if userOf(t, st, c) != 0 {
			t.Error("deactivation kept the session")
		}
		if n, _ := s.CountActiveAdmins(ctx); n != 1 {
			t.Errorf("active admins = %d, want 1", n)
		}
		if err := s.SetActive(ctx, Actor{}, ann.ID, true); err != nil {
			t.Fatal(err)
		}
		if err := s.SetAdmin(ctx, Actor{}, ann.ID, false); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateUserName(ctx, Actor{}, ann.ID, "Ann Lee"); err != nil {
			t.Fatal(err)
		}
		got, _ := s.UserByID(ctx, ann.ID)
		if got.IsAdmin || !got.IsActive || got.Name != "Ann Lee" {
			t.Errorf("after changes: %+v", got)
		}
		_, n, _ := s.ListAudit(ctx, AuditFilter{Action: "user."})
		if n != 7 { // 2 creates, promote, deactivate, activate, demote, rename
			t.Errorf("%d user.* audit events, want 7", n)
		}
	})
}

// Two admins demoting each other at the same moment, from two instances:
// exactly one succeeds, the other is told it is the last admin, and neither
// fails otherwise (no deadlock, no lost check).
func TestConcurrentDemotionsKeepAnAdmin(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		other := openAgain(t, s)
		for round := range 5 {
			a, _ := s.CreateUser(ctx, Actor{}, NewUser{Email: fmt.Sprintf("a%d@example.com", round), PasswordHash: "h", IsAdmin: true})
			b, _ := s.CreateUser(ctx, Actor{}, NewUser{Email: fmt.Sprintf("b%d@example.com", round), PasswordHash: "h", IsAdmin: true})
			// Leave only a and b as active admins.
			admins, _, _ := s.ListUsers(ctx, UserFilter{Admin: true})
			for _, u := range admins {
				if u.ID != a.ID && u.ID != b.ID {
					if err := s.SetAdmin(ctx, Actor{}, u.ID, false); err != nil {
						t.Fatal(err)
					}
				}
			}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			start := make(chan struct{})
			for i, job := range []struct {
				st *Store
				id int64
			}{{s, a.ID}, {other, b.ID}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if i == 0 {
						errs[i] = job.st.SetAdmin(ctx, Actor{}, job.id, false)
					} else {
						errs[i] = job.st.SetActive(ctx, Actor{}, job.id, false)
					}
				}()
			}
			close(start)
			wg.Wait()
			ok, last := 0, 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, ErrLastAdmin):
					last++
				default:
					t.Errorf("round %d: unexpected error %v", round, err)
				}
			}
			if ok != 1 || last != 1 {
				t.Errorf("round %d: %d succeeded, %d refused; want one of each (%v)", round, ok, last, errs)
			}
			if n, _ := s.CountActiveAdmins(ctx); n != 1 {
				t.Fatalf("round %d: %d active admins left, want 1", round, n)
			}
		}
	})
}

func TestEmailsSortLikeGo(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		in := []string{"zed@example.com", "a-b@example.com", "ab@example.com", "a.b@example.com", "a1@example.com", "a@example.com", "ä@example.com"}
		for _, e := range in {
			testUser(t, s, e)
		}
		users, _, err := s.ListUsers(ctx, UserFilter{})
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(in)
		sort.Strings(want)
		if got := emails(users); !slices.Equal(got, want) {
			t.Errorf("order %v, want byte order %v", got, want)
		}
	})
}

func TestStoreClockIsUsed(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		when := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
		s.Now = func() time.Time { return when }
		u := testUser(t, s, "ann@example.com")
		if got, _ := s.UserByID(context.Background(), u.ID); got.CreatedAt != when.UnixMilli() {
			t.Errorf("created_at %d, want %d", got.CreatedAt, when.UnixMilli())
		}
	})
}
