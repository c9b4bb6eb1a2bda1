package db

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/uptrace/bun"
)

// ErrTargetNotEmpty means a copy's target database already holds data.
var ErrTargetNotEmpty = errors.New("the target database is not empty")

// CopiedTable is how many rows of one table a copy wrote.
type CopiedTable struct {
	Table string
	Rows  int
}

// copyBatch is how many rows one INSERT of a copy writes.
const copyBatch = 500

// copyTables lists every table holding data, parents before children, with
// the function that copies it. A migration that adds a table must add it
// here (TestCopyCoversEveryTable fails until it does).
var copyTables = []struct {
	table string
	copy  func(ctx context.Context, src *Store, conn bun.Conn, dst bun.Tx) (int, error)
	// identity is true for tables whose id comes from a sequence.
	identity bool
}{
	{"users", copyRows[User], true},
	{"user_identities", copyRows[UserIdentity], false},
	{"groups", copyRows[Group], true},
	{"idp_group_mappings", copyRows[IdPGroupMapping], false},
	{"memberships", copyRows[Membership], false},
	{"grants", copyRows[Grant], false},
	{"group_managers", copyRows[GroupManager], false},
	{"sessions", copyRows[SessionRow], false},
	{"oidc_sessions", copyRows[OIDCSession], false},
	{"settings", copyRows[Setting], false},
	{"setup_tokens", copyRows[SetupToken], false},
	{"audit_events", copyRows[AuditEvent], true},
	{"access_requests", copyRows[AccessRequest], true},
	{"mail_outbox", copyRows[OutboxMessage], true},
	{"mail_tokens", copyRows[MailToken], false},
	{"webauthn_credentials", copyRows[Passkey], true},
	{"totp_secrets", copyRows[TOTPSecret], false},
	{"recovery_codes", copyRows[RecoveryCode], false},
	{"webauthn_challenges", copyRows[WebAuthnChallenge], false},
	{"apps", copyRows[App], false},
	{"app_codes", copyRows[AppCode], false},
	{"scim_tokens", copyRows[SCIMToken], false},
	{"scim_users", copyRows[SCIMUserRow], false},
	{"scim_groups", copyRows[SCIMGroupRow], true},
	{"scim_members", copyRows[SCIMMemberRow], false},
}

