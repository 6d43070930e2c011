package httpapi_test

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// exposition is a parsed Prometheus text exposition.
type exposition struct {
	types   map[string]string  // family name → type
	help    map[string]string  // family name → help text (unescaped)
	samples map[string]float64 // series key name{k="v",...} (labels sorted) → value
}

// parseExposition parses the text format strictly: every sample belongs to
// a family whose HELP and TYPE came before it, label values are quoted and
// escaped correctly, values are floats, and no series appears twice.
func parseExposition(r io.Reader) (*exposition, error) {
	e := &exposition{types: map[string]string{}, help: map[string]string{}, samples: map[string]float64{}}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		l := sc.Text()
		if l == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(l, "# HELP "); ok {
			name, text, _ := strings.Cut(rest, " ")
			if _, dup := e.help[name]; dup {
				return nil, fmt.Errorf("line %d: second HELP for %s", line, name)
			}
			u, err := unescape(text, false)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			e.help[name] = u
			continue
		}
		if rest, ok := strings.CutPrefix(l, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			switch typ {
			case "counter", "gauge", "histogram", "summary", "untyped":
			default:
				return nil, fmt.Errorf("line %d: bad type %q", line, typ)
			}
			if _, ok := e.help[name]; !ok {
				return nil, fmt.Errorf("line %d: TYPE of %s before its HELP", line, name)
			}
			if _, dup := e.types[name]; dup {
				return nil, fmt.Errorf("line %d: second TYPE for %s", line, name)
			}
			e.types[name] = typ
			continue
		}
		if strings.HasPrefix(l, "#") {
			continue
		}
		key, value, err := parseSample(l)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", line, l, err)
		}
		name, _, _ := strings.Cut(key, "{")
		fam := name
		if _, ok := e.types[fam]; !ok {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suf); ok && e.types[b] == "histogram" {
					fam = b
				}
			}
		}
		if _, ok := e.types[fam]; !ok {
			return nil, fmt.Errorf("line %d: sample %s without TYPE", line, name)
		}
		if _, dup := e.samples[key]; dup {
			return nil, fmt.Errorf("line %d: duplicate series %s", line, key)
		}
		e.samples[key] = value
	}
	return e, sc.Err()
}

func isNameChar(c byte, first bool) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
}

// parseSample parses `name{labels} value` into a canonical key and value.
func parseSample(l string) (string, float64, error) {
	i := 0
	for i < len(l) && isNameChar(l[i], i == 0) {
		i++
	}
	if i == 0 {
		return "", 0, fmt.Errorf("no metric name")
	}
	name := l[:i]
	var labels []string
	if i < len(l) && l[i] == '{' {
		i++
		for {
			if i < len(l) && l[i] == '}' {
				i++
				break
			}
			j := i
			for j < len(l) && isNameChar(l[j], j == i) {
				j++
			}
			if j == i || j+1 >= len(l) || l[j] != '=' || l[j+1] != '"' {
				return "", 0, fmt.Errorf("bad label at %d", i)
			}
			lname := l[i:j]
			j += 2
			var val strings.Builder
			for {
				if j >= len(l) {
					return "", 0, fmt.Errorf("unterminated label value")
				}
				c := l[j]
				if c == '"' {
					j++
					break
				}
				if c == '\\' {
					if j+1 >= len(l) {
						return "", 0, fmt.Errorf("dangling backslash")
					}
					switch l[j+1] {
					case '\\':
						val.WriteByte('\\')
					case '"':
						val.WriteByte('"')
					case 'n':
						val.WriteByte('\n')
					default:
						return "", 0, fmt.Errorf("bad escape \\%c", l[j+1])
					}
					j += 2
					continue
				}
				if c == '\n' {
					return "", 0, fmt.Errorf("raw newline in label")
				}
				val.WriteByte(c)
				j++
			}
			labels = append(labels, lname+"="+strconv.Quote(val.String()))
			if j < len(l) && l[j] == ',' {
				j++
			}
			i = j
		}
	}
	if i >= len(l) || l[i] != ' ' {
		return "", 0, fmt.Errorf("no space before value")
	}
	var v float64
	switch s := l[i+1:]; s {
	case "+Inf":
		v = math.Inf(1)
	case "-Inf":
		v = math.Inf(-1)
	case "NaN":
		v = math.NaN()
	default:
		var err error
		if v, err = strconv.ParseFloat(s, 64); err != nil {
			return "", 0, fmt.Errorf("value %q: %w", s, err)
		}
	}
	sort.Strings(labels)
	if len(labels) > 0 {
		name += "{" + strings.Join(labels, ",") + "}"
	}
	return name, v, nil
}

func unescape(s string, quote bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", fmt.Errorf("dangling backslash")
		}
		i++
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case '"':
			if !quote {
				return "", fmt.Errorf("escaped quote in HELP")
			}
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("bad escape \\%c", s[i])
		}
	}
	return b.String(), nil
}

// key builds a series key as parseSample does: labels are name, value pairs.
func key(name string, labels ...string) string {
	var ls []string
	for i := 0; i+1 < len(labels); i += 2 {
		ls = append(ls, labels[i]+"="+strconv.Quote(labels[i+1]))
	}
	sort.Strings(ls)
	if len(ls) > 0 {
		name += "{" + strings.Join(ls, ",") + "}"
	}
	return name
}

// get returns a series' value, failing the test when it is missing.
func (e *exposition) get(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	k := key(name, labels...)
	v, ok := e.samples[k]
	if !ok {
		t.Fatalf("metric %s missing", k)
	}
	return v
}

func TestParseExpositionRejectsBadText(t *testing.T) {
	for name, text := range map[string]string{
		"no type":          "foo 1\n",
		"type before help": "# TYPE foo gauge\n# HELP foo x\nfoo 1\n",
		"bad value":        "# HELP foo x\n# TYPE foo gauge\nfoo one\n",
		"bad escape":       "# HELP foo x\n# TYPE foo gauge\nfoo{a=\"\\t\"} 1\n",
		"duplicate":        "# HELP foo x\n# TYPE foo gauge\nfoo 1\nfoo 2\n",
		"unterminated":     "# HELP foo x\n# TYPE foo gauge\nfoo{a=\"x} 1\n",
	} {
		if _, err := parseExposition(strings.NewReader(text)); err == nil {
			t.Errorf("%s: parsed %q", name, text)
		}
	}
	e, err := parseExposition(strings.NewReader("# HELP foo a \\\\ b\\nc\n# TYPE foo gauge\nfoo{b=\"2\",a=\"q\\\"\\n\\\\\"} +Inf\n"))
	if err != nil {
		t.Fatal(err)
	}
	if e.help["foo"] != "a \\ b\nc" || !math.IsInf(e.get(t, "foo", "a", "q\"\n\\", "b", "2"), 1) {
		t.Fatalf("parsed %+v", e)
	}
}
