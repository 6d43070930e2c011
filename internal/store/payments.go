package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The payout ledger's payments side: balances due, planned payments, the
// inputs they spend and their state changes. Every method is one statement
// or one transaction of the run. See migrations/00004_payout_ledger.sql.

// Payment states (payments.state; Payment.State).
const (
	// PaymentPlanned: recorded with its outputs; nothing signed or sent.
	PaymentPlanned = "planned"
	// PaymentSigned: its signed transaction is stored; it may or may not
	// have reached the network.
	PaymentSigned = "signed"
	// PaymentBroadcast: handed to the node; waiting for a confirmation.
	PaymentBroadcast = "broadcast"
	// PaymentConfirmed: in a block. Final.
	PaymentConfirmed = "confirmed"
	// PaymentFailed: given up; its outputs count as unpaid again. Final.
	PaymentFailed = "failed"
)

// OpenPayment is a payment a payout run moves on: the stored payment with
// its signed transaction (nil until signed) and its last error.
type OpenPayment struct {
	Payment
	RawTx     []byte
	LastError string
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
	coalesce(block_hash, ''), last_error, created_at, updated_at`

func scanOpenPayment(row pgx.Row) (OpenPayment, error) {
	var p OpenPayment
	err := row.Scan(&p.ID, &p.State, &p.Total, &p.FeeRate, &p.Fee, &p.TxID, &p.RawTx, &p.BlockHash, &p.LastError,
		&p.CreatedAt, &p.UpdatedAt)
	return p, err
}

// OpenPayments returns the payments that are not final (planned, signed,
// broadcast), with their outputs, by id.
func (r *PayoutRun) OpenPayments(ctx context.Context) ([]OpenPayment, error) {
	rows, err := r.db.Query(ctx, `SELECT `+openPaymentColumns+` FROM payments
		WHERE state IN ('planned', 'signed', 'broadcast') ORDER BY id`)
	if err != nil {
		return nil, mapErr("open payments", err)
	}
	pays, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OpenPayment, error) { return scanOpenPayment(r) })
	if err != nil {
		return nil, mapErr("open payments", err)
	}
	for i := range pays {
		if pays[i].Outputs, err = r.paymentOutputs(ctx, pays[i].ID); err != nil {
			return nil, err
		}
	}
	return pays, nil
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
// signed and broadcast ones. (A planned payment's recorded inputs are only
// a reservation; it is built afresh.)
func (r *PayoutRun) OpenInputs(ctx context.Context) ([]PaymentInput, error) {
	return r.inputs(ctx, "open payments' inputs", `SELECT i.txid, i.vout, i.amount FROM payment_inputs i
		JOIN payments p ON p.id = i.payment_id WHERE p.state IN ('signed', 'broadcast') ORDER BY i.txid, i.vout`)
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

// StoreSigned stores the signed transaction of the planned payment id
// (its inputs were recorded by ReserveInputs) and moves it to signed.
// ErrConflict when the payment is not planned.
func (r *PayoutRun) StoreSigned(ctx context.Context, id int64, txid string, raw []byte, fee int64) error {
	tag, err := r.db.Exec(ctx, `UPDATE payments SET state = 'signed', raw_tx = $2, txid = $3, fee = $4, last_error = '', updated_at = now()
		WHERE id = $1 AND state = 'planned'`, id, raw, txid, fee)
	if err != nil {
		return mapErr(fmt.Sprintf("payment %d: store signed", id), err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("payment %d: not planned: %w", id, ErrConflict)
	}
	return nil
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
