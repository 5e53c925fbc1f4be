package stack

import dto "github.com/prometheus/client_model/go"

type dtoFamily = dto.MetricFamily

// sum adds the values of a counter or gauge family over its label sets.
func sum(fams map[string]*dtoFamily, name string) float64 {
	f, ok := fams[name]
	if !ok {
		return 0
	}
	var s float64
	for _, m := range f.GetMetric() {
		switch {
		case m.Counter != nil:
			s += m.GetCounter().GetValue()
		case m.Gauge != nil:
			s += m.GetGauge().GetValue()
		case m.Untyped != nil:
			s += m.GetUntyped().GetValue()
		}
	}
	return s
}

// histogram returns a histogram family's total count and sum.
func histogram(fams map[string]*dtoFamily, name string) (count, total float64) {
	f, ok := fams[name]
	if !ok {
		return 0, 0
	}
	for _, m := range f.GetMetric() {
		h := m.GetHistogram()
		count += float64(h.GetSampleCount())
		total += h.GetSampleSum()
	}
	return count, total
}
