-- Admin panel at scale (100,000 users, 1,000,000 memberships).
-- The users list and the add-member search match a substring of the email
-- or the name and sort by email. With both columns in one index the search
-- walks this index in email order without reading the table, stops after a
-- page of matches, and a rare term scans 100,000 small index entries
-- instead of visiting every table row in random order.
CREATE INDEX users_email_name ON users (email, name);
