package db

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func newStoreOf(t *testing.T, dialect string) *Store {
	t.Helper()
	if dialect == Postgres {
		return newPostgresStore(t)
	}
	return newSQLiteStore(t)
}

// fillForCopy writes a row of every kind, including the awkward ones: NULL
// and non-NULL optional columns, binary session data, a deleted group
// (a gap in the ids), an anonymous denial.
func fillForCopy(t *testing.T, s *Store) (sessionUser int64, sessionID string) {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	if _, err := s.Secret(ctx, "session_hash_key", 64); err != nil {
		t.Fatal(err)
	}
	st := s.Sessions(SessionLimits{})
	a := Actor{Email: "cli"}
	ann, _ := s.CreateUser(ctx, a, NewUser{Email: "ann@example.com", Name: "Ann Ünïcode 'quoted' \\ %", PasswordHash: "$argon2id$x", IsAdmin: true})
	bob, _ := s.CreateUser(ctx, a, NewUser{Email: "bob@example.com", PasswordHash: "h", MustChangePassword: true})
	cy, _ := s.CreateUser(ctx, a, NewUser{Email: "cy@example.com", PasswordHash: "h"})
	_ = s.RecordLogin(ctx, Actor{ID: ann.ID, Email: ann.Email}, ann.ID)
	_ = s.SetActive(ctx, a, cy.ID, false)
	sales, _ := s.CreateGroup(ctx, a, "Sales", "sells")
	ops, _ := s.CreateGroup(ctx, a, "Ops", "")
	gone, _ := s.CreateGroup(ctx, a, "Gone", "") // the highest id, deleted below
	_ = s.AddMember(ctx, a, sales.ID, ann.ID, 0)
	_ = s.AddMember(ctx, a, sales.ID, bob.ID, now.Add(48*time.Hour).UnixMilli())
	_ = s.AddMember(ctx, a, ops.ID, bob.ID, 0)
	_ = s.AddGrant(ctx, a, "sales", sales.ID)
	_ = s.AddGrant(ctx, a, "access", ops.ID)
	_ = s.AddManager(ctx, a, sales.ID, bob.ID)
	r1, _ := s.CreateAccessRequest(ctx, Actor{ID: bob.ID, Email: bob.Email}, bob.ID, "finance", "please")
	_, _ = s.CreateAccessRequest(ctx, Actor{ID: cy.ID, Email: cy.Email}, cy.ID, "sales", "")
	_ = s.DecideAccessRequest(ctx, a, r1.ID, true, gone.ID, "ok")
	_ = s.DeleteGroup(ctx, a, gone.ID) // the request keeps a NULL group
	_ = s.AuditDenial(ctx, Actor{}, "sales", "anonymous", "not logged in", time.Minute)
	if _, err := s.NewSetupToken(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}

	id := newSession(t, st, ann.ID)
	if err := st.Update(ctx, id, []byte("binary \x00\xff")); err != nil {
		t.Fatal(err)
	}
	newSession(t, st, bob.ID)

	// Sign-in with an identity provider: a link, a mapping, an "idp"
	// membership, the IdP side of a session.
	if err := s.MapIdPGroup(ctx, a, ops.ID, "ops-team"); err != nil {
		t.Fatal(err)
	}
	idp := IdPIdentity{Issuer: "https://idp.example.com", Subject: "sub-ann", Email: "ann@example.com", EmailVerified: true,
		Groups: []string{"ops-team"}, SyncGroups: true}
	if _, err := s.SignInWithIdP(ctx, Actor{Email: "idp"}, idp, SSOPolicy{}); err != nil {
		t.Fatal(err)
	}
	var hash string
	if err := s.DB.NewSelect().Model((*SessionRow)(nil)).Column("id_hash").Where("user_id = ?", ann.ID).Limit(1).Scan(ctx, &hash); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveOIDCSession(ctx, OIDCSession{SessionHash: hash, UserID: ann.ID, Issuer: idp.Issuer, Subject: idp.Subject,
		RefreshToken: "refresh", NextCheckAt: now.UnixMilli()}); err != nil {
		t.Fatal(err)
	}

	// Mail: a queued message and a reset link. Second factors: a passkey
	// (binary credential id), an authenticator app with recovery codes (one
	// used), a ceremony in progress.
	if err := s.RequestPasswordReset(ctx, Actor{IP: "192.0.2.1"}, bob.Email); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewMailToken(ctx, bob.ID, TokenReset, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddPasskey(ctx, Actor{ID: ann.ID, Email: ann.Email}, Passkey{UserID: ann.ID,
		CredentialID: []byte{0, 1, 0xfe, 0xff, 'k'}, Name: "Ann's key ü", Credential: `{"id":"AAH-_2s"}`}); err != nil {
		t.Fatal(err)
	}
	if err := s.StartTOTP(ctx, bob.ID, "JBSWY3DPEHPK3PXP"); err != nil {
		t.Fatal(err)
	}
	if err := s.ConfirmTOTP(ctx, Actor{ID: bob.ID, Email: bob.Email}, bob.ID, "JBSWY3DPEHPK3PXP", 59000000,
		[]string{"hash-one", "hash-two"}); err != nil {
		t.Fatal(err)
	}
	if err := s.UseRecoveryCode(ctx, Actor{ID: bob.ID, Email: bob.Email}, bob.ID, "hash-two"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutChallenge(ctx, WebAuthnChallenge{IDHash: "challenge", Purpose: "register", UserID: ann.ID,
		SessionHash: hash, Data: `{"challenge":"x"}`, ExpiresAt: now.Add(time.Minute).UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	return ann.ID, id
}

// dumpAll reads every copied table through its model, in key order.
func dumpAll(t *testing.T, s *Store) map[string]any {
	t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	read := func(table string, dest any) {
		t.Helper()
		tbl := s.DB.Table(reflect.TypeOf(dest).Elem().Elem())
		var order []string
		for _, f := range tbl.PKs {
			order = append(order, string(f.SQLName))
		}
		if err := s.DB.NewSelect().Model(dest).OrderExpr(strings.Join(order, ", ")).Scan(ctx); err != nil {
			t.Fatalf("reading %s: %v", table, err)
		}
		out[table] = reflect.ValueOf(dest).Elem().Interface()
	}
	read("users", &[]User{})
	read("user_identities", &[]UserIdentity{})
	read("groups", &[]Group{})
	read("idp_group_mappings", &[]IdPGroupMapping{})
	read("oidc_sessions", &[]OIDCSession{})
	read("memberships", &[]Membership{})
	read("grants", &[]Grant{})
	read("group_managers", &[]GroupManager{})
	read("sessions", &[]SessionRow{})
	read("settings", &[]Setting{})
	read("setup_tokens", &[]SetupToken{})
	read("audit_events", &[]AuditEvent{})
	read("access_requests", &[]AccessRequest{})
	read("mail_outbox", &[]OutboxMessage{})
	read("mail_tokens", &[]MailToken{})
	read("webauthn_credentials", &[]Passkey{})
	read("totp_secrets", &[]TOTPSecret{})
	read("recovery_codes", &[]RecoveryCode{})
	read("webauthn_challenges", &[]WebAuthnChallenge{})
	return out
}

func TestCopyBetweenStores(t *testing.T) {
	for _, pair := range [][2]string{{SQLite, SQLite}, {SQLite, Postgres}, {Postgres, SQLite}, {Postgres, Postgres}} {
		t.Run(pair[0]+" to "+pair[1], func(t *testing.T) {
			ctx := context.Background()
			src, dst := newStoreOf(t, pair[0]), newStoreOf(t, pair[1])
			annID, sessionID := fillForCopy(t, src)
			before := dumpAll(t, src)

			copied, err := src.CopyInto(ctx, dst)
			if err != nil {
				t.Fatalf("CopyInto: %v", err)
			}
			counts := map[string]int{}
			for _, c := range copied {
				counts[c.Table] = c.Rows
			}
			for table, rows := range before {
				if n := reflect.ValueOf(rows).Len(); counts[table] != n || n == 0 {
					t.Errorf("%s: copied %d rows, source has %d", table, counts[table], n)
				}
			}
			after := dumpAll(t, dst)
			for table := range before {
				if !reflect.DeepEqual(before[table], after[table]) {
					t.Errorf("%s differs after the copy:\n source: %+v\n target: %+v", table, before[table], after[table])
				}
			}
			if !reflect.DeepEqual(dumpAll(t, src), before) {
				t.Error("the copy changed the source")
			}

			// The target hands out ids after the source's, past the deleted group.
			g, err := dst.CreateGroup(ctx, Actor{}, "New", "")
			if err != nil || g.ID != 4 {
				t.Errorf("first group created on the target: id %d (%v), want 4", g.ID, err)
			}
			u, err := dst.CreateUser(ctx, Actor{}, NewUser{Email: "new@example.com", PasswordHash: "h"})
			if err != nil || u.ID != 4 {
				t.Errorf("first user created on the target: id %d (%v), want 4", u.ID, err)
			}
			k, err := dst.AddPasskey(ctx, Actor{}, Passkey{UserID: u.ID, CredentialID: []byte("new"), Name: "n", Credential: "{}"})
			if err != nil || k.ID != 2 {
				t.Errorf("first passkey added on the target: id %d (%v), want 2", k.ID, err)
			}

			// A browser's cookie keeps working: the signing key and the session came along.
			dst.Now = src.Now
			srcKey, _ := src.Secret(ctx, "session_hash_key", 64)
			if dstKey, err := dst.Secret(ctx, "session_hash_key", 64); err != nil || !bytes.Equal(dstKey, srcKey) {
				t.Errorf("the session signing key did not carry over: %v", err)
			}
			sess, err := dst.Sessions(SessionLimits{}).Lookup(ctx, sessionID)
			if err != nil || sess.UserID != annID || string(sess.Data) != "binary \x00\xff" {
				t.Errorf("the session did not carry over: %+v %v", sess, err)
			}

			// The target is no longer empty: a second copy is refused.
			if _, err := src.CopyInto(ctx, dst); !errors.Is(err, ErrTargetNotEmpty) || !strings.Contains(err.Error(), "users (4)") {
				t.Errorf("second copy: %v, want ErrTargetNotEmpty naming what is there", err)
			}
		})
	}
}

func TestCopyCoversEveryTable(t *testing.T) {
	s := newSQLiteStore(t)
	var tables []string
	// authz_version (migration 0004) and the users_search index (0005) are
	// derived state, not data: the target counts its own changes and its
	// triggers index the users it receives, so they are not copied.
	if err := s.DB.NewRaw(`SELECT name FROM sqlite_master WHERE type = 'table'
		AND name NOT IN ('schema_migrations', 'sqlite_sequence', 'authz_version')
		AND name NOT LIKE 'users\_search%' ESCAPE '\' ORDER BY name`).Scan(context.Background(), &tables); err != nil {
		t.Fatal(err)
	}
	copied := map[string]bool{}
	for _, c := range copyTables {
		copied[c.table] = true
	}
	for _, table := range tables {
		if !copied[table] {
			t.Errorf("table %s is not copied by gatehouse copy: add it to copyTables in db/copy.go", table)
		}
	}
	if len(tables) != len(copyTables) {
		t.Errorf("copyTables lists %d tables, the schema has %d: %v", len(copyTables), len(tables), tables)
	}
}

func TestCopyRefusals(t *testing.T) {
	forEachStore(t, func(t *testing.T, dst *Store) {
		ctx := context.Background()
		// An empty file is not a Gatehouse database.
		empty, err := Open(ctx, Config{DSN: t.TempDir() + "/empty.db"})
		if err != nil {
			t.Fatal(err)
		}
		defer empty.Close()
		if _, err := empty.CopyInto(ctx, dst); err == nil || !strings.Contains(err.Error(), "source database holds no Gatehouse data") {
			t.Errorf("copy from an empty file: %v", err)
		}

		src := newSQLiteStore(t)
		testUser(t, src, "ann@example.com")
		if _, err := src.DB.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)"); err != nil {
			t.Fatal(err)
		}
		if _, err := src.CopyInto(ctx, dst); !errors.Is(err, ErrNewerSchema) {
			t.Errorf("copy from a newer schema: %v", err)
		}
		if _, err := src.DB.Exec("DELETE FROM schema_migrations WHERE version >= ?", src.SchemaVersion()); err != nil {
			t.Fatal(err)
		}
		if _, err := src.CopyInto(ctx, dst); err == nil || !strings.Contains(err.Error(), "run 'gatehouse migrate' on it first") {
			t.Errorf("copy from an older schema: %v", err)
		}
		if _, err := src.DB.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'restored', 0)", src.SchemaVersion()); err != nil {
			t.Fatal(err)
		}

		// A row the target cannot take fails the copy, and the target stays empty.
		testUser(t, src, "bob@example.com")
		if _, err := src.DB.Exec("UPDATE users SET created_at = 'not a number' WHERE email = 'bob@example.com'"); err != nil {
			t.Fatal(err)
		}
		if _, err := src.CopyInto(ctx, dst); err == nil || !strings.Contains(err.Error(), "copying users") {
			t.Errorf("copy of a bad row: %v", err)
		}
		var n int
		if err := dst.DB.NewRaw("SELECT COUNT(*) FROM users").Scan(ctx, &n); err != nil || n != 0 {
			t.Errorf("a failed copy left %d users in the target (%v)", n, err)
		}
	})
}
