package miner

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/bits"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/stratumd/stratumd/internal/chain"
)

// Limits on what the Miner accepts in a mining.notify.
const (
	// maxBranch is the longest merkle branch accepted: 2^32 transactions.
	maxBranch = 32
	// maxCoinbasePart bounds coinb1 and coinb2 (a coinbase is at most a
	// block, but no pool sends more than a few KB).
	maxCoinbasePart = 64 << 10
	// maxJobIDLen bounds the job id.
	maxJobIDLen = 128
)

// Job is one mining.notify as the miner understood it, with the session
// state in force when it arrived. A Job is immutable and safe for concurrent
// use; callers must not modify its slices.
type Job struct {
	// ID is the pool's job id.
	ID string
	// PrevHash is the previous block hash in internal byte order: the
	// notify's prevhash with each 4-byte word byte-swapped back.
	PrevHash chainhash.Hash
	// Coinb1 and Coinb2 surround the extranonce in the coinbase.
	Coinb1, Coinb2 []byte
	// MerkleBranch holds the branch hashes as sent: 32 internal bytes each.
	MerkleBranch []chainhash.Hash
	// Version, Bits and NTime are the notify's big-endian hex fields.
	Version, Bits, NTime uint32
	// Clean is the notify's clean_jobs flag.
	Clean bool

	// Extranonce1 and Extranonce2Size are the session's extranonce when the
	// job arrived.
	Extranonce1     []byte
	Extranonce2Size int
	// Difficulty is the share difficulty in force when the job arrived.
	Difficulty float64
	// VersionMask is the negotiated version-rolling mask when the job
	// arrived; zero when version rolling is off.
	VersionMask uint32
	// Received is when the notify was read.
	Received time.Time
}

// parseNotify decodes mining.notify params: [job_id, prevhash, coinb1,
// coinb2, [branch...], version, nbits, ntime, clean_jobs].
func parseNotify(params json.RawMessage) (*Job, error) {
	var p []json.RawMessage
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, fmt.Errorf("%w: mining.notify params: %w", ErrProtocol, err)
	}
	if len(p) < 9 {
		return nil, fmt.Errorf("%w: mining.notify has %d params, want 9", ErrProtocol, len(p))
	}
	j := new(Job)
	var err error
	if j.ID, err = str(p[0], "job id"); err != nil {
		return nil, err
	}
	if j.ID == "" || len(j.ID) > maxJobIDLen {
		return nil, fmt.Errorf("%w: mining.notify job id of %d bytes", ErrProtocol, len(j.ID))
	}
	prev, err := hexField(p[1], "prevhash", chainhash.HashSize, chainhash.HashSize)
	if err != nil {
		return nil, err
	}
	for i := 0; i < chainhash.HashSize; i += 4 {
		j.PrevHash[i], j.PrevHash[i+1], j.PrevHash[i+2], j.PrevHash[i+3] = prev[i+3], prev[i+2], prev[i+1], prev[i]
	}
	if j.Coinb1, err = hexField(p[2], "coinb1", 1, maxCoinbasePart); err != nil {
		return nil, err
	}
	if j.Coinb2, err = hexField(p[3], "coinb2", 1, maxCoinbasePart); err != nil {
		return nil, err
	}
	var branch []json.RawMessage
	if err := json.Unmarshal(p[4], &branch); err != nil || len(p[4]) == 0 || p[4][0] != '[' {
		return nil, fmt.Errorf("%w: mining.notify merkle branch is not an array", ErrProtocol)
	}
	if len(branch) > maxBranch {
		return nil, fmt.Errorf("%w: merkle branch of %d hashes", ErrProtocol, len(branch))
	}
	j.MerkleBranch = make([]chainhash.Hash, len(branch))
	for i, b := range branch {
		h, err := hexField(b, "merkle branch", chainhash.HashSize, chainhash.HashSize)
		if err != nil {
			return nil, err
		}
		copy(j.MerkleBranch[i][:], h)
	}
	if j.Version, err = hex32Field(p[5], "version"); err != nil {
		return nil, err
	}
	if j.Bits, err = hex32Field(p[6], "nbits"); err != nil {
		return nil, err
	}
	if j.NTime, err = hex32Field(p[7], "ntime"); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(p[8], &j.Clean); err != nil {
		return nil, fmt.Errorf("%w: mining.notify clean_jobs: %w", ErrProtocol, err)
	}
	return j, nil
}

