-- authz_version: the same counter as migrations/sqlite/0004_authz_version.sql,
-- bumped by triggers on every change that can alter a session, a viewer or
-- an access decision, whichever process or instance makes it. Servers read
-- it once per request and trust their in-memory caches only while it is
-- unchanged. Statement-level triggers bump it once per statement, in the
-- writing transaction, so the change and the bump become visible together.
-- It is derived state, not data: a tool copying one database into another
-- skips it (the target counts its own changes).
CREATE TABLE authz_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT  NOT NULL
);
INSERT INTO authz_version (id, version) VALUES (1, 0);

CREATE FUNCTION bump_authz_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE authz_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_authz AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION bump_authz_version();
CREATE TRIGGER groups_authz AFTER INSERT OR UPDATE OR DELETE ON groups
    FOR EACH STATEMENT EXECUTE FUNCTION bump_authz_version();
CREATE TRIGGER memberships_authz AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH STATEMENT EXECUTE FUNCTION bump_authz_version();
CREATE TRIGGER grants_authz AFTER INSERT OR UPDATE OR DELETE ON grants
    FOR EACH STATEMENT EXECUTE FUNCTION bump_authz_version();
CREATE TRIGGER access_requests_authz AFTER INSERT OR UPDATE OR DELETE ON access_requests
    FOR EACH STATEMENT EXECUTE FUNCTION bump_authz_version();
-- Not a new session (its id was never cached) nor a last_seen_at touch.
CREATE TRIGGER sessions_authz AFTER DELETE OR UPDATE OF user_id, expires_at, data ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION bump_authz_version();
