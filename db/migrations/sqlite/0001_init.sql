-- Gatehouse schema, version 1. Times are Unix milliseconds (UTC) so that SQLite
-- and PostgreSQL compare and index them the same way.
CREATE TABLE users (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    email                TEXT    NOT NULL UNIQUE,          -- stored lower-cased
    name                 TEXT    NOT NULL DEFAULT '',
    password_hash        TEXT    NOT NULL,
    is_admin             BOOLEAN NOT NULL DEFAULT FALSE,
    is_active            BOOLEAN NOT NULL DEFAULT TRUE,
    must_change_password BOOLEAN NOT NULL DEFAULT FALSE,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL,
    last_login_at        BIGINT
);
CREATE INDEX users_name ON users (name);
CREATE INDEX users_admin_active ON users (is_admin, is_active);

CREATE TABLE groups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT   NOT NULL,
    name_key    TEXT   NOT NULL UNIQUE,                    -- lower(name): unique regardless of case
    description TEXT   NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE memberships (
    group_id   BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id, group_id);

CREATE TABLE grants (
    dashboard  TEXT   NOT NULL,
    group_id   BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (dashboard, group_id)
);
CREATE INDEX grants_group ON grants (group_id);

CREATE TABLE sessions (
    id_hash      TEXT   PRIMARY KEY,                       -- sha256 of the cookie's random id
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,                          -- absolute limit
    ip           TEXT   NOT NULL DEFAULT '',
    user_agent   TEXT   NOT NULL DEFAULT '',
    data         BLOB
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE setup_tokens (
    token_hash TEXT   PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          BIGINT NOT NULL,
    actor_id    BIGINT,
    actor_email TEXT   NOT NULL DEFAULT '',
    action      TEXT   NOT NULL,
    target      TEXT   NOT NULL DEFAULT '',
    detail      TEXT   NOT NULL DEFAULT '',
    ip          TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit_events (at);
CREATE INDEX audit_action_target ON audit_events (action, target, at);
CREATE INDEX audit_action_ip ON audit_events (action, ip, at);
CREATE INDEX audit_actor ON audit_events (actor_email, at);
