-- Mail: an outbox that a worker in every server drains (so sending never
-- blocks a request and survives restarts), single-use email tokens for
-- password resets and sign-up confirmation (stored hashed), and the pending
-- state of a sign-up whose email is not confirmed yet.
CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL,                   -- password.reset, signup.verify, request.created, request.decided
    to_addr         TEXT    NOT NULL,
    ref_id          BIGINT  NOT NULL DEFAULT 0,         -- the user or access request the message is about
    status          TEXT    NOT NULL DEFAULT 'pending', -- pending, sent, skipped, failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      BIGINT  NOT NULL,
    next_attempt_at BIGINT  NOT NULL,
    claimed_by      TEXT    NOT NULL DEFAULT '',        -- the worker holding the lease
    claimed_until   BIGINT  NOT NULL DEFAULT 0,
    sent_at         BIGINT,
    last_error      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at);
CREATE INDEX mail_outbox_kind_to ON mail_outbox (kind, to_addr, created_at);

CREATE TABLE mail_tokens (
    token_hash TEXT   PRIMARY KEY,                      -- sha256 of the token in the link
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT   NOT NULL,                         -- reset, verify
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX mail_tokens_user ON mail_tokens (user_id, purpose);
CREATE INDEX mail_tokens_expires ON mail_tokens (expires_at);

ALTER TABLE users ADD COLUMN email_pending BOOLEAN NOT NULL DEFAULT FALSE;
