package username

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxLen bounds user names, in bytes (the schema checks the same).
const MaxLen = 128

// ErrInvalid: the name breaks the rule. Valid's errors wrap it.
var ErrInvalid = errors.New("invalid user name")

// Valid returns nil when name may name a user: 1 to MaxLen bytes of valid
// UTF-8 without spaces, control characters (C0, DEL, C1) or a '.';
// otherwise an error wrapping ErrInvalid.
func Valid(name string) error {
	if name == "" || len(name) > MaxLen || !utf8.ValidString(name) {
		return fmt.Errorf("%w: want 1 to %d bytes of UTF-8", ErrInvalid, MaxLen)
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || r == '.' || (r >= 0x80 && r <= 0x9f) {
			return fmt.Errorf("%w %q: no spaces, dots or control characters", ErrInvalid, name)
		}
	}
	return nil
}

// SoloPrefix starts the user name of a solo miner, "solo:<address>": the
// name its shares and blocks are stored under. Shares under such a name
// are kept for statistics but never counted in a PPLNS window, and a
// block found under one is never credited; the store refuses to create
// an account with such a name, so no pool user's shares can be taken
// for solo ones.
const SoloPrefix = "solo:"

// IsSolo reports whether name is a solo miner's (starts with SoloPrefix).
func IsSolo(name string) bool { return strings.HasPrefix(name, SoloPrefix) }
