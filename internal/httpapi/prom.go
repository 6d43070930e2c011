package httpapi

import (
	"bufio"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ContentTypeMetrics is the content type of the Prometheus text
// exposition format, version 0.0.4.
const ContentTypeMetrics = "text/plain; version=0.0.4; charset=utf-8"

// Metric types of the exposition format.
const (
	typeCounter   = "counter"
	typeGauge     = "gauge"
	typeHistogram = "histogram"
)

// promWriter writes the Prometheus text exposition format: each family's
// HELP and TYPE lines, then its samples. Write errors are sticky in the
// bufio.Writer and reported by its Flush.
type promWriter struct {
	w *bufio.Writer
}

// family starts a metric family.
func (p *promWriter) family(name, typ, help string) {
	p.w.WriteString("# HELP ")
	p.w.WriteString(name)
	p.w.WriteByte(' ')
	p.w.WriteString(escapeHelp(help))
	p.w.WriteString("\n# TYPE ")
	p.w.WriteString(name)
	p.w.WriteByte(' ')
	p.w.WriteString(typ)
	p.w.WriteByte('\n')
}

// sample writes one sample; labels are name, value pairs.
func (p *promWriter) sample(name string, v float64, labels ...string) {
	p.w.WriteString(name)
	if len(labels) > 0 {
		p.w.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				p.w.WriteByte(',')
			}
			p.w.WriteString(labels[i])
			p.w.WriteString(`="`)
			p.w.WriteString(escapeLabel(labels[i+1]))
			p.w.WriteByte('"')
		}
		p.w.WriteByte('}')
	}
	p.w.WriteByte(' ')
	p.w.WriteString(formatValue(v))
	p.w.WriteByte('\n')
}

// single writes a family with one unlabelled sample.
func (p *promWriter) single(name, typ, help string, v float64) {
	p.family(name, typ, help)
	p.sample(name, v)
}

// byLabel writes a counter family with one sample per key of m, labelled
// label=key, in key order.
func (p *promWriter) byLabel(name, help, label string, m map[string]uint64) {
	p.family(name, typeCounter, help)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p.sample(name, float64(m[k]), label, k)
	}
}

// formatValue formats a sample value as the format wants it.
func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// escapeHelp escapes a HELP text: backslash and newline.
func escapeHelp(s string) string { return escape(s, false) }

// escapeLabel escapes a label value: backslash, newline and double quote.
func escapeLabel(s string) string { return escape(s, true) }

func escape(s string, quote bool) string {
	if !strings.ContainsAny(s, "\\\n\"") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '"' && quote:
			b.WriteString(`\"`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
