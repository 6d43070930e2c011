package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/embedded"
)

// errNotTaken is returned by submit-block when no node took the block.
var errNotTaken = errors.New("submit-block: no node took the block")

// sqlHint tells how to hand a stored block to a node by hand.
const sqlHint = `get its hex with SQL and give it to any node: ` +
	`psql "$DATABASE_URL" -Atc "SELECT encode(raw, 'hex') FROM blocks WHERE hash = '%s'" | bitcoin-cli -stdin submitblock ` +
	`(btcd: | btcctl submitblock -)`

// cmdSubmitBlock hands the block HASH stored in blocks.raw to the
// configured node(s) again and prints each node's answer and whether the
// block is then in its best chain: with --node rpc every --rpc-url, with
// --node embedded the node in --datadir, which only works while the daemon
// is not running (the daemon's own resubmitter hands its blocks over
// itself). It fails when no node took the block.
func cmdSubmitBlock(ctx context.Context, cfg *config, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("submit-block: usage: stratumd submit-block HASH")
	}
	hash, err := chainhash.NewHashFromStr(args[0])
	if err != nil || len(args[0]) != 2*chainhash.HashSize {
		return fmt.Errorf("submit-block: %q is not a block hash (64 hex digits)", args[0])
	}
	st, err := openStore(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	row, err := st.BlockByHash(ctx, hash.String())
	if err != nil {
		return fmt.Errorf("submit-block: %w", err)
	}
	raw, err := st.BlockRaw(ctx, hash.String())
	if err != nil {
		return fmt.Errorf("submit-block: %w", err)
	}
	blk := new(wire.MsgBlock)
	if err := blk.Deserialize(bytes.NewReader(raw)); err != nil || blk.BlockHash() != *hash {
		return fmt.Errorf("submit-block: the stored bytes of %s are not that block (%w)", hash, err)
	}
	fmt.Fprintf(stdout, "block %s, height %d, status %s, %d bytes\n", hash, row.Height, row.Status, len(raw))

	quiet := slog.New(slog.DiscardHandler)
	type answer struct {
		node string
		res  chain.SubmitResult
		err  error
	}
	var answers []answer
	var reader chain.BestChainReader
	switch cfg.Node {
	case "rpc":
		src, err := newRPCSource(cfg, quiet)
		if err != nil {
			return err
		}
		each, err := src.SubmitBlockEach(ctx, blk)
		if err != nil {
			return fmt.Errorf("submit-block: %w", err)
		}
		for _, a := range each {
			answers = append(answers, answer{a.Node, a.Result, a.Err})
		}
		reader = src
	default:
		node, err := embedded.New(embedded.Config{Network: cfg.params, DataDir: cfg.DataDir, Logger: quiet})
		if err != nil {
			return fmt.Errorf("submit-block: cannot open the embedded node in %s (%w); while stratumd runs it holds "+
				"the node and hands its found blocks over itself; or "+sqlHint, cfg.DataDir, err, hash)
		}
		defer node.Close()
		res, err := node.SubmitBlock(ctx, blk)
		answers = append(answers, answer{embedded.NodeName, res, err})
		reader = node
	}
	views := reader.BestChains(ctx, []int32{row.Height})
	taken := false
	for i, a := range answers {
		verdict := "not handed over: " + fmt.Sprint(a.err)
		if a.err == nil {
			verdict = a.res.Status.String()
			if a.res.Reason != "" {
				verdict += " (" + a.res.Reason + ")"
			}
			taken = taken || a.res.Status != chain.Rejected
		}
		onChain := "unknown"
		if i < len(views) && views[i].Err == nil {
			onChain = fmt.Sprintf("%v (tip at height %d)", views[i].Has(*hash, row.Height), views[i].Height)
		}
		fmt.Fprintf(stdout, "%s: %s; in its best chain: %s\n", a.node, verdict, onChain)
	}
	if !taken {
		return errNotTaken
	}
	return nil
}
