package embedded

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
)

// Coinbase layout of the blocks Generate mines.
const (
	// GenerateTag is the coinbase tag of blocks mined by Generate.
	GenerateTag = "/stratumd-generate/"
	// generateExtranonceSize is the size of both extranonces of
	// Generate's coinbases.
	generateExtranonceSize = 4
	// grindCheckEvery is how many nonces are tried between context checks.
	grindCheckEvery = 1 << 16
)

// Generate mines count blocks on the best tip in-process, each paying its
// whole coinbase value to payoutScript: a template, a coinbase from
// chain.NewJob (BIP34 height, witness commitment when the template carries
// witness transactions), nonce grinding, SubmitBlock. It returns the hashes
// of the blocks, in order. It is the pre-mine option for regtest (segwit
// activates at height 432; coinbases mature after 100 blocks) and a test
// helper, and fails with ErrNotDevNetwork off regtest and simnet. A block
// that is not accepted stops it with an error.
func (n *Node) Generate(ctx context.Context, count int, payoutScript []byte) ([]chainhash.Hash, error) {
	if !n.devNet {
		return nil, fmt.Errorf("%w: cannot generate on %s", ErrNotDevNetwork, n.params.Name)
	}
	if count < 0 {
		return nil, fmt.Errorf("embedded: generate %d blocks", count)
	}
	cfg := chain.CoinbaseConfig{
		PayoutScript:    payoutScript,
		Tag:             GenerateTag,
		Extranonce1Size: generateExtranonceSize,
		Extranonce2Size: generateExtranonceSize,
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hashes := make([]chainhash.Hash, 0, count)
	for i := range count {
		tmpl, err := n.Template(ctx)
		if err != nil {
			return hashes, err
		}
		job, err := chain.NewJob(strconv.Itoa(i), tmpl, cfg)
		if err != nil {
			return hashes, err
		}
		block, err := Solve(ctx, job)
		if err != nil {
			return hashes, err
		}
		res, err := n.SubmitBlock(ctx, block)
		if err != nil {
			return hashes, err
		}
		hash := block.BlockHash()
		if res.Status != chain.Accepted {
			return hashes, fmt.Errorf("embedded: generated block %s at height %d: %s %s",
				hash, tmpl.Height, res.Status, res.Reason)
		}
		hashes = append(hashes, hash)
	}
	return hashes, nil
}

// Solve grinds job's nonce (and, when the nonces run out, its extranonce2)
// at the template's current time and version until the header meets the
// network target, and returns the block. Extranonce1 is all zero bytes. It
// is meant for regtest and simnet, whose targets about every second hash
// meets; it stops with ctx's error.
func Solve(ctx context.Context, job *chain.Job) (*wire.MsgBlock, error) {
	en1 := make([]byte, job.Extranonce1Size)
	en2 := make([]byte, job.Extranonce2Size)
	ntime := uint32(job.Template.CurTime.Unix())
	version := job.Template.Version
	for roll := uint64(0); ; roll++ {
		var buf [8]byte
		binary.LittleEndian.PutUint64(buf[:], roll)
		copy(en2, buf[:])
		for nonce := uint32(0); ; nonce++ {
			if nonce%grindCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			hash, _ := job.Hash(en1, en2, ntime, nonce, version)
			if job.Target.Meets(&hash) {
				return job.Block(en1, en2, ntime, nonce, version)
			}
			if nonce == math.MaxUint32 {
				break
			}
		}
	}
}
