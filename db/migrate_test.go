package db

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"gatehouse/db/postgrestest"
)

func migrationNames(t *testing.T, dialect string) []string {
	t.Helper()
	entries, err := fs.ReadDir(migrationFiles, "migrations/"+dialect)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// Every schema change exists for both dialects, under the same version and
// name, so that a database's schema_migrations means the same on both.
func TestMigrationsExistForBothDialects(t *testing.T) {
	sqlite, pg := migrationNames(t, SQLite), migrationNames(t, Postgres)
	if len(sqlite) == 0 {
		t.Fatal("no SQLite migrations embedded")
	}
	if !reflect.DeepEqual(sqlite, pg) {
		t.Errorf("migrations differ between dialects:\n sqlite:   %v\n postgres: %v\nadd the missing files to db/migrations/<dialect>/ with the same name", sqlite, pg)
	}
	for _, name := range sqlite {
		if !strings.HasSuffix(name, ".sql") || strings.IndexByte(name, '_') < 1 {
			t.Errorf("migration %s: want NNNN_description.sql", name)
		}
	}
}

func TestMigrateTwiceChangesNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		applied, err := s.Migrate(context.Background())
		if err != nil || len(applied) != 0 {
			t.Fatalf("second Migrate applied %v, %v", applied, err)
		}
		var version int
		if err := s.DB.NewRaw("SELECT MAX(version) FROM schema_migrations").Scan(context.Background(), &version); err != nil {
			t.Fatal(err)
		}
		if version != s.SchemaVersion() || version < 2 {
			t.Errorf("schema at version %d, binary knows %d", version, s.SchemaVersion())
		}
	})
}

func TestMigrateRefusesANewerSchema(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		if _, err := s.DB.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Migrate(context.Background()); !errors.Is(err, ErrNewerSchema) {
			t.Errorf("Migrate over a newer schema: %v, want ErrNewerSchema", err)
		}
	})
}

// A database missing a migration below its newest (migrated by a build
// with a different set) is refused in one sentence naming it, and nothing
// is applied.
func TestMigrateRefusesAGap(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.DB.ExecContext(ctx, "DELETE FROM schema_migrations WHERE version = 2"); err != nil {
			t.Fatal(err)
		}
		applied, err := s.Migrate(ctx)
		if !errors.Is(err, ErrMissingMigration) || !strings.Contains(err.Error(), "0002_") || len(applied) != 0 {
			t.Fatalf("Migrate over a gap: applied %v, err %v; want ErrMissingMigration naming 0002", applied, err)
		}
		var n int
		if err := s.DB.NewRaw("SELECT COUNT(*) FROM schema_migrations WHERE version = 2").Scan(ctx, &n); err != nil || n != 0 {
			t.Errorf("the missing migration was recorded after all (%d rows, %v)", n, err)
		}
	})
}

// Several instances starting at once on an empty database all migrate it:
// exactly one applies each migration and none fails.
func TestConcurrentMigrateOnAFreshDatabase(t *testing.T) {
	run := func(t *testing.T, cfg Config) {
		const instances = 4
		stores := make([]*Store, instances)
		for i := range stores {
			s, err := Open(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			stores[i] = s
		}
		var wg sync.WaitGroup
		applied := make([][]string, instances)
		errs := make([]error, instances)
		start := make(chan struct{})
		for i, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				applied[i], errs[i] = s.Migrate(context.Background())
			}()
		}
		close(start)
		wg.Wait()
		var all []string
		for i := range stores {
			if errs[i] != nil {
				t.Errorf("instance %d: %v", i, errs[i])
			}
			all = append(all, applied[i]...)
		}
		sort.Strings(all)
		if want := migrationNames(t, stores[0].Dialect); !reflect.DeepEqual(all, want) {
			t.Errorf("applied %v in total, want each of %v once", all, want)
		}
		// The schema works for every instance.
		for i, s := range stores {
			if _, err := s.CreateGroup(context.Background(), Actor{}, "g"+string(rune('a'+i)), ""); err != nil {
				t.Errorf("instance %d after migrating: %v", i, err)
			}
		}
	}
	t.Run(SQLite, func(t *testing.T) {
		run(t, Config{DSN: filepath.Join(t.TempDir(), "gatehouse.db")})
	})
	t.Run(Postgres, func(t *testing.T) {
		run(t, Config{DSN: postgrestest.Schema(t)})
	})
}

// The PostgreSQL migrations build the same schema as the SQLite ones: the
// same tables, columns, nullability and index names.
func TestDialectSchemasAgree(t *testing.T) {
	pg := newPostgresStore(t)
	lite := newSQLiteStore(t)
	ctx := context.Background()

	type column struct {
		Table, Name string
		NotNull     bool
	}
	var liteCols, pgCols []column
	var tables []string
	if err := lite.DB.NewRaw("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'users_search%' ORDER BY name").Scan(ctx, &tables); err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		var info []struct {
			Name    string `bun:"name"`
			NotNull bool   `bun:"not_null"`
			PK      int    `bun:"pk"`
		}
		if err := lite.DB.NewRaw("SELECT name, \"notnull\" AS not_null, pk FROM pragma_table_info(?) ORDER BY cid", table).Scan(ctx, &info); err != nil {
			t.Fatal(err)
		}
		for _, c := range info {
			// SQLite lets a non-INTEGER primary key hold NULL unless told
			// otherwise; PostgreSQL's primary keys are always NOT NULL.
			liteCols = append(liteCols, column{table, c.Name, c.NotNull || c.PK > 0})
		}
	}
	if err := pg.DB.NewRaw(`SELECT table_name AS "table", column_name AS name, is_nullable = 'NO' AS not_null
		FROM information_schema.columns WHERE table_schema = current_schema()
		AND table_name <> 'authz_listeners' -- PostgreSQL's alone (0011, db/authz_lease.go)
		ORDER BY table_name, ordinal_position`).Scan(ctx, &pgCols); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(liteCols, pgCols) {
		t.Errorf("columns differ:\n sqlite:   %v\n postgres: %v", liteCols, pgCols)
	}

	var liteIdx, pgIdx []string
	if err := lite.DB.NewRaw("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name").Scan(ctx, &liteIdx); err != nil {
		t.Fatal(err)
	}
	if err := pg.DB.NewRaw(`SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()
		AND indexname NOT LIKE '%\_pkey' AND indexname NOT LIKE '%\_key' ORDER BY indexname`).Scan(ctx, &pgIdx); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(liteIdx, pgIdx) {
		t.Errorf("indexes differ:\n sqlite:   %v\n postgres: %v", liteIdx, pgIdx)
	}
}
