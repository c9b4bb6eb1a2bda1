// Package axe holds axe-core, the accessibility engine the browser tests
// run in every page. It lives in the test tree only: nothing in the
// gatehouse binary imports it. See README.md for its version and origin.
package axe

import _ "embed"

// Source is axe-core's axe.min.js (npm axe-core 4.14.1, MPL-2.0).
//
//go:embed axe.min.js
var Source string
