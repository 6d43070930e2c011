package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// BlockStatus is where a found block stands; see migrations/00003_blocks.sql.
type BlockStatus string

// Block statuses.
const (
	BlockSubmitted BlockStatus = "submitted"
	BlockRejected  BlockStatus = "rejected"
	BlockConfirmed BlockStatus = "confirmed"
	BlockOrphaned  BlockStatus = "orphaned"
	BlockMatured   BlockStatus = "matured"
	BlockCredited  BlockStatus = "credited"
)

// Valid reports whether st is one of the statuses above.
func (st BlockStatus) Valid() bool {
	switch st {
	case BlockSubmitted, BlockRejected, BlockConfirmed, BlockOrphaned, BlockMatured, BlockCredited:
		return true
	}
	return false
}

// SharePos locates one share: its acceptance time, instance and spool seq.
// Shares are ordered by (Time, Instance, Seq).
type SharePos struct {
	Time     time.Time
	Instance uint8
	Seq      uint64
}

// Block is a block the pool found.
type Block struct {
	ID                int64
	Height            int32
	Hash              string // hex, as block explorers show it
	PrevHash          string
	FoundAt           time.Time
	Username          string
	Worker            string
	Reward            int64 // satoshis: the coinbase value
	NetworkDifficulty float64
	Status            BlockStatus
	StatusReason      string
	InstanceID        uint8
	LastShare         SharePos // the round's last share (the block's own)
	UpdatedAt         time.Time
}

const blockColumns = `id, height, hash, prev_hash, found_at, username, worker, reward, network_difficulty,
	status, status_reason, instance_id, share_time, share_instance, share_seq, updated_at`

func scanBlock(row pgx.Row) (Block, error) {
	var b Block
	var inst, shInst int16
	var seq int64
	err := row.Scan(&b.ID, &b.Height, &b.Hash, &b.PrevHash, &b.FoundAt, &b.Username, &b.Worker,
		&b.Reward, &b.NetworkDifficulty, &b.Status, &b.StatusReason, &inst,
		&b.LastShare.Time, &shInst, &seq, &b.UpdatedAt)
	b.InstanceID, b.LastShare.Instance, b.LastShare.Seq = uint8(inst), uint8(shInst), uint64(seq)
	return b, err
}

const insertBlockSQL = `INSERT INTO blocks (height, hash, prev_hash, found_at, username, worker, reward,
	network_difficulty, status, status_reason, instance_id, share_time, share_instance, share_seq)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`

func blockArgs(b *Block) []any {
	return []any{b.Height, b.Hash, b.PrevHash, b.FoundAt, b.Username, b.Worker, b.Reward, b.NetworkDifficulty,
		b.Status, b.StatusReason, int16(b.InstanceID), b.LastShare.Time, int16(b.LastShare.Instance),
		int64(b.LastShare.Seq)}
}

// InsertBlock records a found block (status submitted unless b says
// otherwise). ErrExists when the hash is already recorded.
func (s *Store) InsertBlock(ctx context.Context, b Block) (Block, error) {
	if b.Status == "" {
		b.Status = BlockSubmitted
	}
	if !b.Status.Valid() {
		return Block{}, fmt.Errorf("insert block: status %q: %w", b.Status, ErrInvalid)
	}
	out, err := scanBlock(s.pool.QueryRow(ctx, insertBlockSQL+` RETURNING `+blockColumns, blockArgs(&b)...))
	if err != nil {
		return Block{}, mapErr(fmt.Sprintf("insert block %s", b.Hash), err)
	}
	return out, nil
}

// SetBlockStatus moves the block with hash to status, but only from one of
// the statuses in from (empty: from any). ErrNotFound when there is no such
// block, ErrConflict when it is in another status.
func (s *Store) SetBlockStatus(ctx context.Context, hash string, status BlockStatus, reason string, from ...BlockStatus) error {
	return moveBlock(ctx, s.pool, hash, status, reason, from...)
}

// BlockByHash returns the block with hash. ErrNotFound when there is none.
func (s *Store) BlockByHash(ctx context.Context, hash string) (Block, error) {
	b, err := scanBlock(s.pool.QueryRow(ctx, `SELECT `+blockColumns+` FROM blocks WHERE hash = $1`, hash))
	return b, mapErr(fmt.Sprintf("block %s", hash), err)
}

// Blocks returns the newest blocks first, at most limit, optionally only
// those in the given statuses.
func (s *Store) Blocks(ctx context.Context, limit int, statuses ...BlockStatus) ([]Block, error) {
	st := make([]string, len(statuses))
	for i, x := range statuses {
		st[i] = string(x)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+blockColumns+` FROM blocks
		WHERE cardinality($2::text[]) = 0 OR status = ANY($2)
		ORDER BY found_at DESC, id DESC LIMIT $1`, limit, st)
	if err != nil {
		return nil, mapErr("list blocks", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Block, error) { return scanBlock(r) })
	return out, mapErr("list blocks", err)
}

// PreviousBlock returns the pool's newest block found before pos that is not
// rejected (the start of the round ending at pos). ErrNotFound when there is
// none.
func (s *Store) PreviousBlock(ctx context.Context, pos SharePos) (Block, error) {
	b, err := scanBlock(s.pool.QueryRow(ctx, `SELECT `+blockColumns+` FROM blocks
		WHERE status <> 'rejected'
		  AND (share_time, share_instance, share_seq) < ($1, $2, $3)
		ORDER BY share_time DESC, share_instance DESC, share_seq DESC LIMIT 1`,
		pos.Time, int16(pos.Instance), int64(pos.Seq)))
	return b, mapErr("previous block", err)
}

// RoundUser sums one user's shares in a round.
type RoundUser struct {
	Username      string  `json:"username"`
	Shares        int64   `json:"shares"`
	DifficultySum float64 `json:"difficulty_sum"`
}

// RoundSummary sums shares per user in (after, through]: the round from the
// share after `after` up to and including `through`. A zero `after` starts at
// the first share. Users come sorted by name.
func (s *Store) RoundSummary(ctx context.Context, after, through SharePos) ([]RoundUser, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT username, count(*), sum(difficulty) FROM shares
		WHERE (time, instance_id, seq) > ($1, $2, $3)
		  AND (time, instance_id, seq) <= ($4, $5, $6)
		GROUP BY username ORDER BY username`,
		after.Time, int16(after.Instance), int64(after.Seq),
		through.Time, int16(through.Instance), int64(through.Seq))
	if err != nil {
		return nil, mapErr("round summary", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RoundUser, error) {
		var u RoundUser
		err := r.Scan(&u.Username, &u.Shares, &u.DifficultySum)
		return u, err
	})
	return out, mapErr("round summary", err)
}
