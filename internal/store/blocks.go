package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/username"
)

// GiveUpDepth is how many blocks the best chain must be past a submitted
// block's height, with another block at that height, before the block is
// given up as orphaned. Six blocks is the depth the network treats as final;
// a competing chain that long is not overtaken by handing the block around
// again. stratumd's resubmitter and payout's classification use this one
// rule, so that neither gives a block up while the other still follows it.
const GiveUpDepth = 6

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

// BlockMode says who a found block's coinbase paid; see
// migrations/00008_solo.sql.
type BlockMode string

// Block modes.
const (
	// ModePPLNS is the pool's block: its coinbase paid the pool, and payout
	// splits it among the PPLNS window's users.
	ModePPLNS BlockMode = "pplns"
	// ModeSolo is a solo miner's block (user name username.SoloPrefix +
	// address): its coinbase paid the miner; payout never credits it.
	ModeSolo BlockMode = "solo"
)

// ModeOf is the mode of a block found under user name name: ModeSolo for
// a solo miner's name, else ModePPLNS. The store sets a block's mode this
// way; nothing else decides it.
func ModeOf(name string) BlockMode {
	if username.IsSolo(name) {
		return ModeSolo
	}
	return ModePPLNS
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
	// Mode is ModeOf(Username), set by the store: on insert it is derived
	// from the user name whatever the field says.
	Mode BlockMode
	// Raw is the serialized block, stored by InsertBlock (and with its
	// share by StoreShares) when set. The queries returning Blocks leave it
	// nil: a block can be 4 MB; BlockRaw reads it.
	Raw []byte
}

const blockColumns = `id, height, hash, prev_hash, found_at, username, worker, reward, network_difficulty,
	status, status_reason, instance_id, share_time, share_instance, share_seq, updated_at, mode`

func scanBlock(row pgx.Row) (Block, error) {
	var b Block
	var inst, shInst int16
	var seq int64
	err := row.Scan(&b.ID, &b.Height, &b.Hash, &b.PrevHash, &b.FoundAt, &b.Username, &b.Worker,
		&b.Reward, &b.NetworkDifficulty, &b.Status, &b.StatusReason, &inst,
		&b.LastShare.Time, &shInst, &seq, &b.UpdatedAt, &b.Mode)
	b.InstanceID, b.LastShare.Instance, b.LastShare.Seq = uint8(inst), uint8(shInst), uint64(seq)
	return b, err
}

const insertBlockSQL = `INSERT INTO blocks (height, hash, prev_hash, found_at, username, worker, reward,
	network_difficulty, status, status_reason, instance_id, share_time, share_instance, share_seq, raw, mode)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`

func blockArgs(b *Block) []any {
	var raw []byte // NULL when there is none
	if len(b.Raw) > 0 {
		raw = b.Raw
	}
	return []any{b.Height, b.Hash, b.PrevHash, b.FoundAt, b.Username, b.Worker, b.Reward, b.NetworkDifficulty,
		b.Status, b.StatusReason, int16(b.InstanceID), b.LastShare.Time, int16(b.LastShare.Instance),
		int64(b.LastShare.Seq), raw, ModeOf(b.Username)}
}

// InsertBlock records a found block (status submitted unless b says
// otherwise), with b.Raw when set. ErrExists when the hash is already
// recorded. The returned Block has no Raw.
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

// PreviousBlock returns the newest block found before pos that is not
// rejected and is of the same round as a block found by finder: for a pool
// (PPLNS) finder the pool's previous PPLNS block (a solo block ends no pool
// round); for a solo finder (username.SoloPrefix) the previous block of
// that same solo miner. ErrNotFound when there is none.
func (s *Store) PreviousBlock(ctx context.Context, pos SharePos, finder string) (Block, error) {
	solo := ""
	if username.IsSolo(finder) {
		solo = finder
	}
	b, err := scanBlock(s.pool.QueryRow(ctx, `SELECT `+blockColumns+` FROM blocks
		WHERE status <> 'rejected'
		  AND (share_time, share_instance, share_seq) < ($1, $2, $3)
		  AND CASE WHEN $4 = '' THEN mode = 'pplns' ELSE username = $4 END
		ORDER BY share_time DESC, share_instance DESC, share_seq DESC LIMIT 1`,
		pos.Time, int16(pos.Instance), int64(pos.Seq), solo))
	return b, mapErr("previous block", err)
}

// RoundUser sums one user's shares in a round.
type RoundUser struct {
	Username      string  `json:"username"`
	Shares        int64   `json:"shares"`
	DifficultySum float64 `json:"difficulty_sum"`
}

