package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The payout ledger's payments side: balances due, planned payments, the
// inputs they spend and their state changes. Every method is one statement
// or one transaction of the run. See migrations/00004_payout_ledger.sql.

// Payment states (payments.state; Payment.State). See
// migrations/00007_payment_rbf.sql.
const (
	// PaymentPlanned: recorded with its outputs; nothing signed or sent.
	PaymentPlanned = "planned"
	// PaymentSigned: a signed transaction is stored; it may or may not
	// have reached the network.
	PaymentSigned = "signed"
	// PaymentBroadcast: handed to the node; waiting for one of its
	// transactions to confirm.
	PaymentBroadcast = "broadcast"
	// PaymentAbandoning: an abandon transaction is stored; the outputs
	// still count as pending.
	PaymentAbandoning = "abandoning"
	// PaymentConfirmed: a paying transaction is in a block. Final.
	PaymentConfirmed = "confirmed"
	// PaymentAbandoned: its abandon transaction confirmed; its outputs
	// count as unpaid again. Final.
	PaymentAbandoned = "abandoned"
	// PaymentFailed: its inputs were spent by a transaction that is none
	// of its own (or an operator gave it up before it was ever signed);
	// its outputs count as unpaid again. Final.
	PaymentFailed = "failed"
)

// Kinds of a payment's transactions (payment_txs.kind).
const (
	// TxPayment is a payment's first transaction.
	TxPayment = "payment"
	// TxBump replaces the payment's transaction: same inputs, same
	// recipients, a higher fee.
	TxBump = "bump"
	// TxAbandon conflicts with the payment's transactions: the same inputs
	// paid back to the wallet.
	TxAbandon = "abandon"
)

// PaymentTx is one transaction of a payment.
type PaymentTx struct {
	TxID      string
	RawTx     []byte
	Fee       int64 // satoshis
	FeeRate   int64 // sat/vB asked for
	Kind      string
	BlockHash string // set on the transaction that settled the payment
	CreatedAt time.Time
}

// OpenPayment is a payment a payout run moves on: the stored payment with
// its current paying transaction (RawTx, nil until signed), every
// transaction it has (oldest first) and its last error.
type OpenPayment struct {
	Payment
	RawTx     []byte
	LastError string
	Txs       []PaymentTx
	// ConflictSeenHeight is the best height at which a run first saw an
	// input spent on chain by none of the payment's transactions; 0: not
	// seen.
	ConflictSeenHeight int64
}

// OutPoint is a transaction output: txid (hex) and index.
type OutPoint struct {
	TxID string
	Vout uint32
}

// PaymentInput is a wallet output a payment spends.
type PaymentInput struct {
	OutPoint
	Amount int64
}

// DueBalance is a balance at or above the payout minimum, with the user's
// payout address when the user has one.
type DueBalance struct {
	Username      string
	Balance       int64
	PayoutAddress string // "" when none is set
}

// DueBalances returns the balances of at least min satoshis, by user.
func (r *PayoutRun) DueBalances(ctx context.Context, min int64) ([]DueBalance, error) {
	rows, err := r.db.Query(ctx, `SELECT b.username, b.balance, coalesce(u.payout_address, '')
		FROM balances b LEFT JOIN users u ON u.name = b.username
		WHERE b.balance >= $1 ORDER BY b.username`, min)
	if err != nil {
		return nil, mapErr("due balances", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DueBalance, error) {
		var d DueBalance
		err := r.Scan(&d.Username, &d.Balance, &d.PayoutAddress)
		return d, err
	})
	return out, mapErr("due balances", err)
}

