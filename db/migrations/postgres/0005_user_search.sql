-- The SQLite twin of this migration adds a trigram index for the admin
-- panel's "contains" searches. PostgreSQL scans 100,000 users with LIKE in a
-- few milliseconds, and pg_trgm is an extension not every server allows, so
-- nothing changes here; the migration exists to keep both dialects at the
-- same schema version.
SELECT 1;
