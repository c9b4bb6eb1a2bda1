-- Second factors and passkeys (issue 16).
--
-- Every session records how it was authenticated: 'password',
-- 'password+totp', 'password+recovery', 'password+passkey', 'passkey', 'sso',
-- or one of the two half-authenticated states that can do nothing but finish
-- signing in: 'mfa-pending' (password right, second factor still to give)
-- and 'enrol-pending' (password right, a second factor must be set up first).
-- Sessions from before this migration were all password sessions.
ALTER TABLE sessions ADD COLUMN auth_method TEXT NOT NULL DEFAULT 'password';

-- Passkeys (WebAuthn credentials), several per user.
CREATE TABLE webauthn_credentials (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id BLOB   NOT NULL UNIQUE,                 -- the authenticator's credential id
    name          TEXT   NOT NULL,
    credential    TEXT   NOT NULL,                        -- JSON of go-webauthn's Credential (public key, sign count, flags)
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

-- An authenticator app (TOTP); at most one per user. confirmed_at is NULL
-- while enrolment waits for its first code. last_step is the newest 30-second
-- step a code was accepted for: a code is never accepted twice.
CREATE TABLE totp_secrets (
    user_id      BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       TEXT   NOT NULL,
    confirmed_at BIGINT,
    last_step    BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);

-- Single-use recovery codes, stored as the sha256 of the code (80 random bits).
CREATE TABLE recovery_codes (
    code_hash  TEXT   PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- WebAuthn ceremonies in progress: the challenge a browser must sign, keyed
-- by the sha256 of the random id in its short-lived challenge cookie, bound
-- to the session that began it (none for a passkey sign-in), single use.
CREATE TABLE webauthn_challenges (
    id_hash      TEXT   PRIMARY KEY,
    purpose      TEXT   NOT NULL,                          -- register, signin, second-factor
    user_id      BIGINT REFERENCES users (id) ON DELETE CASCADE,
    session_hash TEXT   NOT NULL DEFAULT '',
    data         TEXT   NOT NULL,                          -- JSON of go-webauthn's SessionData
    expires_at   BIGINT NOT NULL
);
CREATE INDEX webauthn_challenges_expires ON webauthn_challenges (expires_at);
