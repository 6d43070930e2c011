package username

import (
	"errors"
	"fmt"
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
