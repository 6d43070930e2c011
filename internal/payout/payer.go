package payout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/btcsuite/btcd/chaincfg"
)

// PaymentConfirmations is how many confirmations move a payment from
// broadcast to confirmed.
const PaymentConfirmations = 1

// Options are the money and chain settings of a Payer.
type Options struct {
	// Params is the network; addresses are decoded for it and its coinbase
	// maturity applies.
	Params *chaincfg.Params
	// PPLNSFactor: the window is PPLNSFactor × the block's network
	// difficulty of share difficulty. Default 2.
	PPLNSFactor float64
	// FeeBPS is the pool fee in basis points (0-10000).
	FeeBPS int
	// MinPayout: balances at or above it (satoshis) are paid. At least
	// MinPayoutFloor.
	MinPayout int64
	// FeeRate of payment transactions in sat/vB. Default 1.
	FeeRate int64
	// MaturityMargin: blocks are credited at Params.CoinbaseMaturity +
	// MaturityMargin confirmations.
	MaturityMargin int64
	// MaxOutputs bounds the outputs of one payment transaction; more
	// recipients make several payments. Default 200.
	MaxOutputs int
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// ConflictConfirmations: a conflicting spend of a payment's inputs (its
	// abandon transaction, or a transaction that is none of its own) must
	// have this many confirmations before the payment's outputs count as
	// unpaid again, so that a reorganization cannot bring the payment back
	// after it was paid anew. Default 6.
	ConflictConfirmations int
	// KeepForeignLocks: release only wallet locks of outputs some payment
	// recorded. By default payout is the wallet's only locker and every
	// lock that is not an input of an open payment is released at the
	// start of a run; set this when an operator locks outputs of the same
	// wallet by hand. (Locks leaked by payout versions that did not record
	// inputs before locking are then released only by a wallet restart.)
	KeepForeignLocks bool
	// StepHook, when set, is called at every step boundary of a run with
	// the step's name (see the Step* constants); an error it returns stops
	// the run there, as a crash would. Tests use it to interrupt a run
	// anywhere; `payout` installs one only for PAYOUT_TEST_KILL_STEP.
	StepHook func(step string) error
}

// MinPayoutFloor is the lowest --min-payout: above the dust threshold of
// every standard output type at the 1 sat/vB relay fee (P2PKH: 546).
const MinPayoutFloor = 1000

// Check fills in defaults (factor 2, fee rate 1, 200 outputs, 6 conflict
// confirmations, slog.Default)
// and validates the options; errors wrap ErrInvalid.
func (o *Options) Check() error {
	if o.Params == nil {
		return fmt.Errorf("options: no network: %w", ErrInvalid)
	}
	if o.PPLNSFactor == 0 {
		o.PPLNSFactor = 2
	}
	if o.FeeRate == 0 {
		o.FeeRate = 1
	}
	if o.MaxOutputs == 0 {
		o.MaxOutputs = 200
	}
	if o.ConflictConfirmations == 0 {
		o.ConflictConfirmations = 6
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case !(o.PPLNSFactor > 0) || math.IsInf(o.PPLNSFactor, 0):
		return fmt.Errorf("options: pplns factor %v: %w", o.PPLNSFactor, ErrInvalid)
	case o.FeeBPS < 0 || o.FeeBPS > MaxFeeBPS:
		return fmt.Errorf("options: fee %d bps (0-10000): %w", o.FeeBPS, ErrInvalid)
	case o.MinPayout < MinPayoutFloor:
		return fmt.Errorf("options: min payout %d sat (at least %d): %w", o.MinPayout, MinPayoutFloor, ErrInvalid)
	case o.FeeRate < 1 || o.FeeRate > 10000:
		return fmt.Errorf("options: fee rate %d sat/vB (1-10000): %w", o.FeeRate, ErrInvalid)
	case o.MaturityMargin < 0:
		return fmt.Errorf("options: maturity margin %d: %w", o.MaturityMargin, ErrInvalid)
	case o.MaxOutputs < 1 || o.MaxOutputs > 2000:
		return fmt.Errorf("options: max outputs %d (1-2000): %w", o.MaxOutputs, ErrInvalid)
	case o.ConflictConfirmations < 1 || o.ConflictConfirmations > 1000:
		return fmt.Errorf("options: conflict confirmations %d (1-1000): %w", o.ConflictConfirmations, ErrInvalid)
	}
	return nil
}

// Payer runs the payout steps on one database with one node and one wallet.
// A Payer is safe for concurrent use, but runs never overlap: each takes
// the database's advisory lock (ErrLocked when another run holds it).
type Payer struct {
	ledger Ledger
	node   Node
	wallet Wallet
	o      Options
}

// NewPayer checks o and returns a Payer. It starts nothing.
func NewPayer(ledger Ledger, node Node, wallet Wallet, o Options) (*Payer, error) {
	if ledger == nil || node == nil || wallet == nil {
		return nil, fmt.Errorf("payer: nil ledger, node or wallet: %w", ErrInvalid)
	}
	if err := o.Check(); err != nil {
		return nil, err
	}
	return &Payer{ledger: ledger, node: node, wallet: wallet, o: o}, nil
}

