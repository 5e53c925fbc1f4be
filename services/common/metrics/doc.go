package metrics

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Recorder is a Registerer that remembers what is registered on it, so that the metrics a
// service builds can be documented from the code that builds them (docs/metrics.md).
type Recorder struct {
	prometheus.Registerer
	collectors []prometheus.Collector
}

// NewRecorder records what is registered on reg.
func NewRecorder(reg prometheus.Registerer) *Recorder { return &Recorder{Registerer: reg} }

// Register implements prometheus.Registerer.
func (r *Recorder) Register(c prometheus.Collector) error {
	if err := r.Registerer.Register(c); err != nil {
		return err
	}
	r.collectors = append(r.collectors, c)
	return nil
}

// MustRegister implements prometheus.Registerer.
func (r *Recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Doc is one metric as docs/metrics.md lists it.
type Doc struct {
	Name, Type, Help string
	Labels           []string
	Values           map[string][]string // values of a label the code sets up front (outcomes), by label
	consts           int                 // Labels[:consts] are constant labels
}

// constNames are the names of d's constant labels.
func constNames(d *prometheus.Desc) []string {
	doc := parseDesc(d)
	return doc.Labels[:doc.consts]
}

// Docs lists the metrics of the recorded collectors in the order they were registered.
// A metric's type is what its collector writes; a collector that describes series it has
// not measured yet (the collector service's, before its first measurement) is typed by
// the naming rule its code follows: counters end in _total, the rest are gauges.
func (r *Recorder) Docs() []Doc {
	var docs []Doc
	for _, c := range r.collectors {
		types, values := collected(c)
		descs := make(chan *prometheus.Desc)
		go func() { c.Describe(descs); close(descs) }()
		for d := range descs {
			doc := parseDesc(d)
			doc.Values = values[doc.Name]
			switch {
			case types[doc.Name] != "":
				doc.Type = types[doc.Name]
			case vecType(c) != "":
				doc.Type = vecType(c)
			case strings.HasSuffix(doc.Name, "_total"):
				doc.Type = "counter"
			default:
				doc.Type = "gauge"
			}
			docs = append(docs, doc)
		}
	}
	return docs
}

// collected says, by name, the type of the series c has now and the values their labels
// have (a vector whose outcomes are set up front shows them).
func collected(c prometheus.Collector) (map[string]string, map[string]map[string][]string) {
	ms := make(chan prometheus.Metric)
	go func() { c.Collect(ms); close(ms) }()
	types, values := map[string]string{}, map[string]map[string][]string{}
	for m := range ms {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			continue
		}
		t := "untyped"
		switch {
		case pb.Counter != nil:
			t = "counter"
		case pb.Gauge != nil:
			t = "gauge"
		case pb.Histogram != nil:
			t = "histogram"
		case pb.Summary != nil:
			t = "summary"
		}
		d := parseDesc(m.Desc())
		types[d.Name] = t
		for _, lp := range pb.Label {
			if !slices.Contains(d.Labels, lp.GetName()) || slices.Contains(constNames(m.Desc()), lp.GetName()) {
				continue
			}
			if values[d.Name] == nil {
				values[d.Name] = map[string][]string{}
			}
			if vs := values[d.Name][lp.GetName()]; !slices.Contains(vs, lp.GetValue()) {
				values[d.Name][lp.GetName()] = append(vs, lp.GetValue())
			}
		}
	}
	for _, byLabel := range values {
		for _, vs := range byLabel {
			slices.Sort(vs) // a vector collects its series in no fixed order
		}
	}
	return types, values
}

// vecType is the type of a metric vector, which has no series before its first labels.
func vecType(c prometheus.Collector) string {
	switch c.(type) {
	case *prometheus.CounterVec:
		return "counter"
	case *prometheus.GaugeVec:
		return "gauge"
	case *prometheus.HistogramVec:
		return "histogram"
	case *prometheus.SummaryVec:
		return "summary"
	}
	return ""
}

// descRE reads Desc.String(), the only way client_golang shows a descriptor's parts.
var descRE = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), help: ("(?:[^"\\]|\\.)*"), unit: "(?:[^"\\]|\\.)*", constLabels: \{(.*)\}, variableLabels: \{([^}]*)\}\}$`)

// constLabelRE finds the names in a descriptor's constant labels (name="value",...).
var constLabelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"`)

func parseDesc(d *prometheus.Desc) Doc {
	m := descRE.FindStringSubmatch(d.String())
	if m == nil {
		panic(fmt.Sprintf("metrics: cannot read descriptor %s", d))
	}
	name, _ := strconv.Unquote(m[1])
	help, _ := strconv.Unquote(m[2])
	doc := Doc{Name: name, Help: help}
	for _, c := range constLabelRE.FindAllStringSubmatch(m[3], -1) {
		doc.Labels = append(doc.Labels, c[1])
	}
	doc.consts = len(doc.Labels)
	if m[4] != "" {
		for _, l := range strings.Split(m[4], ",") {
			doc.Labels = append(doc.Labels, strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"))
		}
	}
	return doc
}

// Table is docs as a Markdown table.
func Table(docs []Doc) string {
	var b strings.Builder
	b.WriteString("| metric | type | labels | help |\n|---|---|---|---|\n")
	for _, d := range docs {
		labels := make([]string, len(d.Labels))
		for i, l := range d.Labels {
			labels[i] = "`" + l + "`"
			if vs := d.Values[l]; len(vs) > 0 {
				labels[i] += " = " + strings.Join(vs, ", ")
			}
		}
		help := strings.ReplaceAll(strings.ReplaceAll(d.Help, "|", `\|`), "\n", " ")
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", d.Name, d.Type, strings.Join(labels, ", "), help)
	}
	return b.String()
}

// Section replaces, in the file at path, the text between the lines
// "<!-- BEGIN generated: name -->" and "<!-- END generated: name -->" with text, and
// tells whether the file already held it. With write false the file is left as it is.
func Section(path, name, text string, write bool) (current bool, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("metrics doc: %w", err)
	}
	begin, end := "<!-- BEGIN generated: "+name+" -->\n", "<!-- END generated: "+name+" -->"
	i, j := strings.Index(string(b), begin), strings.Index(string(b), end)
	if i < 0 || j < i {
		return false, fmt.Errorf("metrics doc %s: no %q ... %q section", path, strings.TrimSpace(begin), end)
	}
	i += len(begin)
	if string(b[i:j]) == text {
		return true, nil
	}
	if write {
		out := string(b[:i]) + text + string(b[j:])
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			return false, fmt.Errorf("metrics doc: %w", err)
		}
	}
	return false, nil
}
