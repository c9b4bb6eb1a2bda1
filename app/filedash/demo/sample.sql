-- The demo's sample database: a year of spend by team, category and month,
-- generated deterministically (the same numbers on every machine).
CREATE TABLE teams (team TEXT PRIMARY KEY, base INTEGER NOT NULL, k INTEGER NOT NULL);
INSERT INTO teams VALUES ('sales', 42000, 1), ('support', 26000, 2), ('finance', 18000, 3);
CREATE TABLE categories (category TEXT PRIMARY KEY, weight INTEGER NOT NULL);
INSERT INTO categories VALUES ('Travel', 30), ('Software', 24), ('Hardware', 14), ('Events', 18), ('Training', 8), ('Office', 6);
CREATE TABLE spend (team TEXT NOT NULL, category TEXT NOT NULL, month TEXT NOT NULL, amount INTEGER NOT NULL);
WITH RECURSIVE months(m) AS (SELECT 1 UNION ALL SELECT m + 1 FROM months WHERE m < 12)
INSERT INTO spend
SELECT t.team, c.category, printf('2026-%02d', m.m),
       t.base * c.weight * (80 + ((m.m * 37 + length(c.category) * 11 + t.k * 7) % 41)) / 10000
FROM teams t, categories c, months m;
