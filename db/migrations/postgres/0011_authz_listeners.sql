-- authz_listeners: the servers that answer version checks from what NOTIFY
-- told them instead of reading authz_version on every request (db/authz_lease.go).
--
-- A server listening on the authz channel (0010) keeps a row here: seen is
-- the newest version it has heard of, lease_until (the database's clock)
-- the latest moment it could still trust what it heard without reading the
-- table. A writer that moved the version waits, after its commit, until
-- every row whose lease is still running has seen the new version (or
-- until the leases of those that have not could have run out), so the very
-- next request to any server is decided on the new state.
--
-- Derived state, not data: `gatehouse copy` skips it.
CREATE TABLE authz_listeners (
    id          TEXT        PRIMARY KEY,
    seen        BIGINT      NOT NULL,
    lease_until TIMESTAMPTZ NOT NULL
);
