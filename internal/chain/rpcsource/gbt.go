package rpcsource

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
)

// gbtRequest is the getblocktemplate request: BIP 22/23 template mode with
// the segwit rule (Core refuses templates without it), the signet rule on
// signet (Core refuses signet templates without it), and the coinbasevalue
// capability (btcd then leaves the coinbase to us).
type gbtRequest struct {
	Mode         string   `json:"mode"`
	Rules        []string `json:"rules"`
	Capabilities []string `json:"capabilities"`
	LongPollID   string   `json:"longpollid,omitempty"`
}

// newGBTRequest returns the request for the network params, long polling
// on longPollID if set. Core checks the rules of a long poll too, after
// the wait.
func newGBTRequest(longPollID string, params *chaincfg.Params) gbtRequest {
	rules := []string{ruleSegwit}
	if chain.IsSignet(params) {
		rules = append(rules, ruleSignet)
	}
	return gbtRequest{
		Mode:         "template",
		Rules:        rules,
		Capabilities: []string{"coinbasevalue", "longpoll"},
		LongPollID:   longPollID,
	}
}

// Rules of getblocktemplate (BIP 9) that stratumd follows: it builds segwit
// blocks (the witness commitment) and signet blocks (a commitment in every
// block, and only an OP_TRUE challenge, see chain.CheckSignetChallenge).
// A reply whose rules include another "!"-prefixed rule (one the client
// must understand) is refused.
const (
	ruleSegwit = "segwit"
	ruleSignet = "signet"
)

// gbtReply is the part of a getblocktemplate reply we use. Required fields
// are pointers so that a missing one is told from a zero one.
type gbtReply struct {
	Version                  *int64   `json:"version"`
	PreviousBlockHash        *string  `json:"previousblockhash"`
	Transactions             *[]gbtTx `json:"transactions"`
	CoinbaseValue            *int64   `json:"coinbasevalue"`
	LongPollID               string   `json:"longpollid"`
	Target                   string   `json:"target"`
	MinTime                  *int64   `json:"mintime"`
	CurTime                  *int64   `json:"curtime"`
	Bits                     *string  `json:"bits"`
	Height                   *int64   `json:"height"`
	DefaultWitnessCommitment string   `json:"default_witness_commitment"`
	Rules                    []string `json:"rules"`
	VBRequired               uint32   `json:"vbrequired"`
	SignetChallenge          *string  `json:"signet_challenge"`
}

// gbtTx is one transaction of a getblocktemplate reply.
type gbtTx struct {
	Data    string  `json:"data"`
	TxID    string  `json:"txid"`
	Hash    string  `json:"hash"`
	Depends []int64 `json:"depends"`
	Fee     *int64  `json:"fee"`
	SigOps  *int64  `json:"sigops"`
	Weight  *int64  `json:"weight"`
}

