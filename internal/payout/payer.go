package payout

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stratumd/stratumd/internal/store"
)

// lockKey is the pg_try_advisory_lock key that keeps payout runs apart
// ("payout" in ASCII).
const lockKey int64 = 0x7061796f7574

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

// Check fills in defaults (factor 2, fee rate 1, 200 outputs, slog.Default)
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
	}
	return nil
}

// Payer runs the payout steps on one database with one node and one wallet.
// A Payer is safe for concurrent use, but runs never overlap: each takes
// the database's advisory lock (ErrLocked when another run holds it).
type Payer struct {
	pool   *pgxpool.Pool
	node   Node
	wallet Wallet
	o      Options
}

// NewPayer checks o and returns a Payer. It starts nothing.
func NewPayer(pool *pgxpool.Pool, node Node, wallet Wallet, o Options) (*Payer, error) {
	if pool == nil || node == nil || wallet == nil {
		return nil, fmt.Errorf("payer: nil pool, node or wallet: %w", ErrInvalid)
	}
	if err := o.Check(); err != nil {
		return nil, err
	}
	return &Payer{pool: pool, node: node, wallet: wallet, o: o}, nil
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
	StepConfirmed       = "confirmed"         // marked confirmed
	StepUnlocked        = "unlocked"          // a settled payment's inputs released in the wallet
	StepPaymentDone     = "payment-done"      // a payment moved as far as it goes in this run
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

// dbtx is a connection or a transaction (Begin on a transaction makes a
// savepoint, which is how a dry run nests).
type dbtx interface {
	querier
	Begin(ctx context.Context) (pgx.Tx, error)
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
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return nil, dbErr("payout: connect", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey).Scan(&locked); err != nil {
		return nil, dbErr("payout: advisory lock", err)
	}
	if !locked {
		return nil, ErrLocked
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockKey)

	rep := &Report{DryRun: dryRun, Blocks: []BlockChange{}, Credited: []CreditedBlock{}, Payments: []PaymentReport{}, Errors: []string{}}
	var db dbtx = conn
	if dryRun {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return nil, dbErr("payout: begin dry run", err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		db = tx
	}
	var problems []error
	note := func(err error) {
		problems = append(problems, err)
		rep.Errors = append(rep.Errors, err.Error())
	}

	if err := p.classify(ctx, db, rep); err != nil {
		return rep, err
	}
	if err := p.step(StepClassified); err != nil {
		return rep, err
	}
	if err := p.creditMatured(ctx, db, rep, note); err != nil {
		return rep, err
	}
	if !dryRun {
		if err := p.reconcileLocks(ctx, db); err != nil {
			if ctx.Err() != nil || p.fatal(err) {
				return rep, err
			}
			// Without the wallet's locks in order, pay nothing this time.
			note(err)
			return rep, errors.Join(problems...)
		}
		open, err := p.openPayments(ctx, db)
		if err != nil {
			return rep, err
		}
		for _, pay := range open {
			if err := p.advance(ctx, db, &pay); err != nil {
				if ctx.Err() != nil || p.fatal(err) {
					return rep, err
				}
				note(err)
			}
			rep.Payments = append(rep.Payments, pay.report())
		}
	}
	planned, err := p.plan(ctx, db, rep)
	if err != nil {
		return rep, err
	}
	for _, pay := range planned {
		if !dryRun {
			if err := p.advance(ctx, db, &pay); err != nil {
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

// ---- block lifecycle ----

func (p *Payer) maturity() int64 { return int64(p.o.Params.CoinbaseMaturity) + p.o.MaturityMargin }

// classify asks the node about every block that is not final yet
// (submitted, confirmed, matured, and orphaned ones still young enough to
// come back in a reorganization) and records what changed.
func (p *Payer) classify(ctx context.Context, db dbtx, rep *Report) error {
	rows, err := db.Query(ctx, `SELECT id, height, hash, status FROM blocks
		WHERE status IN ('submitted', 'confirmed', 'matured', 'orphaned') ORDER BY height, id`)
	if err != nil {
		return dbErr("classify: list blocks", err)
	}
	type blk struct {
		id     int64
		height int64
		hash   string
		status store.BlockStatus
	}
	blocks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (blk, error) {
		var b blk
		var h int32
		err := r.Scan(&b.id, &h, &b.hash, &b.status)
		b.height = int64(h)
		return b, err
	})
	if err != nil {
		return dbErr("classify: list blocks", err)
	}
	if len(blocks) == 0 {
		return nil
	}
	best, err := p.node.BestHeight(ctx)
	if err != nil {
		return fmt.Errorf("classify: %w", err)
	}
	for _, b := range blocks {
		if b.height > best {
			continue // the node is behind; ask again next run
		}
		confs := best - b.height + 1
		if b.status == store.BlockOrphaned && confs > p.maturity() {
			continue // final
		}
		h, err := p.node.BlockHash(ctx, b.height)
		if err != nil {
			return fmt.Errorf("classify block %s: %w", b.hash, err)
		}
		to, reason := store.BlockOrphaned, fmt.Sprintf("best chain has %s at height %d", h, b.height)
		if h.String() == b.hash {
			to, reason = store.BlockConfirmed, fmt.Sprintf("%d confirmations", confs)
			if confs >= p.maturity() {
				to = store.BlockMatured
			}
		}
		if to == b.status {
			continue
		}
		tag, err := db.Exec(ctx, `UPDATE blocks SET status = $2, status_reason = $3, updated_at = now()
			WHERE id = $1 AND status = $4`, b.id, to, reason, b.status)
		if err != nil {
			return dbErr("classify: update block", err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("classify block %s: %w", b.hash, ErrConflict)
		}
		p.o.Logger.Info("block status", "height", b.height, "hash", b.hash, "from", b.status, "to", to, "confirmations", confs)
		rep.Blocks = append(rep.Blocks, BlockChange{Height: b.height, Hash: b.hash, From: string(b.status), To: string(to), Confirmations: confs})
	}
	return nil
}

// creditMatured credits every matured block, each in its own transaction
// that also moves it to credited.
func (p *Payer) creditMatured(ctx context.Context, db dbtx, rep *Report, note func(error)) error {
	rows, err := db.Query(ctx, `SELECT id FROM blocks WHERE status = 'matured' ORDER BY height, id`)
	if err != nil {
		return dbErr("credit: list matured", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return dbErr("credit: list matured", err)
	}
	for _, id := range ids {
		cb, err := p.creditBlock(ctx, db, id)
		if err != nil {
			if errors.Is(err, ErrNoShares) {
				note(err)
				continue
			}
			return err
		}
		rep.Credited = append(rep.Credited, cb)
		if err := p.step(StepCredited); err != nil {
			return err
		}
	}
	return nil
}

func (p *Payer) creditBlock(ctx context.Context, db dbtx, id int64) (CreditedBlock, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return CreditedBlock{}, dbErr("credit: begin", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var (
		cb      CreditedBlock
		height  int32
		netDiff float64
		last    store.SharePos
		inst    int16
		seq     int64
	)
	err = tx.QueryRow(ctx, `SELECT height, hash, reward, network_difficulty, share_time, share_instance, share_seq
		FROM blocks WHERE id = $1 AND status = 'matured' FOR UPDATE`, id).
		Scan(&height, &cb.Hash, &cb.Reward, &netDiff, &last.Time, &inst, &seq)
	if err != nil {
		return CreditedBlock{}, dbErr(fmt.Sprintf("credit: block %d", id), err)
	}
	cb.Height = int64(height)
	last.Instance, last.Seq = uint8(inst), uint64(seq)
	win, err := SelectWindow(ctx, tx, last, p.o.PPLNSFactor*netDiff)
	if err != nil {
		return CreditedBlock{}, fmt.Errorf("credit block %s: %w", cb.Hash, err)
	}
	split, err := SplitReward(cb.Reward, p.o.FeeBPS, win.Weights)
	if err != nil {
		return CreditedBlock{}, fmt.Errorf("credit block %d %s: %w", cb.Height, cb.Hash, err)
	}
	cb.Split, cb.Window, cb.WindowFull = split, win, win.Full()
	var oT any
	var oI, oS any
	if win.Oldest != nil {
		oT, oI, oS = win.Oldest.Time, int16(win.Oldest.Instance), int64(win.Oldest.Seq)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO block_splits (block_id, reward, fee_bps, pool_fee, pool_remainder,
			miners_total, pplns_factor, window_target, window_counted, window_shares, oldest_time, oldest_instance, oldest_seq)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		id, split.Reward, split.FeeBPS, split.PoolFee, split.Remainder, split.MinersTotal, p.o.PPLNSFactor,
		win.Target, win.Counted, win.Shares, oT, oI, oS); err != nil {
		return CreditedBlock{}, dbErr("credit: insert split", err)
	}
	users := make([]string, len(split.Credits))
	amounts := make([]int64, len(split.Credits))
	diffs := make([]float64, len(split.Credits))
	for i, c := range split.Credits {
		users[i], amounts[i], diffs[i] = c.Username, c.Amount, c.Difficulty
	}
	if _, err := tx.Exec(ctx, `INSERT INTO credits (block_id, username, amount, difficulty)
		SELECT $1, u, a, d FROM unnest($2::text[], $3::bigint[], $4::float8[]) AS x(u, a, d)`,
		id, users, amounts, diffs); err != nil {
		return CreditedBlock{}, dbErr("credit: insert credits", err)
	}
	tag, err := tx.Exec(ctx, `UPDATE blocks SET status = 'credited', status_reason = $2, updated_at = now()
		WHERE id = $1 AND status = 'matured'`, id, fmt.Sprintf("%d users credited", len(split.Credits)))
	if err != nil {
		return CreditedBlock{}, dbErr("credit: mark credited", err)
	}
	if tag.RowsAffected() != 1 {
		return CreditedBlock{}, fmt.Errorf("credit block %s: %w", cb.Hash, ErrConflict)
	}
	if err := tx.Commit(ctx); err != nil {
		return CreditedBlock{}, dbErr("credit: commit", err)
	}
	p.o.Logger.Info("block credited", "height", cb.Height, "hash", cb.Hash, "reward", cb.Reward,
		"users", len(split.Credits), "pool_fee", split.PoolFee, "remainder", split.Remainder, "window_full", cb.WindowFull)
	return cb, nil
}

// ---- payments ----

type payment struct {
	ID      int64
	State   string
	Total   int64
	Fee     *int64
	TxID    *string
	Raw     []byte
	Outputs []PayTo
	Err     string
}

// txid is the payment's transaction id, "" before it is signed.
func (pay *payment) txid() string {
	if pay.TxID == nil {
		return ""
	}
	return *pay.TxID
}

func (pay *payment) report() PaymentReport {
	r := PaymentReport{ID: pay.ID, State: pay.State, Total: pay.Total, Outputs: pay.Outputs, Error: pay.Err}
	if pay.Fee != nil {
		r.Fee = *pay.Fee
	}
	if pay.TxID != nil {
		r.TxID = *pay.TxID
	}
	return r
}

func loadOutputs(ctx context.Context, q querier, id int64) ([]PayTo, error) {
	rows, err := q.Query(ctx, `SELECT username, address, amount FROM payment_outputs WHERE payment_id = $1 ORDER BY username`, id)
	if err != nil {
		return nil, dbErr("payment outputs", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PayTo, error) {
		var o PayTo
		err := r.Scan(&o.Username, &o.Address, &o.Amount)
		return o, err
	})
	return out, dbErr("payment outputs", err)
}

func (p *Payer) openPayments(ctx context.Context, db dbtx) ([]payment, error) {
	rows, err := db.Query(ctx, `SELECT id, state, total, fee, txid, raw_tx FROM payments
		WHERE state IN ('planned', 'signed', 'broadcast') ORDER BY id`)
	if err != nil {
		return nil, dbErr("open payments", err)
	}
	pays, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (payment, error) {
		var pay payment
		err := r.Scan(&pay.ID, &pay.State, &pay.Total, &pay.Fee, &pay.TxID, &pay.Raw)
		return pay, err
	})
	if err != nil {
		return nil, dbErr("open payments", err)
	}
	for i := range pays {
		if pays[i].Outputs, err = loadOutputs(ctx, db, pays[i].ID); err != nil {
			return nil, err
		}
	}
	return pays, nil
}

// plan records, in one transaction, a planned payment (with its outputs)
// for every balance at or above the minimum that has a valid address, at
// most MaxOutputs per payment.
func (p *Payer) plan(ctx context.Context, db dbtx, rep *Report) ([]payment, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, dbErr("plan: begin", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rows, err := tx.Query(ctx, `SELECT b.username, b.balance, coalesce(u.payout_address, '')
		FROM balances b LEFT JOIN users u ON u.name = b.username
		WHERE b.balance >= $1 ORDER BY b.username`, p.o.MinPayout)
	if err != nil {
		return nil, dbErr("plan: balances", err)
	}
	type due struct {
		user, addr string
		amount     int64
	}
	dues, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (due, error) {
		var d due
		err := r.Scan(&d.user, &d.amount, &d.addr)
		return d, err
	})
	if err != nil {
		return nil, dbErr("plan: balances", err)
	}
	var outs []PayTo
	for _, d := range dues {
		addr := d.addr
		if addr == "" {
			addr = d.user // open auth: the user name is the address
		}
		if _, err := p.decode(addr); err != nil {
			rep.Skipped = append(rep.Skipped, Skipped{Username: d.user, Balance: d.amount, Reason: "no valid payout address for " + p.o.Params.Name})
			continue
		}
		outs = append(outs, PayTo{Username: d.user, Address: addr, Amount: d.amount})
	}
	var planned []payment
	for len(outs) > 0 {
		n := min(len(outs), p.o.MaxOutputs)
		batch := outs[:n:n]
		outs = outs[n:]
		pay := payment{State: "planned", Outputs: batch}
		users := make([]string, n)
		addrs := make([]string, n)
		amts := make([]int64, n)
		for i, o := range batch {
			users[i], addrs[i], amts[i] = o.Username, o.Address, o.Amount
			pay.Total += o.Amount
		}
		if err := tx.QueryRow(ctx, `INSERT INTO payments (state, total, fee_rate) VALUES ('planned', $1, $2) RETURNING id`,
			pay.Total, p.o.FeeRate).Scan(&pay.ID); err != nil {
			return nil, dbErr("plan: insert payment", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO payment_outputs (payment_id, username, address, amount)
			SELECT $1, u, a, v FROM unnest($2::text[], $3::text[], $4::bigint[]) AS x(u, a, v)`,
			pay.ID, users, addrs, amts); err != nil {
			return nil, dbErr("plan: insert outputs", err)
		}
		planned = append(planned, pay)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, dbErr("plan: commit", err)
	}
	for _, pay := range planned {
		p.o.Logger.Info("payment planned", "id", pay.ID, "outputs", len(pay.Outputs), "total", pay.Total)
	}
	if len(planned) > 0 {
		if err := p.step(StepPlanned); err != nil {
			return nil, err
		}
	}
	return planned, nil
}

func (p *Payer) decode(addr string) (btcutil.Address, error) {
	a, err := btcutil.DecodeAddress(addr, p.o.Params)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w: %w", addr, ErrInvalid, err)
	}
	if !a.IsForNet(p.o.Params) {
		return nil, fmt.Errorf("address %q is not for %s: %w", addr, p.o.Params.Name, ErrInvalid)
	}
	return a, nil
}

// advance moves one payment as far as it goes: planned → signed →
// broadcast → confirmed. Every state change is committed before the next
// wallet call, so a rerun continues from the recorded state: a planned
// payment has no stored transaction (nothing was sent) and is built afresh;
// a signed one is broadcast with the same bytes; a broadcast one is
// checked, and rebroadcast with the same bytes if the wallet lost it.
func (p *Payer) advance(ctx context.Context, db dbtx, pay *payment) error {
	fail := func(err error) error {
		pay.Err = err.Error()
		if _, e := db.Exec(context.WithoutCancel(ctx), `UPDATE payments SET last_error = $2, updated_at = now() WHERE id = $1`,
			pay.ID, pay.Err); e != nil {
			return errors.Join(err, dbErr("payment: record error", e))
		}
		return err
	}
	if pay.State == "planned" {
		if err := p.sign(ctx, db, pay); err != nil {
			if errors.Is(err, ErrWallet) || errors.Is(err, ErrInsufficientFunds) || errors.Is(err, ErrInvalid) {
				return fail(fmt.Errorf("payment %d: %w", pay.ID, err))
			}
			return err
		}
	}
	tx, err := parseTx(pay.Raw)
	if err != nil && pay.State != "planned" {
		return fmt.Errorf("payment %d: %w", pay.ID, err)
	}
	if pay.State == "signed" {
		if err := p.wallet.Send(ctx, tx); err != nil {
			return fail(fmt.Errorf("payment %d: broadcast: %w", pay.ID, err))
		}
		if err := p.step(StepSent); err != nil {
			return err
		}
		if err := p.setState(ctx, db, pay, "signed", "broadcast", ""); err != nil {
			return err
		}
		if err := p.step(StepBroadcast); err != nil {
			return err
		}
	}
	if pay.State == "broadcast" {
		st, err := p.wallet.Status(ctx, tx.TxHash())
		if err != nil {
			return fail(fmt.Errorf("payment %d: status: %w", pay.ID, err))
		}
		if !st.Known {
			// Lost from the wallet and the mempool (evicted, or a node
			// restart): the same bytes again, never a new transaction.
			if err := p.wallet.Send(ctx, tx); err != nil {
				return fail(fmt.Errorf("payment %d: rebroadcast: %w", pay.ID, err))
			}
			return nil
		}
		if st.Confirmations >= PaymentConfirmations {
			if err := p.setState(ctx, db, pay, "broadcast", "confirmed", st.BlockHash); err != nil {
				return err
			}
			if err := p.step(StepConfirmed); err != nil {
				return err
			}
			ins, err := inputsOf(ctx, db, `SELECT txid, vout FROM payment_inputs WHERE payment_id = $1`, pay.ID)
			if err != nil {
				return err
			}
			p.release(ctx, pay.ID, slices.Collect(maps.Keys(ins)))
			if err := p.step(StepUnlocked); err != nil {
				return err
			}
		}
	}
	return p.step(StepPaymentDone)
}

func (p *Payer) setState(ctx context.Context, db dbtx, pay *payment, from, to, blockHash string) error {
	var bh any
	if blockHash != "" {
		bh = blockHash
	}
	tag, err := db.Exec(ctx, `UPDATE payments SET state = $3, block_hash = coalesce($4, block_hash), last_error = '', updated_at = now()
		WHERE id = $1 AND state = $2`, pay.ID, from, to, bh)
	if err != nil {
		return dbErr(fmt.Sprintf("payment %d: %s", pay.ID, to), err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("payment %d: not %s: %w", pay.ID, from, ErrConflict)
	}
	pay.State, pay.Err = to, ""
	p.o.Logger.Info("payment "+to, "id", pay.ID, "txid", pay.txid())
	return nil
}

// sign builds the transaction of a planned payment from the wallet's
// unspent outputs (never one a signed or broadcast payment spends), has the
// wallet sign it and stores the signed bytes, txid and inputs with the move
// to signed, in one transaction.
func (p *Payer) sign(ctx context.Context, db dbtx, pay *payment) error {
	addrs := make([]btcutil.Address, len(pay.Outputs))
	for i, o := range pay.Outputs {
		a, err := p.decode(o.Address)
		if err != nil {
			return err
		}
		addrs[i] = a
	}
	// Never an input of an open payment (the wallet hides them too, as
	// they are locked, unless it lost its locks).
	taken, err := inputsOf(ctx, db, openInputsSQL)
	if err != nil {
		return err
	}
	utxos, err := p.wallet.ListUnspent(ctx)
	if err != nil {
		return err
	}
	free := utxos[:0:0]
	for _, u := range utxos {
		if !taken[u.OutPoint] {
			free = append(free, u)
		}
	}
	change, err := p.wallet.ChangeAddress(ctx)
	if err != nil {
		return err
	}
	b, err := buildTx(pay.Outputs, addrs, free, change, p.o.FeeRate)
	if err != nil {
		return err
	}
	ops := make([]wire.OutPoint, len(b.inputs))
	txids := make([]string, len(b.inputs))
	vouts := make([]int64, len(b.inputs))
	amts := make([]int64, len(b.inputs))
	for i, u := range b.inputs {
		ops[i] = u.OutPoint
		txids[i], vouts[i], amts[i] = u.OutPoint.Hash.String(), int64(u.OutPoint.Index), u.Amount
	}
	// The durable record first: the inputs this planned payment is about
	// to lock (replacing what an earlier, interrupted attempt chose).
	if err := recordInputs(ctx, db, pay.ID, txids, vouts, amts); err != nil {
		return err
	}
	if err := p.step(StepInputsRecorded); err != nil {
		return err
	}
	if err := p.wallet.LockUnspent(ctx, ops); err != nil {
		return err
	}
	if err := p.step(StepBuilt); err != nil {
		return err
	}
	signed, err := p.wallet.Sign(ctx, b.tx, b.inputs)
	if err == nil {
		err = sameSpend(b.tx, signed)
	}
	if err != nil {
		p.release(ctx, pay.ID, ops)
		return err
	}
	if err := p.step(StepSignedOnly); err != nil {
		return err
	}
	raw, err := txBytes(signed)
	if err != nil {
		return err
	}
	id := signed.TxHash().String()
	if size := int64(signed.SerializeSize()); size*p.o.FeeRate > b.fee {
		p.o.Logger.Warn("payment fee below rate", "id", pay.ID, "size", size, "fee", b.fee)
	}
	tag, err := db.Exec(ctx, `UPDATE payments SET state = 'signed', raw_tx = $2, txid = $3, fee = $4, last_error = '', updated_at = now()
		WHERE id = $1 AND state = 'planned'`, pay.ID, raw, id, b.fee)
	if err != nil {
		return dbErr("payment: store signed", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("payment %d: not planned: %w", pay.ID, ErrConflict)
	}
	pay.State, pay.Raw, pay.TxID, pay.Fee, pay.Err = "signed", raw, &id, &b.fee, ""
	p.o.Logger.Info("payment signed", "id", pay.ID, "txid", id, "fee", b.fee, "inputs", len(b.inputs))
	return p.step(StepStored)
}

// recordInputs replaces, in one transaction, the recorded inputs of a
// planned payment (an earlier, interrupted attempt may have chosen others).
func recordInputs(ctx context.Context, db dbtx, id int64, txids []string, vouts, amts []int64) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return dbErr("payment: record inputs", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	tag, err := tx.Exec(ctx, `UPDATE payments SET updated_at = now() WHERE id = $1 AND state = 'planned'`, id)
	if err != nil {
		return dbErr("payment: record inputs", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("payment %d: not planned: %w", id, ErrConflict)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM payment_inputs WHERE payment_id = $1`, id); err != nil {
		return dbErr("payment: record inputs", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO payment_inputs (payment_id, txid, vout, amount)
		SELECT $1, t, v, a FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS x(t, v, a)`, id, txids, vouts, amts); err != nil {
		return dbErr("payment: record inputs", err)
	}
	return dbErr("payment: record inputs", tx.Commit(ctx))
}

// sameSpend checks that the wallet signed what it was given: the same
// inputs and outputs.
func sameSpend(unsigned, signed *wire.MsgTx) error {
	if len(unsigned.TxIn) != len(signed.TxIn) || len(unsigned.TxOut) != len(signed.TxOut) {
		return fmt.Errorf("signed transaction differs in shape: %w", ErrWallet)
	}
	for i := range unsigned.TxIn {
		if unsigned.TxIn[i].PreviousOutPoint != signed.TxIn[i].PreviousOutPoint {
			return fmt.Errorf("signed transaction input %d differs: %w", i, ErrWallet)
		}
		if len(signed.TxIn[i].Witness) != 0 {
			return fmt.Errorf("signed transaction input %d has a witness: %w", i, ErrWallet)
		}
	}
	for i := range unsigned.TxOut {
		if unsigned.TxOut[i].Value != signed.TxOut[i].Value ||
			hex.EncodeToString(unsigned.TxOut[i].PkScript) != hex.EncodeToString(signed.TxOut[i].PkScript) {
			return fmt.Errorf("signed transaction output %d differs: %w", i, ErrWallet)
		}
	}
	return nil
}
