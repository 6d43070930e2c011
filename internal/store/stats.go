package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// LatencyHistogram is a histogram of durations with fixed buckets, for
// metrics. The zero value is empty and ready to use.
type LatencyHistogram struct {
	// Bounds are the buckets' upper bounds, ascending (LatencyBounds).
	Bounds []time.Duration
	// Counts[i] counts observations in (Bounds[i-1], Bounds[i]]; the one
	// extra last element counts those above every bound.
	Counts []uint64
	// Count and Sum are the number and total of all observations.
	Count uint64
	Sum   time.Duration
	// Last and Max are the latest and the largest observation.
	Last, Max time.Duration
}

// LatencyBounds returns the bucket bounds every LatencyHistogram uses:
// 1 ms to 10 s.
func LatencyBounds() []time.Duration {
	ms := time.Millisecond
	return []time.Duration{ms, 2500 * time.Microsecond, 5 * ms, 10 * ms, 25 * ms, 50 * ms,
		100 * ms, 250 * ms, 500 * ms, time.Second, 2500 * ms, 5 * time.Second, 10 * time.Second}
}

// observe records one duration.
func (h *LatencyHistogram) observe(d time.Duration) {
	if h.Bounds == nil {
		h.Bounds = LatencyBounds()
		h.Counts = make([]uint64, len(h.Bounds)+1)
	}
	i := 0
	for i < len(h.Bounds) && d > h.Bounds[i] {
		i++
	}
	h.Counts[i]++
	h.Count++
	h.Sum += d
	h.Last = d
	h.Max = max(h.Max, d)
}

// clone returns a copy that shares no memory with h.
func (h *LatencyHistogram) clone() LatencyHistogram {
	c := *h
	if h.Bounds == nil {
		c.Bounds = LatencyBounds()
		c.Counts = make([]uint64, len(c.Bounds)+1)
		return c
	}
	c.Bounds = append([]time.Duration(nil), h.Bounds...)
	c.Counts = append([]uint64(nil), h.Counts...)
	return c
}

// BlockCounts returns how many of the pool's blocks are in each status;
// statuses without blocks are missing from the map.
func (s *Store) BlockCounts(ctx context.Context) (map[BlockStatus]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM blocks GROUP BY status`)
	if err != nil {
		return nil, mapErr("count blocks", err)
	}
	out := make(map[BlockStatus]int64)
	var st BlockStatus
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&st, &n}, func() error {
		out[st] = n
		return nil
	})
	if err != nil {
		return nil, mapErr("count blocks", err)
	}
	return out, nil
}

// WorkerStat sums one worker's stored shares over a period.
type WorkerStat struct {
	Worker string
	Shares int64
	// Difficulty is the sum of the shares' assigned difficulty.
	Difficulty float64
	LastShare  time.Time
}

// WorkerStats sums user's stored shares since the given time per worker,
// sorted by worker name. A user without shares in the period gets an
// empty list.
func (s *Store) WorkerStats(ctx context.Context, user string, since time.Time) ([]WorkerStat, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT worker, count(*), sum(difficulty), max(time) FROM shares
		WHERE username = $1 AND time >= $2
		GROUP BY worker ORDER BY worker`, user, since)
	if err != nil {
		return nil, mapErr(fmt.Sprintf("worker stats of %q", user), err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WorkerStat, error) {
		var w WorkerStat
		err := r.Scan(&w.Worker, &w.Shares, &w.Difficulty, &w.LastShare)
		return w, err
	})
	return out, mapErr(fmt.Sprintf("worker stats of %q", user), err)
}

// Balance is one user's row of the payout ledger's balances view, in
// satoshis: Balance = Credited - Paid - Pending.
type Balance struct {
	Username string
	Credited int64
	Paid     int64 // by confirmed payments
	Pending  int64 // by payments not confirmed (nor given up: failed, abandoned) yet
	Balance  int64
}

// UserBalance returns user's balance. ErrNotFound when the user has never
// been credited or paid.
func (s *Store) UserBalance(ctx context.Context, user string) (Balance, error) {
	var b Balance
	err := s.pool.QueryRow(ctx, `SELECT username, credited, paid, pending, balance FROM balances WHERE username = $1`,
		user).Scan(&b.Username, &b.Credited, &b.Paid, &b.Pending, &b.Balance)
	return b, mapErr(fmt.Sprintf("balance of %q", user), err)
}

// Payment is one payout transaction of the ledger with its outputs.
type Payment struct {
	ID        int64
	State     string // planned, signed, broadcast, abandoning, confirmed, abandoned or failed
	Total     int64  // satoshis paid to users
	FeeRate   int64  // sat/vB asked for
	Fee       int64  // satoshis, 0 until signed
	TxID      string // empty until signed
	BlockHash string // empty until confirmed
	CreatedAt time.Time
	UpdatedAt time.Time
	Outputs   []PaymentOutput
}

// PaymentOutput is what one payment pays one user.
type PaymentOutput struct {
	Username string
	Address  string
	Amount   int64
}

// Payments returns the newest payments first, at most limit. With a user
// name, only the payments that pay that user, each with that user's
// output alone; otherwise each with all its outputs, sorted by user.
func (s *Store) Payments(ctx context.Context, user string, limit int) ([]Payment, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, state, total, fee_rate, COALESCE(fee, 0), COALESCE(txid, ''), COALESCE(block_hash, ''),
			created_at, updated_at
		FROM payments p
		WHERE $1 = '' OR EXISTS (SELECT 1 FROM payment_outputs o WHERE o.payment_id = p.id AND o.username = $1)
		ORDER BY id DESC LIMIT $2`, user, limit)
	if err != nil {
		return nil, mapErr("list payments", err)
	}
	pays, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Payment, error) {
		var p Payment
		err := r.Scan(&p.ID, &p.State, &p.Total, &p.FeeRate, &p.Fee, &p.TxID, &p.BlockHash, &p.CreatedAt, &p.UpdatedAt)
		return p, err
	})
	if err != nil || len(pays) == 0 {
		return pays, mapErr("list payments", err)
	}
	ids := make([]int64, len(pays))
	byID := make(map[int64]*Payment, len(pays))
	for i := range pays {
		ids[i] = pays[i].ID
		byID[pays[i].ID] = &pays[i]
	}
	rows, err = s.pool.Query(ctx, `
		SELECT payment_id, username, address, amount FROM payment_outputs
		WHERE payment_id = ANY($1) AND ($2 = '' OR username = $2)
		ORDER BY payment_id, username`, ids, user)
	if err != nil {
		return nil, mapErr("list payment outputs", err)
	}
	var id int64
	var o PaymentOutput
	_, err = pgx.ForEachRow(rows, []any{&id, &o.Username, &o.Address, &o.Amount}, func() error {
		p := byID[id]
		p.Outputs = append(p.Outputs, o)
		return nil
	})
	if err != nil {
		return nil, mapErr("list payment outputs", err)
	}
	return pays, nil
}
