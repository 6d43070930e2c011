package miner

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by the Miner wrap them with detail.
var (
	// ErrClosed is returned by calls on a Miner whose connection is closed,
	// by Close or by the pool.
	ErrClosed = errors.New("miner: connection closed")

	// ErrProtocol reports a line from the pool that a real miner could not
	// use: invalid JSON, a reply to an id never sent, a malformed
	// mining.notify, a non-positive difficulty, a version mask outside the
	// requested one, ... The Miner closes the connection on it, so a pool bug
	// surfaces as an error instead of being silently skipped.
	ErrProtocol = errors.New("miner: protocol violation by the pool")

	// ErrLineTooLong reports a line from the pool longer than
	// Options.MaxLineLength.
	ErrLineTooLong = errors.New("miner: line too long")

	// ErrUnauthorized reports a mining.authorize that the pool refused.
	ErrUnauthorized = errors.New("miner: authorization refused")

	// ErrSubscribe reports a mining.subscribe that the pool refused or
	// answered with an unusable result.
	ErrSubscribe = errors.New("miner: subscribe failed")
)

// RPCError is the error member of a pool's reply: [code, "message", data]
// in Stratum v1 ({"code":..,"message":..} and a bare string are also
// understood).
type RPCError struct {
	Code    int
	Message string
}

// Error implements error.
func (e *RPCError) Error() string {
	return fmt.Sprintf("stratum error %d: %s", e.Code, e.Message)
}
