// Package components holds Gatehouse's templ views: the page shell
// (layout.templ), each page with the fragments it swaps (one .templ file per
// area: auth, account, security, home, dashboard, admin_*, managers), and
// the mail templates. Fragments are exported so a handler can render just
// them. The building blocks a dashboard's panels are made of (charts, stat
// tiles, tables, number formats) are the package components/charts.
package components
