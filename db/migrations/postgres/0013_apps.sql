-- Apps: the same tables as migrations/sqlite/0012_apps.sql. An app is a
-- dashboard whose content comes from an upstream URL, served at its own
-- origin (SLUG.<apps-domain>) by app/apps.
CREATE TABLE apps (
    slug        TEXT   COLLATE "C" PRIMARY KEY,
    upstream    TEXT   COLLATE "C" NOT NULL,
    title       TEXT   NOT NULL,
    description TEXT   NOT NULL DEFAULT '',
    user_header TEXT   COLLATE "C" NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- One-time sign-in codes, bound to the app and the session.
CREATE TABLE app_codes (
    code_hash    TEXT   COLLATE "C" PRIMARY KEY,
    app          TEXT   COLLATE "C" NOT NULL REFERENCES apps (slug) ON DELETE CASCADE,
    session_hash TEXT   COLLATE "C" NOT NULL REFERENCES sessions (id_hash) ON DELETE CASCADE,
    ticket       TEXT   COLLATE "C" NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX app_codes_expires ON app_codes (expires_at);

-- Which apps exist is an authorization fact (see 0004_authz_version.sql).
CREATE CONSTRAINT TRIGGER apps_authz AFTER INSERT OR UPDATE OR DELETE ON apps
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_authz_version();
