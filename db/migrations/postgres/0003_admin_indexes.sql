-- Admin panel at scale: the users list and the add-member search sort by
-- email and match the email or the name; see the SQLite migration. Kept at
-- the same version number so both dialects share one schema version.
CREATE INDEX users_email_name ON users (email, name);
