package charts

import (
	"math"
	"strconv"
	"strings"
)

// notANumber is what every formatter returns for NaN and ±Inf, so a broken
// value shows as a dash instead of "NaN" on a dashboard.
const notANumber = "—"

// FormatNumber formats v with thousands separators: 1234567 gives "1,234,567".
// Whole numbers have no decimals; other values are rounded to one decimal
// ("1,234.5"). Values that round to zero are "0", never "-0".
func FormatNumber(v float64) string {
	if !isFiniteNum(v) {
		return notANumber
	}
	return formatRounded(round1(v), true)
}

// FormatCompact formats v in at most four significant characters with a
// K, M, B or T suffix: 1234567 gives "1.2M", 310000 gives "310K", 950 gives
// "950" and -4500 gives "-4.5K". One decimal is kept below 100 of a unit.
func FormatCompact(v float64) string {
	if !isFiniteNum(v) {
		return notANumber
	}
	s := compactAbs(math.Abs(v))
	if v < 0 && s != "0" {
		return "-" + s
	}
	return s
}

// FormatCurrency formats v as a compact dollar amount: "$1.2M", "$950",
// and negative amounts as "-$4.5K".
func FormatCurrency(v float64) string {
	if !isFiniteNum(v) {
		return notANumber
	}
	s := compactAbs(math.Abs(v))
	if v < 0 && s != "0" {
		return "-$" + s
	}
	return "$" + s
}

// FormatPercent formats a ratio as a percentage with at most one decimal:
// 0.123 gives "12.3%", 0.5 gives "50%" and 12.5 gives "1,250%".
func FormatPercent(v float64) string {
	if !isFiniteNum(v) {
		return notANumber
	}
	return FormatNumber(v*100) + "%"
}

// FormatDuration formats a duration given in hours in the largest unit that
// keeps it readable: minutes below an hour ("45m"), hours below a day
// ("3.2h") and days from there on ("2.1d"). Durations shorter than half a
// minute are "<1m"; zero is "0m".
func FormatDuration(hours float64) string {
	if !isFiniteNum(hours) {
		return notANumber
	}
	if hours == 0 {
		return "0m"
	}
	sign := ""
	if hours < 0 {
		sign = "-"
	}
	h := math.Abs(hours)
	minutes := math.Round(h * 60)
	switch {
	case minutes < 1:
		return "<1m"
	case minutes < 60:
		return sign + strconv.FormatFloat(minutes, 'f', 0, 64) + "m"
	case round1(h) < 24:
		return sign + FormatNumber(h) + "h"
	default:
		return sign + FormatNumber(h/24) + "d"
	}
}

// compactAbs formats a non-negative value for FormatCompact and
// FormatCurrency. The unit is picked after rounding, so 999,960 becomes
// "1M" rather than "1000K".
func compactAbs(a float64) string {
	suffixes := []string{"", "K", "M", "B", "T"}
	unit := 0
	for roundCompact(a) >= 1000 && unit < len(suffixes)-1 {
		a /= 1000
		unit++
	}
	return formatRounded(roundCompact(a), unit == 0) + suffixes[unit]
}

// roundCompact keeps one decimal below 100 and none from 100 up.
func roundCompact(a float64) float64 {
	if a < 100 {
		return round1(a)
	}
	return math.Round(a)
}

// round1 rounds v to one decimal place. Values too large to carry a
// decimal are only rounded to an integer, which also avoids overflow.
func round1(v float64) float64 {
	if math.Abs(v) >= 1e15 {
		return math.Round(v)
	}
	return math.Round(v*10) / 10
}

// formatRounded prints an already rounded value with at most one decimal,
// optionally grouping the integer part in thousands.
func formatRounded(r float64, group bool) string {
	if r == 0 {
		r = 0 // -0 prints as "-0"
	}
	neg := r < 0
	if neg {
		r = -r
	}
	prec := 1
	if r == math.Trunc(r) {
		prec = 0
	}
	s := strconv.FormatFloat(r, 'f', prec, 64)
	intPart, frac, _ := strings.Cut(s, ".")
	if group {
		intPart = groupThousands(intPart)
	}
	if frac != "" {
		intPart += "." + frac
	}
	if neg {
		return "-" + intPart
	}
	return intPart
}