// templateFromGBT decodes and validates a getblocktemplate reply (the JSON
// result) for the network params and returns the template and the reply's
// long-poll id. Everything is checked: a reply is untrusted input, and a
// template that would make an invalid block wastes the pool's work. Errors
// wrap ErrBadReply, except that a signet whose challenge stratumd cannot
// solve gives an error wrapping chain.ErrUnmineableSignet. On signet the
// template requires a witness commitment (chain.Template).
func templateFromGBT(raw []byte, params *chaincfg.Params) (*chain.Template, string, error) {
	var r gbtReply
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, "", fmt.Errorf("%w: template: %w", ErrBadReply, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: template: %s", ErrBadReply, fmt.Sprintf(format, a...))
	}
	switch {
	case r.Version == nil:
		return nil, "", bad("no version")
	case r.PreviousBlockHash == nil:
		return nil, "", bad("no previousblockhash")
	case r.Transactions == nil:
		return nil, "", bad("no transactions")
	case r.CoinbaseValue == nil:
		return nil, "", bad("no coinbasevalue")
	case r.MinTime == nil:
		return nil, "", bad("no mintime")
	case r.CurTime == nil:
		return nil, "", bad("no curtime")
	case r.Bits == nil:
		return nil, "", bad("no bits")
	case r.Height == nil:
		return nil, "", bad("no height")
	}

	t := &chain.Template{}
	if h := *r.Height; h < 1 || h > math.MaxInt32 {
		return nil, "", bad("height %d", h)
	}
	t.Height = int32(*r.Height)
	if v := *r.Version; v < 1 || v > math.MaxUint32 {
		return nil, "", bad("version %d", v)
	}
	t.Version = int32(uint32(*r.Version))
	if uint32(t.Version)&r.VBRequired != r.VBRequired {
		return nil, "", bad("version %08x lacks the required bits %08x", uint32(t.Version), r.VBRequired)
	}
	for _, rule := range r.Rules {
		if name, must := strings.CutPrefix(rule, "!"); must && name != ruleSegwit && name != ruleSignet {
			return nil, "", bad("rule %q must be understood and stratumd does not know it", rule)
		}
	}
	prev, err := parseHash(*r.PreviousBlockHash)
	if err != nil {
		return nil, "", bad("previousblockhash: %v", err)
	}
	t.PrevHash = prev

	bits, err := parseBits(*r.Bits)
	if err != nil {
		return nil, "", bad("bits: %v", err)
	}
	target := blockchain.CompactToBig(bits)
	if target.Sign() <= 0 || target.Cmp(params.PowLimit) > 0 {
		return nil, "", bad("bits %08x: target out of range for %s", bits, params.Name)
	}
	t.Bits = bits
	if r.Target != "" {
		tb, err := hex.DecodeString(r.Target)
		if err != nil || len(tb) != 32 || new(big.Int).SetBytes(tb).Cmp(target) != 0 {
			return nil, "", bad("target %q does not match bits %08x", r.Target, bits)
		}
	}

	minTime, curTime := *r.MinTime, *r.CurTime
	if minTime < 1 || minTime > math.MaxUint32 || curTime < 1 || curTime > math.MaxUint32 {
		return nil, "", bad("mintime %d or curtime %d out of range", minTime, curTime)
	}
	t.MinTime = time.Unix(minTime, 0)
	t.CurTime = time.Unix(max(curTime, minTime), 0)

	txs, fees, sigops, err := decodeTxs(*r.Transactions)
	if err != nil {
		return nil, "", err
	}
	t.Transactions, t.Fees, t.SigOpCosts = txs, fees, sigops

	cbv := *r.CoinbaseValue
	if cbv < 0 || cbv > btcutil.MaxSatoshi {
		return nil, "", bad("coinbasevalue %d", cbv)
	}
	if fees != nil {
		limit := blockchain.CalcBlockSubsidy(t.Height, params)
		for _, f := range fees {
			limit += f
		}
		if cbv > limit {
			return nil, "", bad("coinbasevalue %d exceeds subsidy plus fees %d", cbv, limit)
		}
	}
	t.CoinbaseValue = cbv

	if chain.IsSignet(params) {
		if r.SignetChallenge == nil {
			return nil, "", bad("no signet_challenge on %s", params.Name)
		}
		challenge, err := hex.DecodeString(*r.SignetChallenge)
		if err != nil {
			return nil, "", bad("signet_challenge: %v", err)
		}
		if err := chain.CheckSignetChallenge(challenge); err != nil {
			return nil, "", fmt.Errorf("rpcsource: template: %w", err)
		}
		t.RequireWitnessCommitment = true
	}

	if r.DefaultWitnessCommitment != "" {
		if err := checkWitnessCommitment(r.DefaultWitnessCommitment, txs); err != nil {
			return nil, "", err
		}
	}
	return t, r.LongPollID, nil
}

