package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The payout ledger's blocks side: which found blocks a run classifies,
// their status moves, and the crediting of a matured block. See
// migrations/00004_payout_ledger.sql.

// UnsettledBlocks returns the blocks a payout run classifies (submitted,
// confirmed, matured, and orphaned ones, which may come back in a
// reorganization), by height.
func (r *PayoutRun) UnsettledBlocks(ctx context.Context) ([]Block, error) {
	return r.blocksIn(ctx, "unsettled blocks", false, BlockSubmitted, BlockConfirmed, BlockMatured, BlockOrphaned)
}

// MaturedBlocks returns the matured PPLNS blocks (due to be credited), by
// height. A solo block (ModeSolo) is never among them: its coinbase paid
// its finder, and payout never credits it; it stays matured.
func (r *PayoutRun) MaturedBlocks(ctx context.Context) ([]Block, error) {
	return r.blocksIn(ctx, "matured blocks", true, BlockMatured)
}

// blocksIn returns the blocks in statuses, by height; with pplnsOnly, no
// solo block.
func (r *PayoutRun) blocksIn(ctx context.Context, op string, pplnsOnly bool, statuses ...BlockStatus) ([]Block, error) {
	st := make([]string, len(statuses))
	for i, x := range statuses {
		st[i] = string(x)
	}
	rows, err := r.db.Query(ctx, `SELECT `+blockColumns+` FROM blocks
		WHERE status = ANY($1) AND (NOT $2 OR mode = 'pplns') ORDER BY height, id`, st, pplnsOnly)
	if err != nil {
		return nil, mapErr(op, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Block, error) { return scanBlock(r) })
	return out, mapErr(op, err)
}

// MoveBlock moves the block with hash from status from to status to.
// ErrConflict when it is not in from (any more), ErrNotFound when there is
// no such block.
func (r *PayoutRun) MoveBlock(ctx context.Context, hash string, from, to BlockStatus, reason string) error {
	return moveBlock(ctx, r.db, hash, to, reason, from)
}

// moveBlock is the one UPDATE of blocks.status (Store.SetBlockStatus, a
// payout run's MoveBlock and CreditBlock use it): the block with hash
// moves to status, but only from one of the statuses in from (none: from
// any).
func moveBlock(ctx context.Context, q dbtx, hash string, status BlockStatus, reason string, from ...BlockStatus) error {
	if !status.Valid() {
		return fmt.Errorf("set block status: %q: %w", status, ErrInvalid)
	}
	fromText := make([]string, len(from))
	for i, f := range from {
		fromText[i] = string(f)
	}
	tag, err := q.Exec(ctx, `
		UPDATE blocks SET status = $2, status_reason = $3, updated_at = now()
		WHERE hash = $1 AND (cardinality($4::text[]) = 0 OR status = ANY($4))`,
		hash, status, reason, fromText)
	if err != nil {
		return mapErr(fmt.Sprintf("set block %s %s", hash, status), err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var n int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM blocks WHERE hash = $1`, hash).Scan(&n); err != nil {
		return mapErr(fmt.Sprintf("block %s", hash), err)
	}
	if n == 0 {
		return fmt.Errorf("block %s: %w", hash, ErrNotFound)
	}
	return fmt.Errorf("set block %s %s: not in %v: %w", hash, status, from, ErrConflict)
}

// UserCredit is what one user earns from one block.
type UserCredit struct {
	Username   string
	Amount     int64 // satoshis, > 0
	Difficulty float64
}

// BlockCredit is a matured block's PPLNS split, as block_splits and
// credits record it.
type BlockCredit struct {
	Hash          string
	Reward        int64
	FeeBPS        int
	PoolFee       int64
	Remainder     int64
	MinersTotal   int64
	PPLNSFactor   float64
	WindowTarget  float64
	WindowCounted float64
	WindowShares  int64
	Oldest        *SharePos // the oldest share counted (in part); nil: none
	Credits       []UserCredit
}

// CreditBlock records c in one transaction: the block moves from matured
// to credited, its block_splits row and its users' credits are inserted.
// A block is credited exactly once: ErrConflict when it is no longer
// matured (ErrNotFound when there is no such block).
func (r *PayoutRun) CreditBlock(ctx context.Context, c BlockCredit) error {
	op := "credit block " + c.Hash
	return r.inTx(ctx, op, func(tx pgx.Tx) error {
		if err := moveBlock(ctx, tx, c.Hash, BlockCredited, fmt.Sprintf("%d users credited", len(c.Credits)), BlockMatured); err != nil {
			return err
		}
		var oT, oI, oS any
		if c.Oldest != nil {
			oT, oI, oS = c.Oldest.Time, int16(c.Oldest.Instance), int64(c.Oldest.Seq)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO block_splits (block_id, reward, fee_bps, pool_fee, pool_remainder,
				miners_total, pplns_factor, window_target, window_counted, window_shares, oldest_time, oldest_instance, oldest_seq)
			SELECT id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM blocks WHERE hash = $1`,
			c.Hash, c.Reward, c.FeeBPS, c.PoolFee, c.Remainder, c.MinersTotal, c.PPLNSFactor,
			c.WindowTarget, c.WindowCounted, c.WindowShares, oT, oI, oS); err != nil {
			return mapErr(op+": insert split", err)
		}
		users := make([]string, len(c.Credits))
		amounts := make([]int64, len(c.Credits))
		diffs := make([]float64, len(c.Credits))
		for i, u := range c.Credits {
			users[i], amounts[i], diffs[i] = u.Username, u.Amount, u.Difficulty
		}
		if _, err := tx.Exec(ctx, `INSERT INTO credits (block_id, username, amount, difficulty)
			SELECT b.id, u, a, d FROM blocks b, unnest($2::text[], $3::bigint[], $4::float8[]) AS x(u, a, d) WHERE b.hash = $1`,
			c.Hash, users, amounts, diffs); err != nil {
			return mapErr(op+": insert credits", err)
		}
		return nil
	})
}
