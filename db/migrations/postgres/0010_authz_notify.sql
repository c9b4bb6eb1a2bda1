-- Live access: the authz_version bump (0004) also sends a NOTIFY, so every
-- server listening (one connection each, db/access_feed.go) hears at once
-- that who may see what has changed, whichever process or instance made the
-- change. NOTIFY is transactional: it is delivered at commit, after the
-- change is visible, and never for a transaction that rolls back.
--
-- The channel is named after the schema of the table that changed, so
-- installations (and tests) sharing one server in different schemas do not
-- wake each other: 'gatehouse_authz_' || the schema name cut to 47 bytes,
-- which keeps it within PostgreSQL's 63-byte identifier limit. The payload
-- is the new version.
CREATE OR REPLACE FUNCTION bump_authz_version() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v BIGINT;
BEGIN
    IF current_setting('gatehouse.authz_bumped', true) IS DISTINCT FROM '1' THEN
        UPDATE authz_version SET version = version + 1 WHERE id = 1 RETURNING version INTO v;
        PERFORM set_config('gatehouse.authz_bumped', '1', true); -- until this transaction ends
        PERFORM pg_notify('gatehouse_authz_' || left(TG_TABLE_SCHEMA, 47), v::text);
    END IF;
    RETURN NULL;
END
$$;
