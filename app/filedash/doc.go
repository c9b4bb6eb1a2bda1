// Package filedash serves dashboards written as files: a directory of YAML
// files, one dashboard each, whose panels are SQL queries over the team's
// own databases (PostgreSQL, MySQL/MariaDB, SQLite), named in the
// directory's sources.yaml.
//
// A file dashboard joins the same registry as the dashboards written in Go
// (app/dashboards), so grants, the one access decision, the explainer,
// access requests, the home page and live pages treat it alike: the server
// decides before a panel's query runs. Queries see the viewer only through
// parameters the driver binds (:viewer_email, :viewer_groups, :now and the
// dashboard's filters), never through SQL text; each runs in a read-only
// transaction with a timeout and a row limit, and its result is rendered
// with components/charts and cached per panel, parameters and refresh
// interval, with one query in flight per key.
//
// Load reads a directory, Check validates it against the databases (the
// `dashboards check` command), Open serves it and Watch reloads an edited
// file, keeping the last good version of a broken one.
package filedash