// PlanPayments records, in one transaction, one planned payment per batch
// of outputs, at feeRate sat/vB, and returns them.
func (r *PayoutRun) PlanPayments(ctx context.Context, feeRate int64, batches [][]PaymentOutput) ([]OpenPayment, error) {
	var planned []OpenPayment
	err := r.inTx(ctx, "plan payments", func(tx pgx.Tx) error {
		for _, batch := range batches {
			pay := OpenPayment{Payment: Payment{State: PaymentPlanned, FeeRate: feeRate, Outputs: batch}}
			users := make([]string, len(batch))
			addrs := make([]string, len(batch))
			amts := make([]int64, len(batch))
			for i, o := range batch {
				users[i], addrs[i], amts[i] = o.Username, o.Address, o.Amount
				pay.Total += o.Amount
			}
			if err := tx.QueryRow(ctx, `INSERT INTO payments (state, total, fee_rate) VALUES ('planned', $1, $2) RETURNING id, created_at, updated_at`,
				pay.Total, feeRate).Scan(&pay.ID, &pay.CreatedAt, &pay.UpdatedAt); err != nil {
				return mapErr("plan: insert payment", err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO payment_outputs (payment_id, username, address, amount)
				SELECT $1, u, a, v FROM unnest($2::text[], $3::text[], $4::bigint[]) AS x(u, a, v)`,
				pay.ID, users, addrs, amts); err != nil {
				return mapErr("plan: insert outputs", err)
			}
			planned = append(planned, pay)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return planned, nil
}

const openPaymentColumns = `id, state, total, fee_rate, coalesce(fee, 0), coalesce(txid, ''), raw_tx,
	coalesce(block_hash, ''), last_error, coalesce(conflict_seen_height, 0), created_at, updated_at`

func scanOpenPayment(row pgx.Row) (OpenPayment, error) {
	var p OpenPayment
	err := row.Scan(&p.ID, &p.State, &p.Total, &p.FeeRate, &p.Fee, &p.TxID, &p.RawTx, &p.BlockHash, &p.LastError,
		&p.ConflictSeenHeight, &p.CreatedAt, &p.UpdatedAt)
	return p, err
}

// OpenPayments returns the payments that are not final (planned, signed,
// broadcast, abandoning), with their outputs and transactions, by id.
func (r *PayoutRun) OpenPayments(ctx context.Context) ([]OpenPayment, error) {
	rows, err := r.db.Query(ctx, `SELECT `+openPaymentColumns+` FROM payments
		WHERE state IN ('planned', 'signed', 'broadcast', 'abandoning') ORDER BY id`)
	if err != nil {
		return nil, mapErr("open payments", err)
	}
	pays, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OpenPayment, error) { return scanOpenPayment(r) })
	if err != nil {
		return nil, mapErr("open payments", err)
	}
	for i := range pays {
		if err := r.loadPayment(ctx, &pays[i]); err != nil {
			return nil, err
		}
	}
	return pays, nil
}

// Payment returns payment id in whatever state, with its outputs and
// transactions. ErrNotFound when there is none.
func (r *PayoutRun) Payment(ctx context.Context, id int64) (OpenPayment, error) {
	p, err := scanOpenPayment(r.db.QueryRow(ctx, `SELECT `+openPaymentColumns+` FROM payments WHERE id = $1`, id))
	if err != nil {
		return OpenPayment{}, mapErr(fmt.Sprintf("payment %d", id), err)
	}
	return p, r.loadPayment(ctx, &p)
}

func (r *PayoutRun) loadPayment(ctx context.Context, p *OpenPayment) error {
	var err error
	if p.Outputs, err = r.paymentOutputs(ctx, p.ID); err != nil {
		return err
	}
	op := fmt.Sprintf("payment %d transactions", p.ID)
	rows, err := r.db.Query(ctx, `SELECT txid, raw_tx, fee, fee_rate, kind, coalesce(block_hash, ''), created_at
		FROM payment_txs WHERE payment_id = $1 ORDER BY id`, p.ID)
	if err != nil {
		return mapErr(op, err)
	}
	p.Txs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (PaymentTx, error) {
		var t PaymentTx
		err := r.Scan(&t.TxID, &t.RawTx, &t.Fee, &t.FeeRate, &t.Kind, &t.BlockHash, &t.CreatedAt)
		return t, err
	})
	return mapErr(op, err)
}

func (r *PayoutRun) paymentOutputs(ctx context.Context, id int64) ([]PaymentOutput, error) {
	rows, err := r.db.Query(ctx, `SELECT username, address, amount FROM payment_outputs WHERE payment_id = $1 ORDER BY username`, id)
	if err != nil {
		return nil, mapErr("payment outputs", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PaymentOutput, error) {
		var o PaymentOutput
		err := r.Scan(&o.Username, &o.Address, &o.Amount)
		return o, err
	})
	return out, mapErr("payment outputs", err)
}

// OpenInputs returns the inputs of the payments that may still spend them:
// signed, broadcast and abandoning ones. (A planned payment's recorded
// inputs are only a reservation; it is built afresh.)
func (r *PayoutRun) OpenInputs(ctx context.Context) ([]PaymentInput, error) {
	return r.inputs(ctx, "open payments' inputs", `SELECT i.txid, i.vout, i.amount FROM payment_inputs i
		JOIN payments p ON p.id = i.payment_id WHERE p.state IN ('signed', 'broadcast', 'abandoning') ORDER BY i.txid, i.vout`)
}

// RecordedInputs returns every input any payment ever recorded.
func (r *PayoutRun) RecordedInputs(ctx context.Context) ([]PaymentInput, error) {
	return r.inputs(ctx, "recorded inputs", `SELECT DISTINCT ON (txid, vout) txid, vout, amount FROM payment_inputs ORDER BY txid, vout`)
}

// PaymentInputs returns the recorded inputs of payment id.
func (r *PayoutRun) PaymentInputs(ctx context.Context, id int64) ([]PaymentInput, error) {
	return r.inputs(ctx, fmt.Sprintf("payment %d inputs", id),
		`SELECT txid, vout, amount FROM payment_inputs WHERE payment_id = $1 ORDER BY txid, vout`, id)
}

func (r *PayoutRun) inputs(ctx context.Context, op, sql string, args ...any) ([]PaymentInput, error) {
	rows, err := r.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, mapErr(op, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PaymentInput, error) {
		var in PaymentInput
		var vout int64
		err := r.Scan(&in.TxID, &vout, &in.Amount)
		in.Vout = uint32(vout)
		return in, err
	})
	return out, mapErr(op, err)
}

// ReserveInputs replaces, in one transaction, the recorded inputs of the
// planned payment id (an earlier, interrupted attempt may have chosen
// others). ErrConflict when the payment is not planned.
func (r *PayoutRun) ReserveInputs(ctx context.Context, id int64, ins []PaymentInput) error {
	op := fmt.Sprintf("payment %d: record inputs", id)
	return r.inTx(ctx, op, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE payments SET updated_at = now() WHERE id = $1 AND state = 'planned'`, id)
		if err != nil {
			return mapErr(op, err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("%s: not planned: %w", op, ErrConflict)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM payment_inputs WHERE payment_id = $1`, id); err != nil {
			return mapErr(op, err)
		}
		txids := make([]string, len(ins))
		vouts := make([]int64, len(ins))
		amts := make([]int64, len(ins))
		for i, in := range ins {
			txids[i], vouts[i], amts[i] = in.TxID, int64(in.Vout), in.Amount
		}
		_, err = tx.Exec(ctx, `INSERT INTO payment_inputs (payment_id, txid, vout, amount)
			SELECT $1, t, v, a FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS x(t, v, a)`, id, txids, vouts, amts)
		return mapErr(op, err)
	})
}

// StoreSigned stores the first transaction of the planned payment id (its
// inputs were recorded by ReserveInputs) and moves it to signed, in one
// transaction. ErrConflict when the payment is not planned.
func (r *PayoutRun) StoreSigned(ctx context.Context, id int64, tx PaymentTx) error {
	tx.Kind = TxPayment
	return r.AddPaymentTx(ctx, id, PaymentPlanned, PaymentSigned, tx)
}

// AddPaymentTx stores a new transaction of payment id and moves the
// payment from state from to state to (they may be equal), in one
// transaction. A paying transaction (payment, bump) becomes the payment's
// current one (payments.txid, raw_tx, fee, fee_rate). ErrConflict when
// the payment is not in from, ErrExists when the txid is stored already.
func (r *PayoutRun) AddPaymentTx(ctx context.Context, id int64, from, to string, tx PaymentTx) error {
	op := fmt.Sprintf("payment %d: store %s transaction %s", id, tx.Kind, tx.TxID)
	return r.inTx(ctx, op, func(dtx pgx.Tx) error {
		tag, err := dtx.Exec(ctx, `UPDATE payments SET state = $3,
				txid = CASE WHEN $4 THEN $5 ELSE txid END, raw_tx = CASE WHEN $4 THEN $6 ELSE raw_tx END,
				fee = CASE WHEN $4 THEN $7 ELSE fee END, fee_rate = CASE WHEN $4 THEN $8 ELSE fee_rate END,
				last_error = '', updated_at = now()
			WHERE id = $1 AND state = $2`, id, from, to, tx.Kind != TxAbandon, tx.TxID, tx.RawTx, tx.Fee, tx.FeeRate)
		if err != nil {
			return mapErr(op, err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("%s: not %s: %w", op, from, ErrConflict)
		}
		_, err = dtx.Exec(ctx, `INSERT INTO payment_txs (payment_id, txid, raw_tx, fee, fee_rate, kind) VALUES ($1, $2, $3, $4, $5, $6)`,
			id, tx.TxID, tx.RawTx, tx.Fee, tx.FeeRate, tx.Kind)
		return mapErr(op, err)
	})
}

// SettlePayment moves payment id from state from to a final state, in one
// transaction: to confirmed by its transaction txid (which becomes the
// payment's current one; blockHash recorded on both), to abandoned by its
// abandon transaction txid, or to failed (txid empty) with note as the
// reason. ErrConflict when the payment is not in from or txid is not one
// of its transactions.
func (r *PayoutRun) SettlePayment(ctx context.Context, id int64, from, to, txid, blockHash, note string) error {
	op := fmt.Sprintf("payment %d: %s", id, to)
	var bh any
	if blockHash != "" {
		bh = blockHash
	}
	return r.inTx(ctx, op, func(tx pgx.Tx) error {
		if txid != "" {
			tag, err := tx.Exec(ctx, `UPDATE payment_txs SET block_hash = $3 WHERE payment_id = $1 AND txid = $2`, id, txid, bh)
			if err != nil {
				return mapErr(op, err)
			}
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("%s: %s is not one of its transactions: %w", op, txid, ErrConflict)
			}
		}
		var tag pgconn.CommandTag
		var err error
		if to == PaymentConfirmed {
			tag, err = tx.Exec(ctx, `UPDATE payments p SET state = $3, last_error = $5, block_hash = $6, updated_at = now(),
					txid = t.txid, raw_tx = t.raw_tx, fee = t.fee, fee_rate = t.fee_rate
				FROM payment_txs t
				WHERE p.id = $1 AND p.state = $2 AND t.payment_id = p.id AND t.txid = $4 AND t.kind <> 'abandon'`,
				id, from, to, txid, note, bh)
		} else {
			tag, err = tx.Exec(ctx, `UPDATE payments SET state = $3, last_error = $4, updated_at = now()
				WHERE id = $1 AND state = $2`, id, from, to, note)
		}
		if err != nil {
			return mapErr(op, err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("%s: not %s: %w", op, from, ErrConflict)
		}
		return nil
	})
}

// NoteConflict records the best height at which a run first saw an input
// of payment id spent on chain by none of its transactions (0 clears it).
func (r *PayoutRun) NoteConflict(ctx context.Context, id int64, height int64) error {
	var h any
	if height > 0 {
		h = height
	}
	_, err := r.db.Exec(ctx, `UPDATE payments SET conflict_seen_height = $2, updated_at = now() WHERE id = $1`, id, h)
	return mapErr(fmt.Sprintf("payment %d: note conflict", id), err)
}

// MovePayment moves payment id from state from to state to, recording
// blockHash when it is not empty and clearing the last error. ErrConflict
// when the payment is not in from.
func (r *PayoutRun) MovePayment(ctx context.Context, id int64, from, to, blockHash string) error {
	var bh any
	if blockHash != "" {
		bh = blockHash
	}
	tag, err := r.db.Exec(ctx, `UPDATE payments SET state = $3, block_hash = coalesce($4, block_hash), last_error = '', updated_at = now()
		WHERE id = $1 AND state = $2`, id, from, to, bh)
	if err != nil {
		return mapErr(fmt.Sprintf("payment %d: %s", id, to), err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("payment %d: not %s: %w", id, from, ErrConflict)
	}
	return nil
}

// RecordPaymentError stores msg as the payment's last error.
func (r *PayoutRun) RecordPaymentError(ctx context.Context, id int64, msg string) error {
	_, err := r.db.Exec(ctx, `UPDATE payments SET last_error = $2, updated_at = now() WHERE id = $1`, id, msg)
	return mapErr(fmt.Sprintf("payment %d: record error", id), err)
}
