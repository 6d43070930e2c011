package embedded

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; the returned
// errors wrap them with detail. The node also returns chain.ErrClosed once
// closed and chain.ErrNotSynced from Template while the chain is syncing.
var (
	// ErrInvalidConfig reports a Config that cannot build a node.
	ErrInvalidConfig = errors.New("embedded: invalid config")

	// ErrAlreadyRunning is returned by a second call of Run.
	ErrAlreadyRunning = errors.New("embedded: node already running")

	// ErrNotDevNetwork is returned by Generate off regtest and simnet.
	ErrNotDevNetwork = errors.New("embedded: only on regtest and simnet")

	// ErrMalformed reports a nil block or transaction, or one with nil
	// parts, handed to SubmitBlock or SubmitTx.
	ErrMalformed = errors.New("embedded: malformed block or transaction")

	// ErrTxRejected reports a transaction the mempool refused; the error
	// also wraps the mempool's RuleError.
	ErrTxRejected = errors.New("embedded: transaction rejected")
)
