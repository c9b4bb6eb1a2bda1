-- Passkey ceremonies in progress are bounded per client network and per
-- session (db/mfa.go PutChallenge), so one client's flood of begins cannot
-- fill the table for everyone (issue 25). client is the network the
-- ceremony was begun from: an IPv4 address or an IPv6 /64.
ALTER TABLE webauthn_challenges ADD COLUMN client TEXT NOT NULL DEFAULT '';
CREATE INDEX webauthn_challenges_client ON webauthn_challenges (client, expires_at);
CREATE INDEX webauthn_challenges_session ON webauthn_challenges (session_hash, expires_at);