// Step boundaries reported to Options.StepHook, in the order a run meets
// them. A run reports StepClassified once, StepCredited once per credited
// block, StepPlanned once when it planned payments, and the payment steps
// once per payment they concern.
const (
	StepClassified      = "classified"        // blocks classified
	StepCredited        = "credited"          // one block credited (committed)
	StepLocksReconciled = "locks-reconciled"  // wallet locks made equal to the open payments' inputs
	StepPlanned         = "planned"           // new payments recorded as planned
	StepInputsRecorded  = "inputs-recorded"   // a planned payment's chosen inputs stored, not locked
	StepBuilt           = "built"             // inputs locked in the wallet, not signed
	StepSignedOnly      = "signed-not-stored" // signed by the wallet, not stored yet
	StepStored          = "signed-stored"     // signed bytes and txid stored (state signed)
	StepSent            = "sent-not-marked"   // broadcast, not yet marked broadcast
	StepBroadcast       = "broadcast-marked"  // marked broadcast
	StepConfirmed       = "confirmed"         // settled: a paying transaction confirmed
	StepAbandoned       = "abandoned"         // settled: its abandon transaction confirmed deep enough
	StepFailed          = "failed"            // settled: its inputs proven spent elsewhere
	StepConflictSeen    = "conflict-seen"     // an input first seen spent by none of its transactions (recorded)
	StepUnlocked        = "unlocked"          // a settled payment's inputs released in the wallet
	StepPaymentDone     = "payment-done"      // a payment moved as far as it goes in this run
	StepBumpStored      = "bump-stored"       // Bump: the replacement signed and stored, not broadcast
	StepBumpSent        = "bump-sent"         // Bump: the replacement broadcast
	StepAbandonStored   = "abandon-stored"    // Abandon: the conflict signed and stored (abandoning), not broadcast
	StepAbandonSent     = "abandon-sent"      // Abandon: the conflict broadcast
)

// errInterrupted marks an error from the step hook.
var errInterrupted = errors.New("payout: run interrupted")

func (p *Payer) step(name string) error {
	if p.o.StepHook == nil {
		return nil
	}
	if err := p.o.StepHook(name); err != nil {
		return fmt.Errorf("%w after %s: %w", errInterrupted, name, err)
	}
	return nil
}

// Run does one payout run: classify found blocks, credit the matured ones,
// move every open payment on, plan payments of the balances at or over the
// minimum and carry them out. With dryRun everything happens inside one
// database transaction that is rolled back, and the wallet is only asked for
// nothing: the report says what a run would credit and plan.
//
// Problems with single blocks or payments (no shares, not enough funds, a
// broadcast refused) do not stop the run: they are in Report.Errors and
// joined into the returned error. Everything is safe to rerun.
func (p *Payer) Run(ctx context.Context, dryRun bool) (*Report, error) {
	lg, err := p.ledger.BeginRun(ctx, dryRun)
	if err != nil {
		return nil, fromStore("payout: begin run", err)
	}
	defer lg.End(ctx)

	rep := &Report{DryRun: dryRun, Blocks: []BlockChange{}, Credited: []CreditedBlock{}, Payments: []PaymentReport{}, Errors: []string{}}
	var problems []error
	note := func(err error) {
		problems = append(problems, err)
		rep.Errors = append(rep.Errors, err.Error())
	}

	if err := p.classify(ctx, lg, rep); err != nil {
		return rep, err
	}
	if err := p.step(StepClassified); err != nil {
		return rep, err
	}
	if err := p.creditMatured(ctx, lg, rep, note); err != nil {
		return rep, err
	}
	if !dryRun {
		if err := p.reconcileLocks(ctx, lg); err != nil {
			if ctx.Err() != nil || p.fatal(err) {
				return rep, err
			}
			// Without the wallet's locks in order, pay nothing this time.
			note(err)
			return rep, errors.Join(problems...)
		}
		open, err := p.openPayments(ctx, lg)
		if err != nil {
			return rep, err
		}
		for _, pay := range open {
			if err := p.advance(ctx, lg, &pay); err != nil {
				if ctx.Err() != nil || p.fatal(err) {
					return rep, err
				}
				note(err)
			}
			rep.Payments = append(rep.Payments, pay.report())
		}
	}
	planned, err := p.plan(ctx, lg, rep)
	if err != nil {
		return rep, err
	}
	for _, pay := range planned {
		if !dryRun {
			if err := p.advance(ctx, lg, &pay); err != nil {
				if ctx.Err() != nil || p.fatal(err) {
					return rep, err
				}
				note(err)
			}
		}
		rep.Payments = append(rep.Payments, pay.report())
	}
	return rep, errors.Join(problems...)
}

// fatal reports whether err ends the run (database trouble, an interrupted
// step) rather than concerning one payment only.
func (p *Payer) fatal(err error) bool {
	if errors.Is(err, errInterrupted) || errors.Is(err, ErrDatabase) || errors.Is(err, ErrConflict) {
		return true
	}
	return !errors.Is(err, ErrWallet) && !errors.Is(err, ErrInsufficientFunds) && !errors.Is(err, ErrInvalid)
}
