-- The same as migrations/sqlite/0008_oidc.sql, for PostgreSQL.
-- Sign-in with the organisation's identity provider (OpenID Connect).
--
-- user_identities links a Gatehouse user to an account at an identity
-- provider. The first sign-in links by verified email (or creates the user);
-- later ones match issuer + subject, so a changed email at the IdP keeps the
-- account.
CREATE TABLE user_identities (
    issuer        TEXT   COLLATE "C" NOT NULL,
    subject       TEXT   COLLATE "C" NOT NULL,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email         TEXT   COLLATE "C" NOT NULL DEFAULT '',              -- the IdP's email at the last sign-in
    created_at    BIGINT NOT NULL,
    last_login_at BIGINT,
    PRIMARY KEY (issuer, subject)
);
-- One account per user and issuer.
CREATE UNIQUE INDEX user_identities_user ON user_identities (user_id, issuer);

-- idp_group_mappings: the IdP groups that feed a Gatehouse group. At every
-- SSO sign-in the user's memberships in mapped groups follow the token.
CREATE TABLE idp_group_mappings (
    group_id   BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    idp_group  TEXT   COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, idp_group)
);
CREATE INDEX idp_group_mappings_idp ON idp_group_mappings (idp_group);

-- Where a membership came from: 'manual' (an admin, the CLI, an approved
-- request) or 'idp' (group sync, which adds and removes only these), and for
-- 'idp' the IdP group that feeds it.
ALTER TABLE memberships ADD COLUMN source TEXT COLLATE "C" NOT NULL DEFAULT 'manual';
ALTER TABLE memberships ADD COLUMN idp_group TEXT COLLATE "C" NOT NULL DEFAULT '';

-- oidc_sessions: the IdP side of every session signed in with SSO (that is
-- how an SSO session is told apart), with the refresh token for the periodic
-- re-check when the IdP returned one (else '' and never due). It goes with
-- its session.
CREATE TABLE oidc_sessions (
    session_hash  TEXT   COLLATE "C" PRIMARY KEY REFERENCES sessions (id_hash) ON DELETE CASCADE,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issuer        TEXT   COLLATE "C" NOT NULL,
    subject       TEXT   COLLATE "C" NOT NULL,
    refresh_token TEXT   COLLATE "C" NOT NULL,
    next_check_at BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX oidc_sessions_user ON oidc_sessions (user_id);
