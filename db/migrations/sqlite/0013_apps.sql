-- Apps: dashboards whose content comes from an upstream URL, served at
-- their own origin (SLUG.<apps-domain>) by app/apps. An app's slug is a
-- dashboard slug: grants, requests and decisions name it like any other.
CREATE TABLE apps (
    slug        TEXT   PRIMARY KEY,
    upstream    TEXT   NOT NULL,
    title       TEXT   NOT NULL,
    description TEXT   NOT NULL DEFAULT '',
    user_header TEXT   NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- One-time sign-in codes: the main origin issues one after deciding, the
-- app origin redeems it (once, within a minute) for its own cookie. Bound
-- to the app and the session: logout or revocation deletes it.
CREATE TABLE app_codes (
    code_hash    TEXT   PRIMARY KEY,
    app          TEXT   NOT NULL REFERENCES apps (slug) ON DELETE CASCADE,
    session_hash TEXT   NOT NULL REFERENCES sessions (id_hash) ON DELETE CASCADE,
    ticket       TEXT   NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX app_codes_expires ON app_codes (expires_at);

-- Which apps exist is an authorization fact: a removed app stops being
-- served, and its open connections are cut, at the next change.
CREATE TRIGGER apps_authz_insert AFTER INSERT ON apps
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER apps_authz_update AFTER UPDATE ON apps
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER apps_authz_delete AFTER DELETE ON apps
BEGIN UPDATE authz_version SET version = version + 1 WHERE id = 1; END;
