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
