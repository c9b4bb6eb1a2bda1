-- authz_version is one counter that triggers bump on every change that can
-- alter a session, a viewer or an access decision, whichever process makes
-- it (a server, the CLI, another instance). A server reads it once per
-- request (one row by primary key) and answers the request's session, user
-- and access facts from memory only while it is unchanged, so a revocation
-- by any process takes effect on the very next request.
--
-- Not counted, because nothing cached depends on them: a new session (its
-- id was never cached) and a session's last_seen_at touch.
-- It is derived state, not data: a tool copying one database into another
-- skips it (the target counts its own changes).
CREATE TABLE authz_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT  NOT NULL
);
INSERT INTO authz_version (id, version) VALUES (1, 0);

CREATE TRIGGER users_authz_insert AFTER INSERT ON users
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER users_authz_update AFTER UPDATE ON users
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER users_authz_delete AFTER DELETE ON users
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER groups_authz_insert AFTER INSERT ON groups
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER groups_authz_update AFTER UPDATE ON groups
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER groups_authz_delete AFTER DELETE ON groups
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER memberships_authz_insert AFTER INSERT ON memberships
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER memberships_authz_update AFTER UPDATE ON memberships
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER memberships_authz_delete AFTER DELETE ON memberships
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER grants_authz_insert AFTER INSERT ON grants
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER grants_authz_update AFTER UPDATE ON grants
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER grants_authz_delete AFTER DELETE ON grants
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER access_requests_authz_insert AFTER INSERT ON access_requests
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER access_requests_authz_update AFTER UPDATE ON access_requests
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER access_requests_authz_delete AFTER DELETE ON access_requests
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER sessions_authz_update AFTER UPDATE OF user_id, expires_at, data ON sessions
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER sessions_authz_delete AFTER DELETE ON sessions
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;
