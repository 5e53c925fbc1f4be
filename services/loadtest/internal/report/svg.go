package report

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// Series is one line of a chart.
type Series struct {
	Name   string
	Color  string
	Dash   bool         // drawn dashed, so a line under another one stays visible
	Points [][2]float64 // x, y
}

// palette is colour-blind friendly (Okabe–Ito).
var palette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"}

const (
	chartW, chartH = 720, 260
	padL, padR     = 70, 20
	padT, padB     = 30, 60
)

// niceTicks returns about n round tick values covering [0, hi].
func niceTicks(hi float64, n int) []float64 {
	if hi <= 0 || math.IsNaN(hi) || math.IsInf(hi, 0) {
		hi = 1
	}
	raw := hi / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var t []float64
	for v := 0.0; v <= hi*1.0001+step; v += step {
		t = append(t, v)
		if v >= hi {
			break
		}
	}
	return t
}

// LineChart draws series over a shared x axis (seconds, shown as mm:ss) as inline SVG.
func LineChart(title, yLabel string, yFmt func(float64) string, series []Series) string {
	var xMax, yMax float64
	for _, s := range series {
		for _, p := range s.Points {
			xMax = math.Max(xMax, p[0])
			yMax = math.Max(yMax, p[1])
		}
	}
	yt := niceTicks(yMax, 5)
	xt := niceTicks(xMax, 8)
	yTop, xTop := yt[len(yt)-1], xt[len(xt)-1]
	if yTop == 0 {
		yTop = 1
	}
	if xTop == 0 {
		xTop = 1
	}
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	x := func(v float64) float64 { return padL + v/xTop*pw }
	y := func(v float64) float64 { return padT + ph - v/yTop*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" role="img" viewBox="0 0 %d %d" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<title>%s</title><text x="%d" y="18" class="ct">%s</text>`, esc(title), padL, esc(title))
	for _, v := range yt {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/><text x="%d" y="%.1f" class="yl">%s</text>`,
			padL, chartW-padR, y(v), y(v), padL-6, y(v)+4, esc(yFmt(v)))
	}
	for _, v := range xt {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" class="tick"/><text x="%.1f" y="%d" class="xl">%s</text>`,
			x(v), x(v), padT+int(ph), padT+int(ph)+4, x(v), padT+int(ph)+18, clock(v))
	}
	fmt.Fprintf(&b, `<text x="14" y="%d" class="al" transform="rotate(-90 14 %d)">%s</text>`, padT+int(ph)/2, padT+int(ph)/2, esc(yLabel))
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" class="axis"/>`, padL, chartW-padR, padT+int(ph), padT+int(ph))
	for i, s := range series {
		c := s.Color
		if c == "" {
			c = palette[i%len(palette)]
		}
		if len(s.Points) > 0 {
			var pts []string
			for _, p := range s.Points {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p[0]), y(p[1])))
			}
			dash := ""
			if s.Dash {
				dash = ` stroke-dasharray="6 4"`
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`, c, dash, strings.Join(pts, " "))
		}
		lx := padL + i*130
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d" class="lg">%s</text>`,
			lx, chartH-22, c, lx+16, chartH-12, esc(s.Name))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// BarChart draws one bar per band with its share of rows.
func BarChart(title string, bands []Band) string {
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	n := max(len(bands), 1)
	bw := pw / float64(n)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" role="img" viewBox="0 0 %d %d" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<title>%s</title><text x="%d" y="18" class="ct">%s</text>`, esc(title), padL, esc(title))
	for _, v := range []float64{0, 25, 50, 75, 100} {
		yy := padT + ph - v/100*ph
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/><text x="%d" y="%.1f" class="yl">%g %%</text>`,
			padL, chartW-padR, yy, yy, padL-6, yy+4, v)
	}
	for i, band := range bands {
		h := band.Percent / 100 * ph
		x0 := padL + float64(i)*bw
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s rows (%.1f %%)</title></rect>`,
			x0+4, padT+ph-h, bw-8, h, palette[0], esc(band.Label), Int(band.Count), band.Percent)
		if band.Percent > 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="bl">%.1f %%</text>`, x0+bw/2, padT+ph-h-4, band.Percent)
		}
		lo, hi := Dur(band.Lo)+" –", Dur(band.Hi)
		if band.Hi == 0 {
			lo, hi = "≥ "+Dur(band.Lo), ""
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="xl">%s</text><text x="%.1f" y="%d" class="xl">%s</text>`,
			x0+bw/2, padT+int(ph)+16, esc(lo), x0+bw/2, padT+int(ph)+30, esc(hi))
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" class="axis"/>`, padL, chartW-padR, padT+int(ph), padT+int(ph))
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="al">share of rows by end-to-end latency</text>`, padL, chartH-6)
	b.WriteString(`</svg>`)
	return b.String()
}

// LatencyTick labels a latency axis: milliseconds to three digits below 1 s.
func LatencyTick(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 1:
		return strconv.FormatFloat(v*1000, 'g', 3, 64) + " ms"
	}
	return strconv.FormatFloat(v, 'g', 4, 64) + " s"
}

func esc(s string) string { return html.EscapeString(s) }
