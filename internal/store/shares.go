package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/username"
)

// Share is one accepted share, as spooled and as stored in the shares table.
type Share struct {
	Time            time.Time // when it was accepted (UTC, microseconds kept)
	Username        string
	Worker          string
	JobID           string
	Height          int32   // height of the block the job builds
	Difficulty      float64 // the difficulty the share was assigned: what it is worth
	ShareDifficulty float64 // the actual difficulty of its hash
	InstanceID      uint8   // the stratumd instance that accepted it
	RemoteAddr      string  // the miner's address (IP, no port), may be empty
	// Block is set when the share solved a block: the blocks row, with the
	// full block, is then spooled with the share and stored in the same
	// transaction, so that a found block is as durable as an acknowledged
	// share.
	Block *BlockFound
}

// BlockFound is what a block-solving share carries into the blocks table.
// Height, finder, time and the round's last share come from the share.
type BlockFound struct {
	Hash              [32]byte // block hash, internal byte order
	PrevHash          [32]byte
	Reward            int64 // satoshis: the coinbase value
	NetworkDifficulty float64
	Status            BlockStatus // submitted or rejected
	Reason            string
	// Raw is the serialized block (witness included): at least the
	// 80-byte header, whose hash is Hash, and at most MaxBlockBytes. It is
	// empty only for a block that could not be assembled, and in records
	// spooled before it existed.
	Raw []byte
}

// MaxBlockBytes is the largest serialized block a share record carries and
// the blocks table keeps: a block's weight is at most 4,000,000 and each
// byte weighs at least one (btcd's wire.MaxBlockPayload).
const MaxBlockBytes = 4_000_000

// Limits and versions of the share encoding (checked by AppendShare).
const (
	maxShareText = 255 // username, worker, job id, remote address, block reason
	shareVersion = 1   // a share
	// shareBlockVersion is a share that solved a block: the block's row
	// follows, without the block itself. Written only for a block that
	// could not be assembled; records of version 2 spooled by an older
	// stratumd still decode.
	shareBlockVersion = 2
	// shareRawBlockVersion is version 2 followed by the serialized block:
	// a 4-byte little-endian length and the bytes.
	shareRawBlockVersion = 3
	// blockHeaderLen is the size of a serialized block header.
	blockHeaderLen = 80
)

// Validate checks a share before it is spooled, so that nothing the database
// would refuse is ever acknowledged.
func (s *Share) Validate() error {
	switch {
	case s.Time.IsZero() || s.Time.Year() < 2009 || s.Time.Year() > 9999:
		return fmt.Errorf("share time %v: %w", s.Time, ErrInvalid)
	case username.Valid(s.Username) != nil:
		return fmt.Errorf("share user %q: %w", s.Username, ErrInvalid)
	case len(s.Worker) > maxShareText || !utf8.ValidString(s.Worker) || hasNUL(s.Worker):
		return fmt.Errorf("share worker: %w", ErrInvalid)
	case s.JobID == "" || len(s.JobID) > maxShareText || !utf8.ValidString(s.JobID) || hasNUL(s.JobID):
		return fmt.Errorf("share job id: %w", ErrInvalid)
	case s.Height < 0:
		return fmt.Errorf("share height %d: %w", s.Height, ErrInvalid)
	case !(s.Difficulty > 0) || math.IsInf(s.Difficulty, 0):
		return fmt.Errorf("share difficulty %v: %w", s.Difficulty, ErrInvalid)
	case !(s.ShareDifficulty > 0) || math.IsInf(s.ShareDifficulty, 0):
		return fmt.Errorf("share hash difficulty %v: %w", s.ShareDifficulty, ErrInvalid)
	case len(s.RemoteAddr) > maxShareText || !utf8.ValidString(s.RemoteAddr) || hasNUL(s.RemoteAddr):
		return fmt.Errorf("share remote address: %w", ErrInvalid)
	}
	if b := s.Block; b != nil {
		switch {
		case b.Reward < 0:
			return fmt.Errorf("block reward %d: %w", b.Reward, ErrInvalid)
		case !(b.NetworkDifficulty > 0) || math.IsInf(b.NetworkDifficulty, 0):
			return fmt.Errorf("block network difficulty %v: %w", b.NetworkDifficulty, ErrInvalid)
		case b.Status != BlockSubmitted && b.Status != BlockRejected:
			return fmt.Errorf("block status %q: %w", b.Status, ErrInvalid)
		case len(b.Reason) > maxShareText || !utf8.ValidString(b.Reason) || hasNUL(b.Reason):
			return fmt.Errorf("block reason: %w", ErrInvalid)
		case len(b.Raw) == 0:
		case len(b.Raw) < blockHeaderLen || len(b.Raw) > MaxBlockBytes:
			return fmt.Errorf("block of %d bytes (want %d to %d): %w", len(b.Raw), blockHeaderLen, MaxBlockBytes, ErrInvalid)
		case chainhash.DoubleHashH(b.Raw[:blockHeaderLen]) != b.Hash:
			return fmt.Errorf("block bytes do not hash to %s: %w", chainHashString(b.Hash), ErrInvalid)
		}
	}
	return nil
}

