package wire

import (
	"encoding/json"
	"testing"
)

// jsonString (with its fast path for plain strings) gives encoding/json's
// answer: the same string, or an error where encoding/json has one.
func TestJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`"bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080.rig1"`, `""`, `"x"`, `"héllo ✓"`,
		`"a\"b"`, `"a\\b"`, `"a\u0041"`, "\"a\tb\"", "\"\xff\"", `"unterminated`, `"`, `"a" `, `"a"b"`,
	} {
		checkJSONString(t, in)
	}
}

func checkJSONString(t *testing.T, in string) {
	t.Helper()
	got, err := jsonString(json.RawMessage(in), "user")
	var want string
	werr := json.Unmarshal([]byte(in), &want)
	if (err != nil) != (werr != nil) || got != want {
		t.Errorf("jsonString(%q) = %q, %v; encoding/json %q, %v", in, got, err, want, werr)
	}
}

func FuzzJSONString(f *testing.F) {
	for _, s := range []string{`"abc"`, `"a\"b"`, "\"\xff\"", `"é"`, `""`, `"a"b"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) == 0 || in[0] != '"' {
			return // jsonString's own check, before any decoding
		}
		checkJSONString(t, in)
	})
}

// splitParams (with its fast path for arrays of plain strings and nulls)
// splits params into the elements encoding/json finds, or fails where it
// fails.
func TestSplitParamsMatchesEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`["cpuminer/2.5.1"]`, `["bcrt1q.rig", "x"]`, ` [ "a" , null ] `, `[]`, `null`, `[1]`, `["a",{"b":1}]`,
		`["a\"b"]`, `["a",]`, `["a"`, `["a"]x`, `[null,"é"]`,
	} {
		checkSplitParams(t, in)
	}
}

func checkSplitParams(t *testing.T, in string) {
	t.Helper()
	got, err := splitParams(json.RawMessage(in))
	var want []json.RawMessage
	werr := json.Unmarshal([]byte(in), &want)
	if (err != nil) != (werr != nil) {
		t.Fatalf("splitParams(%q) error %v, encoding/json %v", in, err, werr)
	}
	if err != nil {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("splitParams(%q) = %q, encoding/json %q", in, got, want)
	}
	for i := range got {
		if string(got[i]) != string(want[i]) {
			t.Fatalf("splitParams(%q) = %q, encoding/json %q", in, got, want)
		}
	}
}

func FuzzSplitParams(f *testing.F) {
	for _, s := range []string{`["a","b"]`, ` [ null ] `, `[]`, `["a",1]`, `["a"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) == 0 {
			return // splitParams: no params at all, before any decoding
		}
		checkSplitParams(t, in)
	})
}
