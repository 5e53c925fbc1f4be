package report

import (
	"fmt"
	"strconv"
	"strings"
)

// Int prints n with thousands separators, as the seed report does (2,847).
func Int(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Rate prints rows per second.
func Rate(v float64) string {
	switch {
	case v >= 100:
		return Int(int64(v+0.5)) + " rec/s"
	case v >= 10:
		return fmt.Sprintf("%.1f rec/s", v)
	}
	return fmt.Sprintf("%.2f rec/s", v)
}

// Percent prints a ratio (0.012 = 1.2 %).
func Percent(r float64) string {
	p := 100 * r
	switch {
	case p == 0:
		return "0 %"
	case p < 0.01:
		return fmt.Sprintf("%.4f %%", p)
	case p < 10:
		return fmt.Sprintf("%.2f %%", p)
	}
	return fmt.Sprintf("%.1f %%", p)
}

// Bytes prints a size in binary units.
func Bytes(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.2f GB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.0f MB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.0f kB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}

// Ratio says how many times better a is than b, for a lower-is-better (lower=true) or
// higher-is-better metric: "640× lower", "2.1× higher".
func Ratio(ours, spark float64, lower bool) string {
	if ours <= 0 || spark <= 0 {
		if lower && ours == 0 && spark > 0 {
			return "∞ (none)"
		}
		return "—"
	}
	x := ours / spark
	if lower {
		x = spark / ours
	}
	switch {
	case x >= 0.995 && x < 1.005:
		return "="
	case x < 1:
		if lower {
			return times(1/x) + " higher"
		}
		return times(1/x) + " lower"
	case lower:
		return times(x) + " lower"
	}
	return times(x) + " higher"
}

// Times is the plain ratio ours/spark of two counts that are neither better nor worse
// (rows generated in runs of different lengths).
func Times(ours, spark float64) string {
	if ours <= 0 || spark <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", ours/spark)
}

func times(x float64) string {
	switch {
	case x >= 100:
		return Int(int64(x+0.5)) + "×"
	case x >= 10:
		return fmt.Sprintf("%.0f×", x)
	}
	return fmt.Sprintf("%.1f×", x)
}
