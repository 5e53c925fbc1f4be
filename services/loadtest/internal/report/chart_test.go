package report

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// rampFixture is a max run shaped like the one the charts were first read on: committed
// data to 05:50 (the last 50 s without commits, so without latency), resource samples to
// 05:00, three ramp steps of which the last fails, a backlog of at most maxBacklog files,
// P95 equal to P99 (a bucket of a few files), and 99.8 % of rows in the first band.
func rampFixture(maxBacklog int64) *Report {
	r := &Report{RunID: "max-x", Scenario: "max", Mode: "local", Env: Environment{CPUs: 2}}
	for i := 1; i <= 70; i++ {
		p := Point{T: float64(5 * i), BacklogFiles: int64(i) % (maxBacklog + 1)}
		if i <= 60 {
			p.Offered, p.Throughput = 2500*float64(1+i/24), 2400*float64(1+i/24)
			p.P50, p.P95, p.P99 = 0.01*float64(1+i%4), 0.05*float64(1+i%3), 0.05*float64(1+i%3)
		}
		r.Timeline = append(r.Timeline, p)
	}
	for i := 0; i <= 60; i++ {
		r.Resources.Samples = append(r.Resources.Samples, ResourceSample{T: float64(5 * i), HostCPU: 30,
			CPU: map[string]float64{"ingester": 20}, Mem: map[string]float64{"ingester": 20e6}})
	}
	r.Resources.Components = []string{"ingester"}
	r.Steps = []Step{{Index: 1, Start: 0, Offered: 2500, Passed: true}, {Index: 2, Start: 120, Offered: 5000, Passed: true},
		{Index: 3, Start: 240, Offered: 10000, Why: "P99 2.1 s ≥ 1.00 s"}}
	r.Latency.Fine = []Band{{Label: "a", Lo: 0, Hi: 0.05, Count: 998, Percent: 99.8}, {Label: "b", Lo: 0.05, Hi: 0.1, Count: 2, Percent: 0.2}}
	return r
}

var (
	svgRe     = regexp.MustCompile(`(?s)<svg .*?</svg>`)
	titleRe   = regexp.MustCompile(`<text x="[^"]*" y="[^"]*" class="ct">([^<]*)</text>`)
	xLabelRe  = regexp.MustCompile(`class="xl">(\d\d:\d\d)</text>`)
	yLabelRe  = regexp.MustCompile(`class="yl">([^<]*)</text>`)
	tipRe     = regexp.MustCompile(`(?s)<title>([^<]*)</title>`)
	polyRe    = regexp.MustCompile(`<polyline fill="none" stroke="([^"]*)" ([^p]*)points="([^"]*)"/>`)
	markRe    = regexp.MustCompile(`<g class="mk[^"]*"><line x1="([0-9.]+)"[^>]*>.*?<text [^>]*>(step \d+)</text></g>`)
	tickLineR = regexp.MustCompile(`<line x1="([0-9.]+)" x2="[0-9.]+" y1="\d+" y2="\d+" class="tick"/><text [^>]*class="xl">(\d\d:\d\d)</text>`)
)

// charts maps each chart's title to its SVG.
func charts(t *testing.T, page string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, svg := range svgRe.FindAllString(page, -1) {
		m := titleRe.FindStringSubmatch(svg)
		if m == nil {
			t.Fatalf("a chart without a title: %.200s", svg)
		}
		out[m[1]] = svg
	}
	return out
}

func chart(t *testing.T, page, prefix string) string {
	t.Helper()
	for title, svg := range charts(t, page) {
		if strings.HasPrefix(title, prefix) {
			return svg
		}
	}
	t.Fatalf("no chart titled %q…", prefix)
	return ""
}

var timeChartTitles = []string{"Throughput over time", "End-to-end latency over time", "Backlog on the volume", "CPU (", "Memory (PSS)"}

func TestTheTimeChartsShareOneTimeAxis(t *testing.T) {
	page := HTML(rampFixture(2))
	for _, title := range timeChartTitles {
		xs := xLabelRe.FindAllStringSubmatch(chart(t, page, title), -1)
		if len(xs) == 0 {
			t.Fatalf("%s: no time ticks", title)
		}
		// Committed data ends at 05:50: every chart runs to the next round minute, the
		// ones whose data stops earlier (latency, resources) too.
		if last := xs[len(xs)-1][1]; last != "06:00" {
			t.Errorf("%s: time axis ends at %s, want 06:00 like the others", title, last)
		}
		for _, x := range xs {
			if !strings.HasSuffix(x[1], ":00") {
				t.Errorf("%s: time tick %s is not on a round minute", title, x[1])
			}
		}
	}
}

func TestCountAxesPrintWholeNumbers(t *testing.T) {
	whole := regexp.MustCompile(`^[0-9][0-9,]*$`)
	for _, most := range []int64{0, 1, 2, 3, 5, 7, 12, 40} {
		svg := chart(t, HTML(rampFixture(most)), "Backlog on the volume")
		for _, l := range yLabelRe.FindAllStringSubmatch(svg, -1) {
			if !whole.MatchString(l[1]) {
				t.Errorf("backlog of at most %d files: axis label %q is not a whole number of files", most, l[1])
			}
		}
	}
}

