package password

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ErrInvalid: the password is too long, or a stored hash or legacy digest
// is malformed or of an unknown scheme. A malformed stored hash is never a
// match.
var ErrInvalid = errors.New("password: invalid input")

// Params are the argon2id cost parameters of new password hashes.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultParams returns OWASP's minimum for argon2id (19 MiB, 2 passes,
// 1 lane): about 30 ms a hash on one core. stratumd verifies a password only
// when a miner authorizes, so the cost is paid once per connection.
func DefaultParams() Params {
	return Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

const (
	argonPrefix  = "$argon2id$"
	legacyPrefix = "$sha256d$"
)

// MaxLen bounds what is hashed, so that a huge password cannot be used to
// burn CPU: Hash refuses a longer password and Verify never matches one.
const MaxLen = 1024

// Hasher hashes and verifies passwords. Argon2id does it in-process;
// internal/pwworker's Client does it in a low-priority child process with
// the same answers. Implementations are safe for concurrent use.
type Hasher interface {
	// Hash returns the stored form of a new password.
	Hash(password string) (string, error)
	// Verify reports whether password matches stored, and whether stored
	// should be replaced by a fresh hash.
	Verify(stored, password string) (ok, rehash bool, err error)
}

// Argon2id hashes new passwords with argon2id and verifies argon2id and
// legacy hashes, in the calling goroutine. It is a Hasher; the zero value
// is not ready (Params must be set). It is safe for concurrent use.
type Argon2id struct {
	Params Params
}

var _ Hasher = Argon2id{}

// Hash returns a PHC-style argon2id string:
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt b64>$<key b64>.
func (h Argon2id) Hash(password string) (string, error) {
	if len(password) > MaxLen {
		return "", fmt.Errorf("password longer than %d bytes: %w", MaxLen, ErrInvalid)
	}
	p := h.Params
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("%sv=%d$m=%d,t=%d,p=%d$%s$%s", argonPrefix, argon2.Version,
		p.Memory, p.Time, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// LegacyHash returns the stored form of a bcoin-stratum password hash: the
// hex of SHA256(SHA256(password)), unsalted, as in its users.json.
func LegacyHash(hexDigest string) (string, error) {
	b, err := hex.DecodeString(hexDigest)
	if err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("legacy hash must be 64 hex digits: %w", ErrInvalid)
	}
	return legacyPrefix + hex.EncodeToString(b), nil
}

// Verify reports whether password matches the stored hash, and whether the
// hash should be replaced by a fresh one (legacy scheme or other parameters).
// A malformed stored hash is an error, never a match.
func (h Argon2id) Verify(stored, password string) (ok, rehash bool, err error) {
	if len(password) > MaxLen {
		return false, false, nil
	}
	switch {
	case strings.HasPrefix(stored, legacyPrefix):
		want, err := hex.DecodeString(stored[len(legacyPrefix):])
		if err != nil || len(want) != sha256.Size {
			return false, false, fmt.Errorf("stored legacy hash malformed: %w", ErrInvalid)
		}
		first := sha256.Sum256([]byte(password))
		got := sha256.Sum256(first[:])
		return subtle.ConstantTimeCompare(got[:], want) == 1, true, nil
	case strings.HasPrefix(stored, argonPrefix):
		p, salt, want, err := parseArgon(stored)
		if err != nil {
			return false, false, err
		}
		got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
		ok := subtle.ConstantTimeCompare(got, want) == 1
		return ok, ok && (p.Memory != h.Params.Memory || p.Time != h.Params.Time || p.Threads != h.Params.Threads), nil
	default:
		return false, false, fmt.Errorf("stored password hash of unknown scheme: %w", ErrInvalid)
	}
}

// parseArgon splits a PHC argon2id string, bounding the costs so that a row
// written by someone else cannot make verification take minutes or gigabytes.
func parseArgon(s string) (Params, []byte, []byte, error) {
	var p Params
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 {
		return p, nil, nil, fmt.Errorf("argon2id hash: want 6 fields, got %d: %w", len(parts), ErrInvalid)
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, fmt.Errorf("argon2id hash: version %q: %w", parts[2], ErrInvalid)
	}
	var threads uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &threads); err != nil {
		return p, nil, nil, fmt.Errorf("argon2id hash: params %q: %w", parts[3], ErrInvalid)
	}
	if p.Memory < 8 || p.Memory > 1<<20 || p.Time < 1 || p.Time > 16 || threads < 1 || threads > 16 {
		return p, nil, nil, fmt.Errorf("argon2id hash: params out of range %q: %w", parts[3], ErrInvalid)
	}
	p.Threads = uint8(threads)
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return p, nil, nil, fmt.Errorf("argon2id hash: salt: %w", ErrInvalid)
	}
	key, err := enc.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, fmt.Errorf("argon2id hash: key: %w", ErrInvalid)
	}
	return p, salt, key, nil
}