// decodeTxs decodes and checks the template's transactions. fees and sigops
// are nil unless every transaction states them.
func decodeTxs(in []gbtTx) (txs []*btcutil.Tx, fees, sigops []int64, err error) {
	bad := func(i int, format string, a ...any) error {
		return fmt.Errorf("%w: template transaction %d: %s", ErrBadReply, i, fmt.Sprintf(format, a...))
	}
	txs = make([]*btcutil.Tx, 0, len(in))
	fees = make([]int64, 0, len(in))
	sigops = make([]int64, 0, len(in))
	haveFees, haveSigOps := true, true
	seen := make(map[chainhash.Hash]struct{}, len(in))
	var weight, sigopTotal int64
	for i, gt := range in {
		data, err := hex.DecodeString(gt.Data)
		if err != nil {
			return nil, nil, nil, bad(i, "data: %v", err)
		}
		msg := new(wire.MsgTx)
		r := bytes.NewReader(data)
		if err := msg.Deserialize(r); err != nil {
			return nil, nil, nil, bad(i, "decode: %v", err)
		}
		if r.Len() != 0 {
			return nil, nil, nil, bad(i, "%d trailing bytes", r.Len())
		}
		if len(msg.TxIn) == 0 || len(msg.TxOut) == 0 {
			return nil, nil, nil, bad(i, "no inputs or no outputs")
		}
		if blockchain.IsCoinBaseTx(msg) {
			return nil, nil, nil, bad(i, "is a coinbase")
		}
		tx := btcutil.NewTx(msg)
		if _, dup := seen[*tx.Hash()]; dup {
			return nil, nil, nil, bad(i, "duplicate of %s", tx.Hash())
		}
		seen[*tx.Hash()] = struct{}{}
		if gt.TxID != "" && gt.TxID != tx.Hash().String() {
			return nil, nil, nil, bad(i, "txid %s, data hashes to %s", gt.TxID, tx.Hash())
		}
		if gt.Hash != "" && gt.Hash != tx.WitnessHash().String() {
			return nil, nil, nil, bad(i, "hash %s, data hashes to %s", gt.Hash, tx.WitnessHash())
		}
		for _, d := range gt.Depends {
			// 1-based indices of earlier transactions of the template.
			if d < 1 || d > int64(i) {
				return nil, nil, nil, bad(i, "depends on %d", d)
			}
		}
		w := blockchain.GetTransactionWeight(tx)
		if gt.Weight != nil && *gt.Weight != w {
			return nil, nil, nil, bad(i, "weight %d, data weighs %d", *gt.Weight, w)
		}
		if weight += w; weight > blockchain.MaxBlockWeight {
			return nil, nil, nil, bad(i, "template weight exceeds %d", blockchain.MaxBlockWeight)
		}
		if gt.Fee == nil {
			haveFees = false
		} else if f := *gt.Fee; f < 0 || f > btcutil.MaxSatoshi {
			return nil, nil, nil, bad(i, "fee %d", f)
		} else {
			fees = append(fees, f)
		}
		if gt.SigOps == nil {
			haveSigOps = false
		} else if s := *gt.SigOps; s < 0 || s > blockchain.MaxBlockSigOpsCost {
			return nil, nil, nil, bad(i, "sigops %d", s)
		} else {
			sigops = append(sigops, s)
			if sigopTotal += s; sigopTotal > blockchain.MaxBlockSigOpsCost {
				return nil, nil, nil, bad(i, "template sigop cost exceeds %d", blockchain.MaxBlockSigOpsCost)
			}
		}
		txs = append(txs, tx)
	}
	if !haveFees {
		fees = nil
	}
	if !haveSigOps {
		sigops = nil
	}
	return txs, fees, sigops, nil
}

// checkWitnessCommitment compares the node's default witness commitment
// (Core: the 38-byte output script; btcd: the 32-byte commitment) with the
// one computed from the decoded transactions and a zero witness reserved
// value, which is what package chain puts in the coinbase.
func checkWitnessCommitment(hexCommit string, txs []*btcutil.Tx) error {
	got, err := hex.DecodeString(hexCommit)
	if err != nil {
		return fmt.Errorf("%w: default_witness_commitment: %w", ErrBadReply, err)
	}
	switch {
	case len(got) == 32:
	case len(got) == len(blockchain.WitnessMagicBytes)+32 && bytes.HasPrefix(got, blockchain.WitnessMagicBytes):
		got = got[len(blockchain.WitnessMagicBytes):]
	default:
		return fmt.Errorf("%w: default_witness_commitment %q is not a commitment", ErrBadReply, hexCommit)
	}
	all := make([]*btcutil.Tx, 0, 1+len(txs))
	all = append(all, btcutil.NewTx(wire.NewMsgTx(1))) // the coinbase: its wtxid counts as zero
	all = append(all, txs...)
	root := blockchain.CalcMerkleRoot(all, true)
	var preimage [64]byte // witness root || zero witness reserved value
	copy(preimage[:32], root[:])
	if want := chainhash.DoubleHashB(preimage[:]); !bytes.Equal(got, want) {
		return fmt.Errorf("%w: default_witness_commitment %x, transactions commit to %x", ErrBadReply, got, want)
	}
	return nil
}

// parseHash parses a 64-digit hex block hash in RPC (reversed) order.
func parseHash(s string) (chainhash.Hash, error) {
	if len(s) != 2*chainhash.HashSize {
		return chainhash.Hash{}, fmt.Errorf("%q is not 64 hex digits", s)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return chainhash.Hash{}, fmt.Errorf("%q: %w", s, err)
	}
	h, err := chainhash.NewHashFromStr(s)
	if err != nil {
		return chainhash.Hash{}, err
	}
	return *h, nil
}

// parseBits parses compact bits as hex of 1 to 8 digits (btcd does not pad).
func parseBits(s string) (uint32, error) {
	if len(s) < 1 || len(s) > 8 {
		return 0, fmt.Errorf("%q is not 1 to 8 hex digits", s)
	}
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	return uint32(v), nil
}
