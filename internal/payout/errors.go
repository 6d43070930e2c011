package payout

import "errors"

// Errors of this package; match them with errors.Is.
var (
	// ErrInvalid: a setting or an argument breaks a rule (negative reward,
	// fee over 100 %, a non-positive share weight, ...).
	ErrInvalid = errors.New("payout: invalid value")
	// ErrNoShares: a block has no shares to split its reward among (the
	// shares were deleted or never stored); the block stays matured.
	ErrNoShares = errors.New("payout: no shares in the PPLNS window")
	// ErrLocked: another payout run holds the advisory lock.
	ErrLocked = errors.New("payout: another payout run is in progress")
	// ErrInsufficientFunds: the wallet's spendable P2PKH outputs do not
	// cover a payment and its fee; the payment stays planned.
	ErrInsufficientFunds = errors.New("payout: wallet funds do not cover the payment")
	// ErrWallet: the wallet refused or failed a call (signing incomplete,
	// broadcast rejected, ...).
	ErrWallet = errors.New("payout: wallet error")
	// ErrDatabase: PostgreSQL failed or could not be reached.
	ErrDatabase = errors.New("payout: database error")
	// ErrConflict: the ledger is not in the state this run expected (a
	// concurrent change); rerunning is safe.
	ErrConflict = errors.New("payout: ledger changed underneath")
)
