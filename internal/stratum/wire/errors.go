package wire

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by DecodeRequest wraps ErrMalformed
// (and one of the more specific request errors); every error returned by a
// params decoder wraps ErrInvalidParams. A session counts both kinds and
// disconnects a client that keeps sending them.
var (
	// ErrMalformed reports a line that is not a well-formed Stratum request.
	ErrMalformed = errors.New("stratum: malformed request")

	// ErrInvalidUTF8 reports a line that is not valid UTF-8. It wraps ErrMalformed.
	ErrInvalidUTF8 = fmt.Errorf("%w: invalid UTF-8", ErrMalformed)

	// ErrTooDeep reports JSON nested deeper than MaxDepth. It wraps ErrMalformed.
	ErrTooDeep = fmt.Errorf("%w: nesting too deep", ErrMalformed)

	// ErrNotObject reports a line that is not a JSON object. It wraps ErrMalformed.
	ErrNotObject = fmt.Errorf("%w: not a JSON object", ErrMalformed)

	// ErrBadID reports an id that is not a number, a string or null. It wraps ErrMalformed.
	ErrBadID = fmt.Errorf("%w: id must be a number, a string or null", ErrMalformed)

	// ErrBadMethod reports a missing, empty or non-string method. It wraps ErrMalformed.
	ErrBadMethod = fmt.Errorf("%w: method must be a non-empty string", ErrMalformed)

	// ErrBadParams reports params that are neither an array, null nor absent.
	// It wraps ErrMalformed.
	ErrBadParams = fmt.Errorf("%w: params must be an array", ErrMalformed)

	// ErrInvalidParams reports params that are a JSON array but do not fit the
	// method: a required element missing, a wrong type, bad hex, a wrong length
	// or a value out of range. The session answers with CodeOther.
	ErrInvalidParams = errors.New("stratum: invalid params")

	// ErrInvalidDifficulty reports a difficulty that cannot be sent to a miner
	// (not a positive finite number).
	ErrInvalidDifficulty = errors.New("stratum: invalid difficulty")

	// ErrLineTooLong reports a line longer than the LineReader's maximum. The
	// session disconnects the client; the LineReader is unusable afterwards.
	ErrLineTooLong = errors.New("stratum: line too long")
)
