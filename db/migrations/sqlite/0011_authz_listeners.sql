-- On SQLite every server sees each commit in the wal-index header it
-- already watches (walwatch.go), so no server trusts a version it was told
-- about and there is nothing to wait for. This migration keeps the two
-- dialects' numbering in step with migrations/postgres/0011_authz_listeners.sql.
SELECT 1;