// BlockRow is the blocks row of the block s solved (s.Block must be set),
// stored at spool position seq: what the drainer inserts with the share.
func (s *Share) BlockRow(seq uint64) Block {
	b := s.Block
	hash, prev := chainHashString(b.Hash), chainHashString(b.PrevHash)
	pos := SharePos{Time: s.Time, Instance: s.InstanceID, Seq: seq}
	return Block{Height: s.Height, Hash: hash, PrevHash: prev, FoundAt: s.Time, Username: s.Username,
		Worker: s.Worker, Reward: b.Reward, NetworkDifficulty: b.NetworkDifficulty, Status: b.Status,
		StatusReason: b.Reason, InstanceID: s.InstanceID, LastShare: pos, Raw: b.Raw}
}

// chainHashString is the hex of a hash in internal byte order, reversed as
// block explorers show it.
func chainHashString(h [32]byte) string {
	var r [32]byte
	for i := range h {
		r[i] = h[31-i]
	}
	return hex.EncodeToString(r[:])
}

func hasNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// AppendShare appends the spool encoding of s to dst: a version byte, the
// time in Unix microseconds, height, the two difficulties as IEEE-754 bits,
// the instance id, then username, worker, job id and remote address, each a
// one-byte length and its bytes. A block-solving share (version 3) goes on
// with the block's hash, previous hash, reward, network difficulty, status
// byte, reason (one-byte length) and the serialized block (four-byte
// length); version 2 is the same without the serialized block. It
// validates s first.
func AppendShare(dst []byte, s *Share) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return dst, err
	}
	version := byte(shareVersion)
	switch {
	case s.Block != nil && len(s.Block.Raw) > 0:
		version = shareRawBlockVersion
	case s.Block != nil:
		version = shareBlockVersion
	}
	dst = append(dst, version)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(s.Time.UnixMicro()))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(s.Height))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.Difficulty))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.ShareDifficulty))
	dst = append(dst, s.InstanceID)
	for _, t := range [...]string{s.Username, s.Worker, s.JobID, s.RemoteAddr} {
		dst = append(dst, byte(len(t)))
		dst = append(dst, t...)
	}
	if b := s.Block; b != nil {
		dst = append(dst, b.Hash[:]...)
		dst = append(dst, b.PrevHash[:]...)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(b.Reward))
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(b.NetworkDifficulty))
		st := byte(0)
		if b.Status == BlockRejected {
			st = 1
		}
		dst = append(dst, st, byte(len(b.Reason)))
		dst = append(dst, b.Reason...)
		if version == shareRawBlockVersion {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b.Raw)))
			dst = append(dst, b.Raw...)
		}
	}
	return dst, nil
}

