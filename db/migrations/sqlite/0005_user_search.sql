-- A trigram index over users' email and name, so the admin panel's
-- "contains" searches (users list, member search) stay fast at 100,000 users
-- instead of scanning every row with LIKE. It is an external-content FTS5
-- table: it stores only the index, and triggers keep it in step with users.
-- Derived state, not data: `gatehouse copy` does not copy it (the target's
-- triggers rebuild it as users are inserted).
CREATE VIRTUAL TABLE users_search USING fts5(
    email, name, content = 'users', content_rowid = 'id', tokenize = 'trigram'
);
INSERT INTO users_search (users_search) VALUES ('rebuild');

CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_search (rowid, email, name) VALUES (new.id, new.email, new.name);
END;
CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN
    INSERT INTO users_search (users_search, rowid, email, name) VALUES ('delete', old.id, old.email, old.name);
END;
CREATE TRIGGER users_search_update AFTER UPDATE OF email, name ON users BEGIN
    INSERT INTO users_search (users_search, rowid, email, name) VALUES ('delete', old.id, old.email, old.name);
    INSERT INTO users_search (rowid, email, name) VALUES (new.id, new.email, new.name);
END;
