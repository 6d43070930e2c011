package chain

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; the returned
// errors wrap them with the detail of what was wrong.
var (
	// ErrNotSynced is returned by a Source that cannot build templates yet
	// because its node is still syncing the chain.
	ErrNotSynced = errors.New("chain: node not synced")

	// ErrClosed is returned by a Source that has been stopped.
	ErrClosed = errors.New("chain: source closed")

	// ErrInvalidConfig reports a CoinbaseConfig that cannot build a
	// coinbase (empty payout script, extranonce sizes out of range, ...).
	ErrInvalidConfig = errors.New("chain: invalid coinbase config")

	// ErrInvalidTemplate reports a Template that cannot become a job (nil,
	// height below 1, coinbase value out of range, bad bits, ...).
	ErrInvalidTemplate = errors.New("chain: invalid template")

	// ErrCoinbaseTooLong reports that the BIP34 height push and the
	// extranonce slot do not fit in the 100-byte coinbase scriptSig.
	ErrCoinbaseTooLong = errors.New("chain: coinbase scriptSig too long")

	// ErrExtranonceSize reports an extranonce1 or extranonce2 whose length
	// differs from the job's configured sizes.
	ErrExtranonceSize = errors.New("chain: wrong extranonce size")

	// ErrInvalidDifficulty reports a difficulty that is NaN, infinite,
	// zero or negative.
	ErrInvalidDifficulty = errors.New("chain: invalid difficulty")

	// ErrUnmineableSignet reports a signet whose block challenge needs a
	// solution stratumd cannot make (BIP 325): every signet block must
	// carry a solution to the network's challenge script, so only its
	// signers can mine the default signet. A custom signet whose challenge
	// is OP_TRUE (51) needs no solution and is mineable.
	ErrUnmineableSignet = errors.New("chain: signet challenge needs the signers' signature; stratumd can mine only a signet whose challenge is OP_TRUE (51)")
)
