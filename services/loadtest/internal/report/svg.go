package report

import (
	"fmt"
	"html"
	"math"
	"slices"
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

// Mark is a moment drawn as a vertical line across a time chart (a step of the max ramp).
type Mark struct {
	T     float64 // seconds since the start
	Label string  // short, printed above the top of the line
	Title string  // the hover text
	Fail  bool    // drawn in the failure colour
}

// palette is colour-blind friendly (Okabe–Ito).
var palette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"}

// The charts are drawn in a 940-unit wide viewBox, about the page's column, and scaled to
// the column's width by the browser (width="100%"), so a unit is about a CSS pixel.
const (
	chartW, chartH = 940, 280
	padR           = 20
	padT, padB     = 40, 60
	maxHoverSlots  = 240 // hover areas per chart; a long run's samples share them
)

// TimeChart is a line chart over the run's time axis (seconds, printed mm:ss).
type TimeChart struct {
	Title, YLabel string
	Tick          func(float64) string // a y tick's label
	Value         func(float64) string // a value in a hover text; Tick when nil
	Counts        bool                 // y counts whole things: whole-number ticks
	End           float64              // end of the time axis shared by the report's charts; 0: the data's end
	Marks         []Mark
	Series        []Series // drawn in this order, so the last one is on top
}

// SVG renders the chart as inline SVG. Hovering a moment shows every series' value at it
// (an SVG <title>, so the page stays free of scripts).
func (c TimeChart) SVG() string {
	xEnd, yMax := c.End, 0.0
	for _, s := range c.Series {
		for _, p := range s.Points {
			xEnd, yMax = math.Max(xEnd, p[0]), math.Max(yMax, p[1])
		}
	}
	for _, m := range c.Marks {
		xEnd = math.Max(xEnd, m.T)
	}
	yt := NiceTicks(yMax, 5)
	if c.Counts {
		yt = CountTicks(yMax, 5)
	}
	xt := TimeTicks(xEnd, 8)
	yTop, xTop := yt[len(yt)-1], xt[len(xt)-1]
	value := c.Value
	if value == nil {
		value = c.Tick
	}
	var labels []string
	for _, v := range yt {
		labels = append(labels, c.Tick(v))
	}
	padL := yAxisWidth(labels)
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	x := func(v float64) float64 { return float64(padL) + v/xTop*pw }
	y := func(v float64) float64 { return padT + ph - v/yTop*ph }
	bottom := padT + int(ph)

	var b strings.Builder
	open(&b, c.Title)
	for i, v := range yt {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/><text x="%d" y="%.1f" class="yl">%s</text>`,
			padL, chartW-padR, y(v), y(v), padL-6, y(v)+4, esc(labels[i]))
	}
	for _, v := range xt {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" class="tick"/><text x="%.1f" y="%d" class="xl">%s</text>`,
			x(v), x(v), bottom, bottom+4, x(v), bottom+18, clock(v))
	}
	fmt.Fprintf(&b, `<text x="14" y="%d" class="al" transform="rotate(-90 14 %d)">%s</text>`, padT+int(ph)/2, padT+int(ph)/2, esc(c.YLabel))
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" class="axis"/>`, padL, chartW-padR, bottom, bottom)
	colors := make([]string, len(c.Series))
	for i, s := range c.Series {
		colors[i] = s.Color
		if colors[i] == "" {
			colors[i] = palette[i%len(palette)]
		}
		if len(s.Points) == 0 {
			continue
		}
		pts := make([]string, len(s.Points))
		for j, p := range s.Points {
			pts[j] = fmt.Sprintf("%.1f,%.1f", x(p[0]), y(p[1]))
		}
		style := `stroke-width="2.5"`
		if s.Dash {
			style = `stroke-width="2" stroke-dasharray="7 5"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" %s points="%s"/>`, colors[i], style, strings.Join(pts, " "))
	}
	hoverSlots(&b, c.Series, value, x, padT, ph)
	for _, m := range c.Marks {
		cls := "mk"
		if m.Fail {
			cls = "mk fail"
		}
		fmt.Fprintf(&b, `<g class="%s"><line x1="%.1f" x2="%.1f" y1="%d" y2="%d" class="ml"/><line x1="%.1f" x2="%.1f" y1="%d" y2="%d" class="hit" stroke="#000" stroke-opacity="0" stroke-width="9"><title>%s</title></line><text x="%.1f" y="%d">%s</text></g>`,
			cls, x(m.T), x(m.T), padT, bottom, x(m.T), x(m.T), padT, bottom, esc(m.Title), x(m.T)+3, padT-5, esc(m.Label))
	}
	for i, s := range c.Series {
		legend(&b, padL+i*150, colors[i], s.Dash, s.Name)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// hoverSlots lays a transparent band over each moment that has data; its title lists
// every series' value at that moment, the way a crosshair would.
func hoverSlots(b *strings.Builder, series []Series, value func(float64) string, x func(float64) float64, top int, ph float64) {
	at := make([]map[float64]float64, len(series))
	var ts []float64
	for i, s := range series {
		at[i] = make(map[float64]float64, len(s.Points))
		for _, p := range s.Points {
			if _, seen := at[i][p[0]]; !seen {
				at[i][p[0]] = p[1]
				ts = append(ts, p[0])
			}
		}
	}
	slices.Sort(ts)
	ts = slices.Compact(ts)
	if len(ts) > maxHoverSlots {
		every := (len(ts) + maxHoverSlots - 1) / maxHoverSlots
		var kept []float64
		for i := 0; i < len(ts); i += every {
			kept = append(kept, ts[i])
		}
		ts = kept
	}
	for i, t := range ts {
		lo, hi := x(t), x(t)
		if i > 0 {
			lo = (x(ts[i-1]) + x(t)) / 2
		}
		if i+1 < len(ts) {
			hi = (x(t) + x(ts[i+1])) / 2
		}
		lo, hi = math.Min(lo, x(t)-2), math.Max(hi, x(t)+2)
		var tip strings.Builder
		tip.WriteString(clock(t))
		for j, s := range series {
			if v, ok := at[j][t]; ok {
				fmt.Fprintf(&tip, "\n%s: %s", s.Name, value(v))
			}
		}
		fmt.Fprintf(b, `<rect class="hv" x="%.1f" y="%d" width="%.1f" height="%.1f" fill="#000" fill-opacity="0"><title>%s</title></rect>`,
			lo, top, hi-lo, ph, esc(tip.String()))
	}
}

// yAxisWidth leaves room left of the plot for the longest tick label and the rotated
// axis label beside it, so neither prints over the other. Labels up to eight characters
// get the same width, so the time charts' plots line up under each other.
func yAxisWidth(labels []string) int {
	longest := 0
	for _, l := range labels {
		longest = max(longest, len([]rune(l)))
	}
	return 30 + 7*max(longest, 8)
}

func open(b *strings.Builder, title string) {
	fmt.Fprintf(b, `<svg class="chart" role="img" viewBox="0 0 %d %d" width="100%%" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH)
	fmt.Fprintf(b, `<title>%s</title><text x="14" y="18" class="ct">%s</text>`, esc(title), esc(title))
}

func legend(b *strings.Builder, x int, color string, dash bool, name string) {
	style := `stroke-width="3"`
	if dash {
		style = `stroke-width="2.5" stroke-dasharray="7 5"`
	}
	fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" %s/><text x="%d" y="%d" class="lg">%s</text>`,
		x, x+24, chartH-16, chartH-16, color, style, x+30, chartH-12, esc(name))
}

// BarChart draws one bar per band with its share of rows.
func BarChart(title string, bands []Band) string {
	const padL = 60
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	n := max(len(bands), 1)
	bw := pw / float64(n)
	var b strings.Builder
	open(&b, title)
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
			// Above the bar, unless the bar reaches the top: then inside it, in white, so
			// it never prints over the title.
			ly, cls := padT+ph-h-4, "bl"
			if h > ph-16 {
				ly, cls = padT+ph-h+14, "bl in"
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="%s">%.1f %%</text>`, x0+bw/2, ly, cls, band.Percent)
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