// groupThousands inserts a comma every three digits from the right.
func groupThousands(digits string) string {
	if len(digits) <= 3 {
		return digits
	}
	var b strings.Builder
	head := len(digits) % 3
	if head > 0 {
		b.WriteString(digits[:head])
	}
	for i := head; i < len(digits); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(digits[i : i+3])
	}
	return b.String()
}

// isFiniteNum reports whether v is neither NaN nor ±Inf.
func isFiniteNum(v float64) bool {
	return !math.IsNaN(v) && !math.IsInf(v, 0)
}

// finiteOr0 maps NaN and ±Inf to 0 and clamps huge magnitudes, so chart
// geometry computed from v is always finite.
func finiteOr0(v float64) float64 {
	if !isFiniteNum(v) {
		return 0
	}
	return math.Max(-1e300, math.Min(1e300, v))
}

// niceTicks returns evenly spaced axis ticks covering [lo, hi] whose step is
// 1, 2, 2.5 or 5 × 10^n, aiming for five ticks (four intervals). The first and
// last ticks are the axis bounds. A zero-width range is widened to reach
// zero (all zeros give 0, 0.5, 1), so the result always has at least two
// distinct ticks and callers never divide by zero.
func niceTicks(lo, hi float64) []float64 {
	lo, hi = finiteOr0(lo), finiteOr0(hi)
	if lo > hi {
		lo, hi = hi, lo
	}
	if lo == hi {
		switch {
		case lo > 0:
			lo = 0
		case lo < 0:
			hi = 0
		default:
			// No data to scale: a plain 0..1 axis, not 0, 0.2, 0.4….
			return []float64{0, 0.5, 1}
		}
	}
	const wantIntervals = 4
	exp := math.Floor(math.Log10((hi - lo) / wantIntervals))
	var step, first float64
	count := -1
	for e := exp - 1; e <= exp+1; e++ {
		mag := math.Pow(10, e)
		for _, m := range []float64{1, 2, 2.5, 5} {
			s := m * mag
			if m == 2.5 && s < 1 {
				// 0.25-style steps need two decimals, which the formatters drop.
				continue
			}
			// The small epsilon absorbs float noise such as 0.3/0.1 = 2.9999….
			f := math.Floor(lo/s + 1e-9)
			n := int(math.Ceil(hi/s-1e-9) - f)
			// Candidates run from small steps to large ones, so on a tie the
			// larger step (fewer, rounder ticks) wins.
			if count < 0 || absInt(n-wantIntervals) <= absInt(count-wantIntervals) {
				step, first, count = s, f, n
			}
		}
	}
	// Round each tick to the step's precision to drop float noise (0.6000000001).
	decimals := math.Max(0, -math.Floor(math.Log10(step))+1)
	scale := math.Pow(10, math.Min(decimals, 15))
	ticks := make([]float64, 0, count+1)
	for i := 0; i <= count; i++ {
		v := (first + float64(i)) * step
		if r := math.Round(v*scale) / scale; isFiniteNum(r) {
			v = r
		}
		if v == 0 {
			v = 0 // no "-0" tick
		}
		ticks = append(ticks, v)
	}
	return ticks
}

func absInt(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// wholeTicks turns an axis with fractional steps into one with whole
// steps over the same (rounded out) range, for values that are counts:
// 0, 1, 2, 3 instead of 0, 0.5, 1, 1.5 … 3. Whole steps are kept as they are.
func wholeTicks(ticks []float64) []float64 {
	if len(ticks) < 2 {
		return []float64{0, 1}
	}
	if step := ticks[1] - ticks[0]; step >= 1 && step == math.Trunc(step) {
		return ticks
	}
	lo, hi := math.Floor(ticks[0]), math.Ceil(ticks[len(ticks)-1])
	if hi == lo {
		hi = lo + 1
	}
	step := 1.0
	for (hi-lo)/step > 5 {
		step *= 2
	}
	lo, hi = math.Floor(lo/step)*step, math.Ceil(hi/step)*step
	out := make([]float64, 0, int((hi-lo)/step)+1)
	for v := lo; v <= hi+1e-9; v += step {
		out = append(out, v)
	}
	return out
}
