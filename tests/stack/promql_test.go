package stack

import (
	"fmt"
	"strings"
	"testing"
)

// selector is one metric selector of a PromQL expression, as dashboard-linter's rules
// see it: its metric name, its range ("" for an instant vector) and the function whose
// direct argument it is ("" when none).
type selector struct {
	name, rng, call string
}

// promqlKeywords are identifiers that are not metric names.
var promqlKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true,
}

// selectors scans expr (Grafana variables allowed) for metric selectors. It is a small
// scanner rather than the PromQL parser (whose module would pull Prometheus' TSDB into this
// test module); what it recognises is what the linter's target rules need: string
// literals and {...} matchers are skipped, identifiers followed by "(" are calls,
// identifiers in by/without/on/ignoring/group_* lists are labels.
func selectors(expr string) ([]selector, error) {
	type paren struct {
		call   string
		labels bool
	}
	var stack []paren
	var out []selector
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
	}
	skipSpace := func(i int) int {
		for i < len(expr) && (expr[i] == ' ' || expr[i] == '\n' || expr[i] == '\t') {
			i++
		}
		return i
	}
	// closing returns the index just past the bracket that closes the one at i.
	closing := func(i int, open, close byte) (int, error) {
		depth := 0
		for j := i; j < len(expr); j++ {
			switch c := expr[j]; {
			case c == '"' || c == '\'' || c == '`':
				k := strings.IndexByte(expr[j+1:], c)
				if k < 0 {
					return 0, fmt.Errorf("unterminated string in %q", expr)
				}
				j += k + 1
			case c == open:
				depth++
			case c == close:
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("unbalanced %c in %q", open, expr)
	}
	lastWord := ""
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			k := strings.IndexByte(expr[i+1:], c)
			if k < 0 {
				return nil, fmt.Errorf("unterminated string in %q", expr)
			}
			i += k + 2
		case c == '$': // a Grafana variable outside a selector: $__range and the like
			i++
			for i < len(expr) && isIdent(expr[i], false) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i], false) || expr[i] == '.') {
				i++ // numbers, durations (5m), exponents
			}
		case isIdent(c, true):
			start := i
			for i < len(expr) && isIdent(expr[i], false) {
				i++
			}
			word := expr[start:i]
			j := skipSpace(i)
			inLabels := len(stack) > 0 && stack[len(stack)-1].labels
			switch {
			case j < len(expr) && expr[j] == '(':
				lastWord = word
			case inLabels || promqlKeywords[strings.ToLower(word)]:
				lastWord = word
			default:
				s := selector{name: word}
				if j < len(expr) && expr[j] == '{' {
					end, err := closing(j, '{', '}')
					if err != nil {
						return nil, err
					}
					i, j = end, skipSpace(end)
				}
				if j < len(expr) && expr[j] == '[' {
					end, err := closing(j, '[', ']')
					if err != nil {
						return nil, err
					}
					s.rng = expr[j+1 : end-1]
					i = end
				}
				// A direct argument: the innermost call's "(" precedes it, and "," or ")" follows.
				before := strings.TrimRight(expr[:start], " \n\t")
				after := skipSpace(i)
				if len(stack) > 0 && strings.HasSuffix(before, "(") && after < len(expr) && (expr[after] == ')' || expr[after] == ',') {
					s.call = stack[len(stack)-1].call
				}
				out = append(out, s)
				lastWord = ""
			}
		case c == '{': // a selector without a name: {__name__=...}
			end, err := closing(i, '{', '}')
			if err != nil {
				return nil, err
			}
			i = end
		case c == '(':
			w := strings.ToLower(lastWord)
			labels := w == "by" || w == "without" || w == "on" || w == "ignoring" || w == "group_left" || w == "group_right"
			call := ""
			if !labels && strings.HasSuffix(strings.TrimRight(expr[:i], " \n\t"), lastWord) && lastWord != "" {
				call = lastWord
			}
			stack = append(stack, paren{call: call, labels: labels})
			lastWord = ""
			i++
		case c == ')':
			if len(stack) == 0 {
				return nil, fmt.Errorf("unbalanced ) in %q", expr)
			}
			stack = stack[:len(stack)-1]
			i++
		default:
			lastWord = ""
			i++
		}
	}
	if len(stack) != 0 {
		return nil, fmt.Errorf("unbalanced ( in %q", expr)
	}
	return out, nil
}

// counterAggProblem is dashboard-linter's target-counter-agg rule: a counter (a name
// ending in _total; stricter than the linter, also a histogram's _bucket, _sum and _count
// series) is only read through rate, irate or increase over a range.
func counterAggProblem(expr string) (string, error) {
	ss, err := selectors(expr)
	if err != nil {
		return "", err
	}
	for _, s := range ss {
		counter := false
		for _, suffix := range []string{"_total", "_bucket", "_sum", "_count"} {
			counter = counter || strings.HasSuffix(s.name, suffix)
		}
		if counter && (s.rng == "" || (s.call != "rate" && s.call != "irate" && s.call != "increase")) {
			return fmt.Sprintf("counter %s is not aggregated with rate, irate or increase", s.name), nil
		}
	}
	return "", nil
}

// rateIntervalProblem is dashboard-linter's target-rate-interval rule: a range under
// rate or irate is $__rate_interval.
func rateIntervalProblem(expr string) (string, error) {
	ss, err := selectors(expr)
	if err != nil {
		return "", err
	}
	for _, s := range ss {
		if s.rng != "" && (s.call == "rate" || s.call == "irate") && s.rng != "$__rate_interval" && s.rng != "${__rate_interval}" {
			return fmt.Sprintf("%s(%s[%s]) should use $__rate_interval", s.call, s.name, s.rng), nil
		}
	}
	return "", nil
}

// The checks find what the linter finds, and nothing in what it accepts.
func TestLinterTargetRulesFindProblems(t *testing.T) {
	for _, tc := range []struct {
		expr              string
		counter, interval bool
	}{
		{`sum(ecomstream_generator_records_total)`, true, false},
		{`sum by (job) (rate(process_cpu_seconds_total{job=~"$job"}[1m]))`, false, true},
		{`rate(x_total[$__rate_interval])`, false, false},
		{`sum(increase(x_total{a="b"}[$__range]))`, false, false},
		{`histogram_quantile(0.95, sum by (instance, le) (rate(h_bucket{instance=~"$instance"}[5m])))`, false, true},
		{`sum by (instance) (rate(a_total{outcome="x"}[$__rate_interval])) / sum by (instance) (rate(a_total[$__rate_interval]))`, false, false},
		{`max_over_time(x_total[5m])`, true, false},
		{`x_total offset 5m`, true, false},
		{`label_replace(100 * sum(m{b=~"a|b"}) / scalar(sum(m)), "band", "x_total", "", "")`, false, false},
		{`count(up == 0) or vector(0)`, false, false},
		{`histogram_quantile(0.5, sum by (le) (h_bucket))`, true, false},
		{`sum(h_sum) / sum(h_count)`, true, false},
		{`1 - sum(rate(c_total{mode="idle"}[$__rate_interval])) / sum(rate(c_total[$__rate_interval]))`, false, false},
	} {
		c, err := counterAggProblem(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := rateIntervalProblem(tc.expr)
		if (c != "") != tc.counter || (r != "") != tc.interval {
			t.Errorf("%s: counter problem %q (want %v), rate interval problem %q (want %v)", tc.expr, c, tc.counter, r, tc.interval)
		}
	}
	if _, err := selectors(`sum(rate(x[5m])`); err == nil {
		t.Error("unbalanced expression accepted")
	}
}