func TestAxisLabelsAreShortAndDistinct(t *testing.T) {
	// A label like 0.6000000000000001 prints over the axis title beside it; two ticks
	// labelled 1 (0.5 and 1 rounded) misstate the scale. A slow run (about one row per
	// second) has ticks below one.
	slow := rampFixture(1)
	for i := range slow.Timeline {
		slow.Timeline[i].Offered /= 4000
		slow.Timeline[i].Throughput /= 4000
	}
	for _, r := range []*Report{rampFixture(1), slow} {
		for title, svg := range charts(t, HTML(r)) {
			seen := map[string]bool{}
			for _, l := range yLabelRe.FindAllStringSubmatch(svg, -1) {
				if len([]rune(l[1])) > 8 || seen[l[1]] {
					t.Errorf("%s: axis label %q (labels so far %v)", title, l[1], seen)
				}
				seen[l[1]] = true
			}
		}
	}
}

func TestEveryPointHasAHoverValue(t *testing.T) {
	r := rampFixture(2)
	svg := chart(t, HTML(r), "End-to-end latency over time")
	tips := map[string]string{}
	for _, m := range tipRe.FindAllStringSubmatch(svg, -1) {
		at, _, _ := strings.Cut(m[1], "\n")
		tips[at] = m[1]
	}
	for _, p := range r.Timeline {
		if p.Throughput == 0 {
			continue
		}
		tip := tips[clock(p.T)]
		for _, want := range []string{"P50: " + Dur(p.P50), "P95: " + Dur(p.P95), "P99: " + Dur(p.P99)} {
			if !strings.Contains(tip, want) {
				t.Fatalf("hovering %s shows %q, lacks %q", clock(p.T), tip, want)
			}
		}
	}
}

func TestRampStepsAreMarkedWhereTheyBegan(t *testing.T) {
	r := rampFixture(2)
	page := HTML(r)
	for _, title := range timeChartTitles {
		svg := chart(t, page, title)
		tickX := map[string]string{}
		for _, m := range tickLineR.FindAllStringSubmatch(svg, -1) {
			tickX[m[2]] = m[1]
		}
		marks := markRe.FindAllStringSubmatch(svg, -1)
		if len(marks) != len(r.Steps) {
			t.Fatalf("%s: %d step marks, want %d", title, len(marks), len(r.Steps))
		}
		for i, m := range marks {
			// Each step starts on a tick of the fixture: the mark stands on that tick.
			if at := clock(r.Steps[i].Start); m[1] != tickX[at] || m[2] != "step "+strconv.Itoa(r.Steps[i].Index) {
				t.Errorf("%s: %s at x=%s, want at the %s tick (x=%s)", title, m[2], m[1], at, tickX[at])
			}
		}
		if n := strings.Count(svg, `class="mk fail"`); n != 1 {
			t.Errorf("%s: %d failing steps marked, want the one", title, n)
		}
	}
}

func TestP95StaysVisibleBesideP99(t *testing.T) {
	svg := chart(t, HTML(rampFixture(2)), "End-to-end latency over time")
	lines := polyRe.FindAllStringSubmatch(svg, -1)
	// In the fixture P95 equals P99 at every moment: the line drawn last of the two must
	// let the other show through (dashed) in its own colour.
	var same [][]string
	for i := range lines {
		for j := range lines {
			if i < j && lines[i][3] == lines[j][3] {
				same = append(same, lines[i], lines[j])
			}
		}
	}
	if len(same) != 2 {
		t.Fatalf("want the P95 and P99 lines on the same points, found %d such lines", len(same))
	}
	under, over := same[0], same[1]
	if !strings.Contains(over[2], "stroke-dasharray") || over[1] == under[1] {
		t.Errorf("the upper of two equal lines is %q in %s over %q in %s: the lower one is hidden", over[2], over[1], under[2], under[1])
	}
}

func TestBarLabelsStayClearOfTheTitle(t *testing.T) {
	svg := chart(t, HTML(rampFixture(2)), "Latency distribution")
	m := regexp.MustCompile(`<text x="[0-9.]+" y="([0-9.]+)" class="bl[^"]*">99.8 %</text>`).FindStringSubmatch(svg)
	ty := regexp.MustCompile(`<text x="[0-9.]+" y="([0-9.]+)" class="ct">`).FindStringSubmatch(svg)
	if m == nil || ty == nil {
		t.Fatal("no 99.8 % label or no title")
	}
	label, title := atof(t, m[1]), atof(t, ty[1])
	// Text of 11-14 px: a baseline 16 units below the title's leaves the two apart.
	if label < title+16 {
		t.Errorf("the 99.8 %% label's baseline at y=%v is within a line of the title's at y=%v", label, title)
	}
}

func TestChartsFillTheColumn(t *testing.T) {
	page := HTML(rampFixture(2))
	open := regexp.MustCompile(`<svg [^>]*>`)
	for _, tag := range open.FindAllString(page, -1) {
		if !strings.Contains(tag, `width="100%"`) || !strings.Contains(tag, `viewBox="0 0 `) || strings.Contains(tag, "height=") {
			t.Errorf("a chart of fixed size: %s", tag)
		}
	}
	if !strings.Contains(page, "svg.chart{display:block;margin:.8rem 0;width:100%;height:auto") {
		t.Error("the page's style does not scale charts to the column")
	}
}

func atof(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
