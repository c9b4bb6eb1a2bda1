-- Group managers: the same table as migrations/sqlite/0006_group_managers.sql.
-- A manager may open the group's page, add and remove its members, set their
-- expiries and decide access requests for the dashboards granted to the group.
CREATE TABLE group_managers (
    group_id   BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_managers_user ON group_managers (user_id, group_id);

-- Who manages what is an authorization fact: a manager removed loses the
-- group on their very next request (see 0004_authz_version.sql).
CREATE CONSTRAINT TRIGGER group_managers_authz AFTER INSERT OR UPDATE OR DELETE ON group_managers
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_authz_version();