// DecodeShare decodes what AppendShare wrote (every version), checking
// every length before using it and every value; it never panics on any
// input. The block bytes are copied: the result does not alias b.
func DecodeShare(b []byte) (Share, error) {
	var s Share
	const fixed = 1 + 8 + 4 + 8 + 8 + 1
	if len(b) < fixed {
		return s, fmt.Errorf("share record: %d bytes, need %d: %w", len(b), fixed, ErrInvalid)
	}
	if b[0] != shareVersion && b[0] != shareBlockVersion && b[0] != shareRawBlockVersion {
		return s, fmt.Errorf("share record: version %d: %w", b[0], ErrInvalid)
	}
	s.Time = time.UnixMicro(int64(binary.LittleEndian.Uint64(b[1:]))).UTC()
	s.Height = int32(binary.LittleEndian.Uint32(b[9:]))
	s.Difficulty = math.Float64frombits(binary.LittleEndian.Uint64(b[13:]))
	s.ShareDifficulty = math.Float64frombits(binary.LittleEndian.Uint64(b[21:]))
	s.InstanceID = b[29]
	rest := b[fixed:]
	var fields [4]string
	for i := range fields {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return s, fmt.Errorf("share record: truncated text field %d: %w", i, ErrInvalid)
		}
		n := int(rest[0])
		fields[i] = string(rest[1 : 1+n])
		rest = rest[1+n:]
	}
	if b[0] != shareVersion {
		const fixedBlock = 32 + 32 + 8 + 8 + 1 + 1
		if len(rest) < fixedBlock || len(rest) < fixedBlock+int(rest[fixedBlock-1]) {
			return s, fmt.Errorf("share record: truncated block: %w", ErrInvalid)
		}
		blk := &BlockFound{}
		copy(blk.Hash[:], rest[0:32])
		copy(blk.PrevHash[:], rest[32:64])
		blk.Reward = int64(binary.LittleEndian.Uint64(rest[64:]))
		blk.NetworkDifficulty = math.Float64frombits(binary.LittleEndian.Uint64(rest[72:]))
		switch rest[80] {
		case 0:
			blk.Status = BlockSubmitted
		case 1:
			blk.Status = BlockRejected
		default:
			return s, fmt.Errorf("share record: block status %d: %w", rest[80], ErrInvalid)
		}
		n := int(rest[81])
		blk.Reason = string(rest[fixedBlock : fixedBlock+n])
		rest = rest[fixedBlock+n:]
		if b[0] == shareRawBlockVersion {
			if len(rest) < 4 {
				return s, fmt.Errorf("share record: truncated block length: %w", ErrInvalid)
			}
			size := binary.LittleEndian.Uint32(rest)
			if size < blockHeaderLen || size > MaxBlockBytes {
				return s, fmt.Errorf("share record: block of %d bytes (want %d to %d): %w", size, blockHeaderLen, MaxBlockBytes, ErrInvalid)
			}
			if uint64(len(rest)-4) < uint64(size) {
				return s, fmt.Errorf("share record: block of %d bytes truncated to %d: %w", size, len(rest)-4, ErrInvalid)
			}
			blk.Raw = bytes.Clone(rest[4 : 4+size])
			rest = rest[4+size:]
		}
		s.Block = blk
	}
	if len(rest) != 0 {
		return s, fmt.Errorf("share record: %d trailing bytes: %w", len(rest), ErrInvalid)
	}
	s.Username, s.Worker, s.JobID, s.RemoteAddr = fields[0], fields[1], fields[2], fields[3]
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("share record: %w", err)
	}
	return s, nil
}

// StoredShare is a share with its position in the spool it came through.
type StoredShare struct {
	Share
	Seq uint64
}

var shareCopyColumns = []string{"time", "username", "worker", "job_id", "height",
	"difficulty", "share_difficulty", "instance_id", "remote_addr", "spool_id", "seq"}

// copyShares COPYs shares into the shares table inside tx.
func copyShares(ctx context.Context, tx pgx.Tx, spoolID [16]byte, shares []StoredShare) (int64, error) {
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(shares) {
			return nil, nil
		}
		s := &shares[i]
		i++
		return []any{s.Time, s.Username, s.Worker, s.JobID, s.Height, s.Difficulty,
			s.ShareDifficulty, int16(s.InstanceID), s.RemoteAddr, spoolID, int64(s.Seq)}, nil
	})
	return tx.CopyFrom(ctx, pgx.Identifier{"shares"}, shareCopyColumns, src)
}

