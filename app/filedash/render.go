package filedash

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"

	"gatehouse/components/charts"
)

// formatFunc returns the format named name (number by default).
func formatFunc(name string) charts.ValueFormat {
	switch name {
	case "compact":
		return charts.FormatCompact
	case "currency":
		return charts.FormatCurrency
	case "percent":
		return charts.FormatPercent
	case "duration":
		return charts.FormatDuration
	}
	return charts.FormatNumber
}

// number reads a value as a number.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case int:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil && !math.IsNaN(f)
	}
	return 0, false
}

// text reads a value as text.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case time.Time:
		if x.Hour() == 0 && x.Minute() == 0 && x.Second() == 0 && x.Nanosecond() == 0 {
			return x.Format(time.DateOnly)
		}
		return x.UTC().Format("2006-01-02 15:04")
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// renderPanel turns a query's result into the panel's chart, or says why
// it cannot (a column of the wrong kind).
func renderPanel(p *PanelSpec, chartID string, res *result) (templ.Component, error) {
	format := func(col int) charts.ValueFormat {
		if col < len(res.columns) {
			return formatFunc(p.Formats[res.columns[col]])
		}
		return charts.FormatNumber
	}
	switch p.Chart {
	case ChartBar, ChartLine:
		if len(res.columns) < 2 {
			return nil, fmt.Errorf("a %s chart needs two columns, a label and a value; the query returned %d", p.Chart, len(res.columns))
		}
		if len(res.rows) == 0 {
			return charts.Empty("No data."), nil
		}
		series := make([]charts.Series, len(res.columns)-1)
		for c := range series {
			series[c].Name = res.columns[c+1]
		}
		for r, row := range res.rows {
			label := text(row[0])
			for c := range series {
				v, ok := number(row[c+1])
				if !ok && row[c+1] != nil {
					return nil, fmt.Errorf("column %q must be a number (row %d has %q)", res.columns[c+1], r+1, text(row[c+1]))
				}
				series[c].Points = append(series[c].Points, charts.ChartPoint{Label: label, Value: v})
			}
		}
		if p.Chart == ChartBar {
			return charts.BarChart(chartID, p.Title, series[0].Points, format(1), charts.TitleHidden), nil
		}
		return charts.LineChart(chartID, p.Title, series, format(1), charts.TitleHidden), nil
	case ChartStat:
		if len(res.rows) == 0 || len(res.columns) == 0 {
			return charts.Empty("No data."), nil
		}
		tiles := make([]templ.Component, len(res.columns))
		for c, col := range res.columns {
			val := text(res.rows[0][c])
			if v, ok := number(res.rows[0][c]); ok {
				val = format(c)(v)
			}
			tiles[c] = charts.StatTile(col, val, "", "")
		}
		return charts.Stats(tiles...), nil
	default:
		if len(res.rows) == 0 {
			return charts.Empty("No rows."), nil
		}
		numeric := make([]bool, len(res.columns))
		for c := range numeric {
			numeric[c] = true
			for _, row := range res.rows {
				if _, ok := number(row[c]); !ok && row[c] != nil {
					numeric[c] = false
					break
				}
			}
		}
		rows := make([][]string, len(res.rows))
		for r, row := range res.rows {
			rows[r] = make([]string, len(row))
			for c, v := range row {
				if f, ok := number(v); ok && numeric[c] {
					rows[r][c] = format(c)(f)
				} else {
					rows[r][c] = text(v)
				}
			}
		}
		return charts.DataTable(strconv.Itoa(len(rows))+" rows", res.columns, rows, numeric), nil
	}
}
