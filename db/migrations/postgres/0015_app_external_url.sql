-- Forward authentication: where a team's own proxy serves an app (see
-- migrations/sqlite/0016_app_external_url.sql). '' for none.
ALTER TABLE apps ADD COLUMN external_url TEXT COLLATE "C" NOT NULL DEFAULT '';
