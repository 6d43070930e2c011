package p2p

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; the returned
// errors wrap them with detail.
var (
	// ErrInvalidConfig reports a Config that cannot build the P2P layer.
	ErrInvalidConfig = errors.New("p2p: invalid config")

	// ErrAlreadyRunning is returned by a second call of Run.
	ErrAlreadyRunning = errors.New("p2p: already running")

	// ErrStopped is returned by Connect once the node is shutting down or
	// before it runs.
	ErrStopped = errors.New("p2p: not running")
)
