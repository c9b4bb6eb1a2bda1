-- Group managers: users who run a group without being admins. A manager may
-- open the group's page, add and remove its members, set their expiries and
-- decide access requests for the dashboards granted to the group.
CREATE TABLE group_managers (
    group_id   BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_managers_user ON group_managers (user_id, group_id);

-- Who manages what is an authorization fact: a manager removed loses the
-- group on their very next request (see 0004_authz_version.sql).
CREATE TRIGGER group_managers_authz_insert AFTER INSERT ON group_managers
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER group_managers_authz_update AFTER UPDATE ON group_managers
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER group_managers_authz_delete AFTER DELETE ON group_managers
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;
