-- Access requests: a viewer asks for a dashboard; an admin approves (adding
-- them to a group granted it) or denies.
CREATE TABLE access_requests (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    dashboard   TEXT   NOT NULL,
    message     TEXT   NOT NULL DEFAULT '',
    status      TEXT   NOT NULL DEFAULT 'pending',        -- pending, approved, denied
    created_at  BIGINT NOT NULL,
    decided_at  BIGINT,
    decided_by  TEXT   NOT NULL DEFAULT '',
    group_id    BIGINT REFERENCES groups (id) ON DELETE SET NULL,
    note        TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX access_requests_status ON access_requests (status, created_at);
CREATE INDEX access_requests_user ON access_requests (user_id, dashboard, created_at);
-- At most one pending request per user and dashboard.
CREATE UNIQUE INDEX access_requests_one_pending ON access_requests (user_id, dashboard) WHERE status = 'pending';