// StoreShares writes shares that came through the spool spoolID in one
// transaction with COPY and records the highest seq as that spool's progress.
// The progress may only move forward: when it already covers shares[0], the
// call fails with ErrConflict and writes nothing (another drainer, or a
// replay that should have skipped them). shares must be in seq order.
// Partitions for the shares' days are created when missing.
func (s *Store) StoreShares(ctx context.Context, spoolID [16]byte, instance uint8, shares []StoredShare) error {
	if len(shares) == 0 {
		return nil
	}
	err := s.storeShares(ctx, spoolID, instance, shares)
	if isNoPartition(err) {
		// A partition this process created was dropped since: forget what
		// it knew and create them again.
		s.forgetPartitions()
		err = s.storeShares(ctx, spoolID, instance, shares)
	}
	return mapErr(fmt.Sprintf("store shares %d..%d", shares[0].Seq, shares[len(shares)-1].Seq), err)
}

func (s *Store) storeShares(ctx context.Context, spoolID [16]byte, instance uint8, shares []StoredShare) error {
	if err := s.ensurePartitionsFor(ctx, shares); err != nil {
		return err
	}
	first, last := shares[0].Seq, shares[len(shares)-1].Seq
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var prev int64
		err := tx.QueryRow(ctx, `
			INSERT INTO spool_progress (spool_id, instance_id, last_seq) VALUES ($1, $2, 0)
			ON CONFLICT (spool_id) DO UPDATE SET spool_id = EXCLUDED.spool_id
			RETURNING last_seq`, spoolID, int16(instance)).Scan(&prev) // locks the row
		if err != nil {
			return err
		}
		if uint64(prev) >= first {
			return fmt.Errorf("spool progress is at %d, batch starts at %d: %w", prev, first, ErrConflict)
		}
		n, err := copyShares(ctx, tx, spoolID, shares)
		if err != nil {
			return err
		}
		if n != int64(len(shares)) {
			return fmt.Errorf("copied %d of %d shares", n, len(shares))
		}
		// The rest goes in one round trip: the worker_daily rollup, the
		// blocks rows and the spool's progress.
		var b pgx.Batch
		rollup, rollupArgs := workerDailyUpsert(shares)
		b.Queue(rollup, rollupArgs...)
		for i := range shares {
			if shares[i].Block == nil {
				continue
			}
			// The row may exist already (stratumd inserts it at once as
			// well); the spooled one only makes sure it is never missing.
			row := shares[i].BlockRow(shares[i].Seq)
			b.Queue(insertBlockSQL+` ON CONFLICT (hash) DO NOTHING`, blockArgs(&row)...)
		}
		b.Queue(`UPDATE spool_progress SET last_seq = $2, updated_at = now() WHERE spool_id = $1`,
			spoolID, int64(last))
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return fmt.Errorf("worker_daily, blocks and spool progress: %w", err)
		}
		return nil
	})
}

// SkipShares advances spoolID's progress over seq numbers that are not
// stored (a record the database refused, set aside by the drainer).
func (s *Store) SkipShares(ctx context.Context, spoolID [16]byte, instance uint8, through uint64) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO spool_progress (spool_id, instance_id, last_seq) VALUES ($1, $2, $3)
		ON CONFLICT (spool_id) DO UPDATE SET last_seq = GREATEST(spool_progress.last_seq, EXCLUDED.last_seq), updated_at = now()`,
		spoolID, int16(instance), int64(through))
	return mapErr(fmt.Sprintf("skip shares through %d", through), err)
}

// SpoolProgress returns the highest seq of spoolID stored so far (0: none).
func (s *Store) SpoolProgress(ctx context.Context, spoolID [16]byte) (uint64, error) {
	var last int64
	err := s.pool.QueryRow(ctx, `SELECT last_seq FROM spool_progress WHERE spool_id = $1`, spoolID).Scan(&last)
	if err != nil {
		err = mapErr("spool progress", err)
		if isNotFound(err) {
			return 0, nil
		}
		return 0, err
	}
	return uint64(last), nil
}

// CountShares returns the number of shares stored and the sum of their
// assigned difficulty, for tests and status pages.
func (s *Store) CountShares(ctx context.Context) (n int64, diffSum float64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT count(*), COALESCE(sum(difficulty), 0) FROM shares`).Scan(&n, &diffSum)
	return n, diffSum, mapErr("count shares", err)
}
