-- Live access needs no schema change on SQLite: servers notice a commit by
-- any process from the wal-index header and read authz_version (0004).
-- This migration keeps the two dialects' numbering in step with
-- migrations/postgres/0010_authz_notify.sql, which adds a NOTIFY there.
SELECT 1;
