package payout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stratumd/stratumd/internal/store"
)

// The ledger is PostgreSQL behind the store (internal/store speaks all the
// SQL: store.PayoutRun implements LedgerRun). This package decides; the
// store records. Like dcrpool's payment manager, the Payer talks to the
// database only through these interfaces.

// Ledger opens the ledger for one run; StoreLedger adapts a *store.Store.
type Ledger interface {
	// BeginRun takes the payout lock (ErrLocked when another run holds
	// it) and returns the run's view of the ledger. With dryRun nothing
	// the run writes outlives End.
	BeginRun(ctx context.Context, dryRun bool) (LedgerRun, error)
}

// LedgerRun is the ledger as one run sees it. Errors wrap the store's
// sentinels (store.ErrConflict when a row is not in the state expected,
// store.ErrUnavailable, ...); the Payer translates them with fromStore.
type LedgerRun interface {
	ShareSource
	BlockLedger
	PaymentLedger
	// End ends the run: a dry run's writes are undone, the lock released.
	End(ctx context.Context)
}

// ShareSource reads the shares a PPLNS window walk needs (see
// SelectWindow). *store.Store implements it.
type ShareSource interface {
	// ShareBuckets sums per user and per time bucket of width the shares
	// of [lo, hi) up to last.
	ShareBuckets(ctx context.Context, lo, hi time.Time, last store.SharePos, width time.Duration) ([]store.ShareBucket, error)
	// WalkShares calls fn on the shares of [lo, hi) up to last, newest
	// first, until fn returns false.
	WalkShares(ctx context.Context, lo, hi time.Time, last store.SharePos, fn func(store.WindowShare) bool) error
	// ShareTimeBefore is the time of the newest share before t
	// (store.ErrNotFound: none).
	ShareTimeBefore(ctx context.Context, t time.Time) (time.Time, error)
	// FirstShareFrom is the oldest share at or after lo, up to last.
	FirstShareFrom(ctx context.Context, lo time.Time, last store.SharePos) (store.SharePos, error)
}

// BlockLedger is the blocks side of the ledger.
type BlockLedger interface {
	// UnsettledBlocks: submitted, confirmed, matured and orphaned blocks.
	UnsettledBlocks(ctx context.Context) ([]store.Block, error)
	// MoveBlock moves a block's status from from to to.
	MoveBlock(ctx context.Context, hash string, from, to store.BlockStatus, reason string) error
	// MaturedBlocks: the blocks due to be credited.
	MaturedBlocks(ctx context.Context) ([]store.Block, error)
	// CreditBlock records a matured block's split and moves it to
	// credited, in one transaction: exactly once.
	CreditBlock(ctx context.Context, c store.BlockCredit) error
}

// PaymentLedger is the payments side of the ledger.
type PaymentLedger interface {
	// DueBalances: balances of at least min satoshis.
	DueBalances(ctx context.Context, min int64) ([]store.DueBalance, error)
	// PlanPayments records one planned payment per batch, in one
	// transaction.
	PlanPayments(ctx context.Context, feeRate int64, batches [][]store.PaymentOutput) ([]store.OpenPayment, error)
	// OpenPayments: the payments that are not final, with outputs and
	// transactions.
	OpenPayments(ctx context.Context) ([]store.OpenPayment, error)
	// Payment: one payment in any state (store.ErrNotFound: none).
	Payment(ctx context.Context, id int64) (store.OpenPayment, error)
	// OpenInputs: the inputs of the open payments that may spend them.
	OpenInputs(ctx context.Context) ([]store.PaymentInput, error)
	// RecordedInputs: every input a payment ever recorded.
	RecordedInputs(ctx context.Context) ([]store.PaymentInput, error)
	// PaymentInputs: the inputs of one payment.
	PaymentInputs(ctx context.Context, id int64) ([]store.PaymentInput, error)
	// ReserveInputs records the inputs a planned payment is about to
	// lock and sign.
	ReserveInputs(ctx context.Context, id int64, ins []store.PaymentInput) error
	// StoreSigned stores a planned payment's first transaction (signed).
	StoreSigned(ctx context.Context, id int64, tx store.PaymentTx) error
	// AddPaymentTx stores a bump or abandon transaction of a payment and
	// moves its state from from to to, in one transaction.
	AddPaymentTx(ctx context.Context, id int64, from, to string, tx store.PaymentTx) error
	// SettlePayment moves a payment to a final state: confirmed or
	// abandoned by its transaction txid, or failed (txid "") with a note.
	SettlePayment(ctx context.Context, id int64, from, to, txid, blockHash, note string) error
	// NoteConflict records the height at which an input was first seen
	// spent by none of the payment's transactions (0 clears it).
	NoteConflict(ctx context.Context, id int64, height int64) error
	// MovePayment moves a payment's state from from to to.
	MovePayment(ctx context.Context, id int64, from, to, blockHash string) error
	// RecordPaymentError stores a payment's last error.
	RecordPaymentError(ctx context.Context, id int64, msg string) error
}

// StoreLedger is the Ledger of st.
func StoreLedger(st *store.Store) Ledger { return storeLedger{st} }

type storeLedger struct{ st *store.Store }

func (l storeLedger) BeginRun(ctx context.Context, dryRun bool) (LedgerRun, error) {
	r, err := l.st.BeginPayoutRun(ctx, dryRun)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// fromStore translates an error of the ledger (the store's sentinels,
// which the store mapped from the driver's errors) into this package's:
// ErrLocked, ErrConflict when a row was not where the run expected it
// (store.ErrConflict, ErrExists, ErrNotFound), ErrDatabase for the rest.
// Context cancellation passes through unchanged.
func fromStore(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(err, store.ErrLocked):
		return ErrLocked
	case errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%s: %w: %w", op, ErrConflict, err)
	}
	return fmt.Errorf("%s: %w: %w", op, ErrDatabase, err)
}