// RoundSummary sums shares per user in (after, through]: the round from the
// share after `after` up to and including `through`, of a block found by
// finder: for a pool finder every pool user's shares (solo shares, user
// names starting with username.SoloPrefix, are never part of a pool
// round); for a solo finder that solo miner's shares alone. A zero `after`
// starts at the first share. Users come sorted by name.
func (s *Store) RoundSummary(ctx context.Context, after, through SharePos, finder string) ([]RoundUser, error) {
	solo := ""
	if username.IsSolo(finder) {
		solo = finder
	}
	rows, err := s.pool.Query(ctx, `
		SELECT username, count(*), sum(difficulty) FROM shares
		WHERE (time, instance_id, seq) > ($1, $2, $3)
		  AND (time, instance_id, seq) <= ($4, $5, $6)
		  AND CASE WHEN $7 = '' THEN NOT starts_with(username, 'solo:') ELSE username = $7 END
		GROUP BY username ORDER BY username`,
		after.Time, int16(after.Instance), int64(after.Seq),
		through.Time, int16(through.Instance), int64(through.Seq), solo)
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

// BlockRaw returns the serialized block with hash (as explorers show it).
// ErrNotFound when there is no such block or it has no stored bytes.
func (s *Store) BlockRaw(ctx context.Context, hash string) ([]byte, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT raw FROM blocks WHERE hash = $1`, hash).Scan(&raw)
	if err != nil {
		return nil, mapErr(fmt.Sprintf("block %s", hash), err)
	}
	if raw == nil {
		return nil, fmt.Errorf("block %s: no raw block stored (found before stratumd kept them, or never assembled): %w", hash, ErrNotFound)
	}
	return raw, nil
}

// PendingBlock is a found block still in status submitted: no node was
// seen to have it in its best chain yet.
type PendingBlock struct {
	Hash           string // hex, as block explorers show it
	Height         int32
	FoundAt        time.Time
	HasRaw         bool // BlockRaw has its bytes
	SubmitAttempts int
	LastSubmitAt   time.Time // zero before the first resubmission
}

// PendingBlocks returns the blocks in status submitted, lowest height
// first (parents before children), at most limit.
func (s *Store) PendingBlocks(ctx context.Context, limit int) ([]PendingBlock, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT hash, height, found_at, raw IS NOT NULL, submit_attempts, last_submit_at
		FROM blocks WHERE status = 'submitted' ORDER BY height, id LIMIT $1`, limit)
	if err != nil {
		return nil, mapErr("pending blocks", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PendingBlock, error) {
		var p PendingBlock
		var last *time.Time
		err := r.Scan(&p.Hash, &p.Height, &p.FoundAt, &p.HasRaw, &p.SubmitAttempts, &last)
		if last != nil {
			p.LastSubmitAt = *last
		}
		return p, err
	})
	return out, mapErr("pending blocks", err)
}

// RecordSubmitAttempt counts a resubmission of the block with hash at
// time at and keeps what the nodes answered (cut to 255 bytes).
// ErrNotFound when there is no such block (yet: its share may still be in
// the spool).
func (s *Store) RecordSubmitAttempt(ctx context.Context, hash string, at time.Time, result string) error {
	tag, err := s.pool.Exec(ctx, `
		UPDATE blocks SET submit_attempts = submit_attempts + 1, last_submit_at = $2,
			last_submit_result = left($3, 255), updated_at = now()
		WHERE hash = $1`, hash, at, result)
	if err != nil {
		return mapErr(fmt.Sprintf("record submit attempt of %s", hash), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("record submit attempt of %s: %w", hash, ErrNotFound)
	}
	return nil
}

// MarkBlockOnChain records that a node had the block with hash in its best
// chain at time at (on_chain_at keeps the first such time) and moves it
// from submitted, or from orphaned (a reorganization brought it back), to
// confirmed with reason. A block in another status keeps it. ErrNotFound
// when there is no such block (yet).
func (s *Store) MarkBlockOnChain(ctx context.Context, hash string, at time.Time, reason string) error {
	tag, err := s.pool.Exec(ctx, `
		UPDATE blocks SET on_chain_at = COALESCE(on_chain_at, $2),
			status = CASE WHEN status IN ('submitted', 'orphaned') THEN 'confirmed' ELSE status END,
			status_reason = CASE WHEN status IN ('submitted', 'orphaned') THEN $3 ELSE status_reason END,
			updated_at = now()
		WHERE hash = $1`, hash, at, reason)
	if err != nil {
		return mapErr(fmt.Sprintf("mark block %s on chain", hash), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("mark block %s on chain: %w", hash, ErrNotFound)
	}
	return nil
}

// BlocksToDump returns the blocks whose share dump is not written yet
// (dumped_at is unset), in the order they were found, at most limit.
func (s *Store) BlocksToDump(ctx context.Context, limit int) ([]Block, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+blockColumns+` FROM blocks WHERE dumped_at IS NULL
		ORDER BY share_time, share_instance, share_seq LIMIT $1`, limit)
	if err != nil {
		return nil, mapErr("blocks to dump", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Block, error) { return scanBlock(r) })
	return out, mapErr("blocks to dump", err)
}

// MarkDumped records that the share dump of the block with hash was
// written at time at. ErrNotFound when there is no such block.
func (s *Store) MarkDumped(ctx context.Context, hash string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE blocks SET dumped_at = $2 WHERE hash = $1`, hash, at)
	if err != nil {
		return mapErr(fmt.Sprintf("mark block %s dumped", hash), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("mark block %s dumped: %w", hash, ErrNotFound)
	}
	return nil
}
