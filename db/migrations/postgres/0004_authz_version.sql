-- authz_version: the same counter as migrations/sqlite/0004_authz_version.sql,
-- bumped on every change that can alter a session, a viewer or an access
-- decision, whichever process or instance makes it. Servers read it once
-- per request and trust their in-memory caches only while it is unchanged.
--
-- The bump is a deferred constraint trigger: it runs once per transaction,
-- at commit, so the counter moves in the same commit as the change, and the
-- lock on its row is taken last, when the transaction holds every other
-- lock it will need (bumping at each statement could deadlock two
-- transactions that lock rows in different orders).
--
-- It is derived state, not data: a tool copying one database into another
-- skips it (the target counts its own changes).
CREATE TABLE authz_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT  NOT NULL
);
INSERT INTO authz_version (id, version) VALUES (1, 0);

CREATE FUNCTION bump_authz_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('gatehouse.authz_bumped', true) IS DISTINCT FROM '1' THEN
        UPDATE authz_version SET version = version + 1 WHERE id = 1;
        PERFORM set_config('gatehouse.authz_bumped', '1', true); -- until this transaction ends
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER users_authz AFTER INSERT OR UPDATE OR DELETE ON users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_authz_version();
CREATE CONSTRAINT TRIGGER groups_authz AFTER INSERT OR UPDATE OR DELETE ON groups
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_authz_version();
CREATE CONSTRAINT TRIGGER memberships_authz AFTER INSERT OR UPDATE OR DELETE ON memberships
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_authz_version();
CREATE CONSTRAINT TRIGGER grants_authz AFTER INSERT OR UPDATE OR DELETE ON grants
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_authz_version();
CREATE CONSTRAINT TRIGGER access_requests_authz AFTER INSERT OR UPDATE OR DELETE ON access_requests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_authz_version();
-- Not a new session (its id was never cached) nor a last_seen_at touch.
CREATE CONSTRAINT TRIGGER sessions_authz AFTER DELETE OR UPDATE OF user_id, expires_at, data ON sessions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_authz_version();
