// Package e2e drives the real gatehouse binary with Debian's headless
// chromium (through chromedp): the first-run setup, the admin panel, live
// revocation and restoration of a dashboard, deactivation, phone widths, and
// the README's screenshots. The tests skip when no chromium is installed,
// except under CI=true, where a missing browser fails them.
package e2e
