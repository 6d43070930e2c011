package username_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stratumd/stratumd/internal/username"
)

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", true},
		{"o'neil;--", true}, // SQL metacharacters without spaces are names
		{"Zoë", true},
		{strings.Repeat("z", username.MaxLen), true},
		{"", false},
		{strings.Repeat("z", username.MaxLen+1), false},
		{"a b", false},
		{"a.b", false}, // the dot separates user from worker
		{"x\x00y", false},
		{"tab\there", false},
		{"del\x7f", false},
		{"c1\u0085", false},
		{"bad\xffutf8", false},
		{"'; DROP TABLE users; --", false},
	} {
		err := username.Valid(tc.name)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, username.ErrInvalid) {
			t.Errorf("Valid(%q) = %v, want ok=%v (or ErrInvalid)", tc.name, err, tc.ok)
		}
	}
}
