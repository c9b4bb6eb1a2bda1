// Package scim serves SCIM 2.0 provisioning (RFC 7643, RFC 7644) at
// /scim/v2: an identity provider (Okta, Microsoft Entra ID, …) creates,
// updates and deactivates Gatehouse users and pushes its groups.
//
// It is mounted outside the browser's request pipeline: a request carries
// `Authorization: Bearer TOKEN` (a token made by `gatehouse scim token
// create`) and nothing else counts, no cookie and no session. Every answer
// is JSON (`application/scim+json`), errors included, and every request
// that changes something is one transaction in the store, audited with the
// actor "scim:NAME".
//
// What a change means is decided in db (db.SCIMTx): `active: false` and
// DELETE deactivate the user through the one deactivation path, so their
// sessions end and the access feed cuts their open pages and app
// connections; a pushed group is an IdP group, whose members feed the
// Gatehouse groups it is mapped to (`groups map`) exactly as an SSO
// sign-in's groups claim does.
//
// The handler is written by hand over github.com/scim2/filter-parser (for
// filters and PATCH paths): Gatehouse shows a small fixed set of
// attributes, applies a PATCH to the resource read in the request's
// transaction, and answers the dialects IdPs send (Entra's capitalised
// operations and dotted keys, Okta's member PATCHes) the same way.
package scim