// CopyInto copies every row of s (users and their IdP links, groups and
// their IdP mappings, memberships, grants, sessions, settings with the signing keys, setup tokens, the audit log and
// access requests) into dst, keeping ids, so that logins, sessions and
// links carry over. dst must be migrated and empty; the whole copy is one
// transaction on dst, so a failure leaves it empty. s is read in one
// snapshot and never written. Both must be at this binary's schema version.
func (s *Store) CopyInto(ctx context.Context, dst *Store) ([]CopiedTable, error) {
	want := s.SchemaVersion()
	for _, side := range []struct {
		name string
		st   *Store
	}{{"source", s}, {"target", dst}} {
		v, err := side.st.appliedVersion(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading the %s database's schema version: %w", side.name, err)
		}
		switch {
		case v == 0:
			return nil, fmt.Errorf("the %s database holds no Gatehouse data (no schema_migrations table)", side.name)
		case v > want:
			return nil, fmt.Errorf("%w: the %s database is at version %d but this gatehouse knows only up to %d", ErrNewerSchema, side.name, v, want)
		case v < want:
			return nil, fmt.Errorf("the %s database is at schema version %d, this gatehouse at %d; run 'gatehouse migrate' on it first", side.name, v, want)
		}
	}

	// A read-only snapshot of the source on one connection: in WAL mode a
	// deferred SQLite transaction does not block the writers of a live
	// server; PostgreSQL's REPEATABLE READ gives one snapshot for all tables.
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return nil, storageErr(err)
	}
	defer conn.Close()
	begin := "BEGIN DEFERRED"
	if s.Dialect == Postgres {
		begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
	}
	if _, err := conn.ExecContext(ctx, begin); err != nil {
		return nil, storageErr(err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")

	if p, _ := ctx.Value(progressKey{}).(Progress); p != nil {
		var total int64
		for _, t := range copyTables {
			var n int64
			if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.table).Scan(&n); err != nil {
				return nil, storageErr(err)
			}
			total += n
		}
		ctx = context.WithValue(ctx, trackerKey{}, trackProgress(ctx, total, "rows"))
	}

	var copied []CopiedTable
	err = dst.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if dst.Dialect == Postgres {
			// Servers on the target wait until the copy is done.
			names := make([]string, len(copyTables))
			for i, t := range copyTables {
				names[i] = t.table
			}
			if _, err := tx.ExecContext(ctx, "LOCK TABLE "+strings.Join(names, ", ")+" IN EXCLUSIVE MODE"); err != nil {
				return err
			}
		}
		if err := ensureEmpty(ctx, tx); err != nil {
			return err
		}
		for _, t := range copyTables {
			n, err := t.copy(ctx, s, conn, tx)
			if err != nil {
				return fmt.Errorf("copying %s: %w", t.table, err)
			}
			if t.identity {
				if err := carrySequence(ctx, s, conn, dst, tx, t.table); err != nil {
					return fmt.Errorf("setting the next id of %s: %w", t.table, err)
				}
			}
			copied = append(copied, CopiedTable{Table: t.table, Rows: n})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return copied, nil
}

// appliedVersion is the newest migration applied to the database (0 when
// it has none).
func (s *Store) appliedVersion(ctx context.Context) (int, error) {
	var exists int
	q := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
	if s.Dialect == Postgres {
		q = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_migrations'"
	}
	if err := s.DB.NewRaw(q).Scan(ctx, &exists); err != nil {
		return 0, storageErr(err)
	}
	if exists == 0 {
		return 0, nil
	}
	var v int
	err := s.DB.NewRaw("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(ctx, &v)
	return v, storageErr(err)
}

// ensureEmpty fails with ErrTargetNotEmpty, saying what is there, unless
// every data table is empty.
func ensureEmpty(ctx context.Context, tx bun.Tx) error {
	var found []string
	for _, t := range copyTables {
		var n int
		if err := tx.NewRaw("SELECT COUNT(*) FROM ?", bun.Ident(t.table)).Scan(ctx, &n); err != nil {
			return err
		}
		if n > 0 {
			found = append(found, fmt.Sprintf("%s (%d)", t.table, n))
		}
	}
	if len(found) > 0 {
		return fmt.Errorf("%w: it already has rows in %s", ErrTargetNotEmpty, strings.Join(found, ", "))
	}
	return nil
}

// copyRows streams one table from the source snapshot into the target in
// batches, through the model T: the source dialect's values (SQLite's 0/1
// booleans, PostgreSQL's bytea) become Go values and then the target's. A
// source column T lacks fails the copy rather than being dropped.
func copyRows[T any](ctx context.Context, src *Store, conn bun.Conn, dst bun.Tx) (int, error) {
	table := src.DB.Table(reflect.TypeFor[T]())
	order := make([]string, len(table.PKs))
	for i, f := range table.PKs {
		order[i] = string(f.SQLName)
	}
	rows, err := conn.QueryContext(ctx, "SELECT * FROM "+string(table.SQLName)+" ORDER BY "+strings.Join(order, ", "))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	batch := make([]T, 0, copyBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := dst.NewInsert().Model(&batch).Exec(ctx); err != nil {
			return err
		}
		trackerFrom(ctx).add(int64(len(batch)))
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for rows.Next() {
		var row T
		if err := src.DB.ScanRow(ctx, rows, &row); err != nil {
			return n, err
		}
		batch = append(batch, row)
		if len(batch) == copyBatch {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	return n, flush()
}

// carrySequence makes the target hand out ids after the source's: past the
// largest copied id, and past ids the source handed out and deleted since
// (so an id never names two different rows).
func carrySequence(ctx context.Context, src *Store, conn bun.Conn, dst *Store, tx bun.Tx, table string) error {
	var high int64
	q := "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ?), 0)"
	if src.Dialect == Postgres {
		q = "SELECT COALESCE(pg_sequence_last_value(pg_get_serial_sequence(?, 'id')::regclass), 0)"
	}
	if err := conn.NewRaw(q, table).Scan(ctx, &high); err != nil {
		return err
	}
	var maxID int64
	if err := tx.NewRaw("SELECT COALESCE(MAX(id), 0) FROM ?", bun.Ident(table)).Scan(ctx, &maxID); err != nil {
		return err
	}
	high = max(high, maxID)
	if dst.Dialect == Postgres {
		// setval(seq, 1, false): the next id is 1.
		_, err := tx.ExecContext(ctx, "SELECT setval(pg_get_serial_sequence(?, 'id'), ?, ?)", table, max(high, 1), high > 0)
		return err
	}
	if high == 0 {
		return nil
	}
	res, err := tx.ExecContext(ctx, "UPDATE sqlite_sequence SET seq = ? WHERE name = ?", high, table)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		_, err = tx.ExecContext(ctx, "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", table, high)
	}
	return err
}
