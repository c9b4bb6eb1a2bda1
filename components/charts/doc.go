// Package charts is what a dashboard author builds panels from: SVG bar and
// line charts (BarChart, LineChart), stat tiles (Stats, StatTile), tables
// (DataTable), Stack and Empty, and the number formats their labels use
// (FormatNumber, FormatCurrency, …). Every chart carries a text summary for
// screen readers and escapes what it is given. It depends on nothing of
// Gatehouse's own, so built-in, demo and file dashboards all use it alike.
package charts
