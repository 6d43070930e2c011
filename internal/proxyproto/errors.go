package proxyproto

import "errors"

// Errors of the codec and the listener.
var (
	// ErrIncomplete: the bytes are a proper prefix of a header; more are
	// needed.
	ErrIncomplete = errors.New("proxyproto: incomplete header")
	// ErrNoHeader: the bytes do not start with a PROXY header signature.
	ErrNoHeader = errors.New("proxyproto: no PROXY header")
	// ErrMalformed: the bytes start like a header but break the
	// specification.
	ErrMalformed = errors.New("proxyproto: malformed header")
	// ErrTooLong: the header is longer than allowed.
	ErrTooLong = errors.New("proxyproto: header too long")
	// ErrUntrustedHeader: a source that is not trusted sent a header; its
	// connection is closed.
	ErrUntrustedHeader = errors.New("proxyproto: PROXY header from an untrusted source")
	// ErrConfig: a Config or trusted-source entry is invalid.
	ErrConfig = errors.New("proxyproto: invalid configuration")
)