// str decodes a JSON string.
func str(v json.RawMessage, field string) (string, error) {
	var s string
	if len(v) == 0 || v[0] != '"' {
		return "", fmt.Errorf("%w: %s is not a string", ErrProtocol, field)
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrProtocol, field, err)
	}
	return s, nil
}

// hexField decodes a JSON string of hex into minLen..maxLen bytes.
func hexField(v json.RawMessage, field string, minLen, maxLen int) ([]byte, error) {
	s, err := str(v, field)
	if err != nil {
		return nil, err
	}
	if len(s)%2 != 0 || len(s)/2 < minLen || len(s)/2 > maxLen {
		return nil, fmt.Errorf("%w: %s: %d hex digits, want %d..%d bytes", ErrProtocol, field, len(s), minLen, maxLen)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrProtocol, field, err)
	}
	return b, nil
}

// hex32Field decodes a JSON string of exactly 8 hex digits, big-endian.
func hex32Field(v json.RawMessage, field string) (uint32, error) {
	b, err := hexField(v, field, 4, 4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}

// NetworkTarget returns the block target encoded by the job's nbits.
func (j *Job) NetworkTarget() chain.Target {
	return chain.NewTarget(blockchain.CompactToBig(j.Bits))
}

// ShareTarget returns the share target of the job's difficulty.
func (j *Job) ShareTarget() chain.Target {
	return chain.NewTarget(chain.DifficultyToTarget(j.Difficulty))
}

// MerkleRoot returns the merkle root of the coinbase Coinb1 || Extranonce1
// || extranonce2 || Coinb2, folded up the branch.
func (j *Job) MerkleRoot(extranonce2 []byte) chainhash.Hash {
	cb := make([]byte, 0, len(j.Coinb1)+len(j.Extranonce1)+len(extranonce2)+len(j.Coinb2))
	cb = append(cb, j.Coinb1...)
	cb = append(cb, j.Extranonce1...)
	cb = append(cb, extranonce2...)
	cb = append(cb, j.Coinb2...)
	root := chainhash.DoubleHashH(cb)
	var pair [2 * chainhash.HashSize]byte
	for i := range j.MerkleBranch {
		copy(pair[:chainhash.HashSize], root[:])
		copy(pair[chainhash.HashSize:], j.MerkleBranch[i][:])
		root = chainhash.DoubleHashH(pair[:])
	}
	return root
}

// Header returns the 80-byte block header of a solution: version, prevhash,
// merkle root, ntime, nbits and nonce, integers little-endian. version is
// the full header version (rolled bits applied).
func (j *Job) Header(extranonce2 []byte, ntime, nonce, version uint32) [80]byte {
	var h [80]byte
	j.fillHeader(&h, j.MerkleRoot(extranonce2), ntime, version)
	binary.LittleEndian.PutUint32(h[76:], nonce)
	return h
}

func (j *Job) fillHeader(h *[80]byte, root chainhash.Hash, ntime, version uint32) {
	binary.LittleEndian.PutUint32(h[0:], version)
	copy(h[4:36], j.PrevHash[:])
	copy(h[36:68], root[:])
	binary.LittleEndian.PutUint32(h[68:], ntime)
	binary.LittleEndian.PutUint32(h[72:], j.Bits)
}

// Hash returns the block hash (double SHA-256 of Header) of a solution.
func (j *Job) Hash(extranonce2 []byte, ntime, nonce, version uint32) chainhash.Hash {
	h := j.Header(extranonce2, ntime, nonce, version)
	return doubleSHA(&h)
}

// RolledVersion returns the header version for version bits as sent in the
// 6th mining.submit param: the job's version outside mask, the bits inside.
func RolledVersion(jobVersion, mask, versionBits uint32) uint32 {
	return jobVersion&^mask | versionBits&mask
}

func doubleSHA(h *[80]byte) chainhash.Hash {
	first := sha256.Sum256(h[:])
	return sha256.Sum256(first[:])
}

// scatter deposits the low bits of v into the set bits of mask, lowest
// first (a software PDEP): the v-th combination of rollable version bits.
func scatter(v uint64, mask uint32) uint32 {
	var out uint32
	for m := mask; m != 0 && v != 0; m &= m - 1 {
		if v&1 != 0 {
			out |= 1 << bits.TrailingZeros32(m)
		}
		v >>= 1
	}
	return out
}

// putCounter writes the low bytes of v big-endian into b.
func putCounter(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}
