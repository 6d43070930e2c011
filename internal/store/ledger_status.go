package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// LedgerStatus is the payout ledger at a glance (`payout status`).
type LedgerStatus struct {
	Blocks   map[BlockStatus]int64 // count per block status
	Balances []AccountBalance      // by user
	Payments []PaymentSummary      // the open ones and the 20 newest, by id
}

// AccountBalance is one row of the balances view with the user's payout
// address ("" when none is set).
type AccountBalance struct {
	Balance
	PayoutAddress string
}

// PaymentSummary is one payment without its transaction.
type PaymentSummary struct {
	ID        int64
	State     string
	TxID      string
	Outputs   int64
	Total     int64
	Fee       int64
	LastError string
	UpdatedAt time.Time
}

// LedgerStatus reads the ledger's state.
func (s *Store) LedgerStatus(ctx context.Context) (LedgerStatus, error) {
	st := LedgerStatus{Blocks: map[BlockStatus]int64{}, Balances: []AccountBalance{}, Payments: []PaymentSummary{}}
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM blocks GROUP BY status`)
	if err != nil {
		return LedgerStatus{}, mapErr("status: blocks", err)
	}
	var bs BlockStatus
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&bs, &n}, func() error { st.Blocks[bs] = n; return nil }); err != nil {
		return LedgerStatus{}, mapErr("status: blocks", err)
	}
	rows, err = s.pool.Query(ctx, `SELECT b.username, b.credited, b.paid, b.pending, b.balance, coalesce(u.payout_address, '')
		FROM balances b LEFT JOIN users u ON u.name = b.username ORDER BY b.username`)
	if err != nil {
		return LedgerStatus{}, mapErr("status: balances", err)
	}
	if st.Balances, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (AccountBalance, error) {
		var b AccountBalance
		err := r.Scan(&b.Username, &b.Credited, &b.Paid, &b.Pending, &b.Balance.Balance, &b.PayoutAddress)
		return b, err
	}); err != nil {
		return LedgerStatus{}, mapErr("status: balances", err)
	}
	rows, err = s.pool.Query(ctx, `SELECT p.id, p.state, coalesce(p.txid, ''),
			(SELECT count(*) FROM payment_outputs o WHERE o.payment_id = p.id), p.total, coalesce(p.fee, 0), p.last_error, p.updated_at
		FROM payments p
		WHERE p.state IN ('planned', 'signed', 'broadcast', 'abandoning') OR p.id IN (SELECT id FROM payments ORDER BY id DESC LIMIT 20)
		ORDER BY p.id`)
	if err != nil {
		return LedgerStatus{}, mapErr("status: payments", err)
	}
	if st.Payments, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (PaymentSummary, error) {
		var p PaymentSummary
		err := r.Scan(&p.ID, &p.State, &p.TxID, &p.Outputs, &p.Total, &p.Fee, &p.LastError, &p.UpdatedAt)
		return p, err
	}); err != nil {
		return LedgerStatus{}, mapErr("status: payments", err)
	}
	return st, nil
}
