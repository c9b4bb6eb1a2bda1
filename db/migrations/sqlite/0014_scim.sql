-- SCIM provisioning (app/scim): the identity provider creates, updates and
-- deactivates users and pushes its groups.
--
-- scim_tokens: the bearer tokens an IdP presents, stored as SHA-256 hashes
-- (the token itself is printed once). Revoking deletes the row; the audit
-- log keeps its history. last_request and last_error feed the admin page.
CREATE TABLE scim_tokens (
    name          TEXT   PRIMARY KEY,
    token_hash    TEXT   NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    last_request  TEXT   NOT NULL DEFAULT '',
    last_error    TEXT   NOT NULL DEFAULT '',
    last_error_at BIGINT
);

-- scim_users: a user the IdP manages, with what the IdP calls it. The
-- SCIM id of a user is users.id; external_id is the IdP's own id for them.
-- user_name_key is lower(user_name): SCIM compares userName regardless of
-- case. Deleting the user (never done by SCIM) takes the row with it.
CREATE TABLE scim_users (
    user_id       BIGINT NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    user_name     TEXT   NOT NULL,
    user_name_key TEXT   NOT NULL,
    external_id   TEXT   NOT NULL DEFAULT '',
    given_name    TEXT   NOT NULL DEFAULT '',
    family_name   TEXT   NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    deleted_at    BIGINT
);
-- A user the IdP deleted keeps its row (deleted_at set): SCIM no longer
-- shows it, its userName is free, and the IdP creating the person again
-- takes the account back.
CREATE UNIQUE INDEX scim_users_name ON scim_users (user_name_key) WHERE deleted_at IS NULL;
CREATE INDEX scim_users_external ON scim_users (external_id);

-- scim_groups: the IdP's groups as it pushes them. A group's display name
-- is the IdP group name that `groups map` maps to Gatehouse groups: its
-- members feed those groups exactly as an SSO sign-in's groups claim does.
CREATE TABLE scim_groups (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    display_name     TEXT   NOT NULL,
    display_name_key TEXT   NOT NULL UNIQUE,
    external_id      TEXT   NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX scim_groups_external ON scim_groups (external_id);

CREATE TABLE scim_members (
    group_id BIGINT NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX scim_members_user ON scim_members (user_id, group_id);
