package payout

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"strings"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"
)

// Unspent is one of the wallet's unspent outputs.
type Unspent struct {
	OutPoint      wire.OutPoint
	Amount        int64 // satoshis
	PkScript      []byte
	Confirmations int64
	Spendable     bool
}

// TxStatus is what the wallet knows of a transaction.
type TxStatus struct {
	Known         bool   // false: the wallet has never seen it (or forgot it)
	Confirmations int64  // 0: in the mempool
	BlockHash     string // hex, when confirmed
}

// Wallet is the part of btcwallet a payout uses. Calls block until the
// wallet answers; ctx is checked before each call.
type Wallet interface {
	// ListUnspent returns the wallet's unspent outputs.
	ListUnspent(ctx context.Context) ([]Unspent, error)
	// LockUnspent marks outputs as reserved so that the wallet's own
	// sends do not spend them and its listunspent hides them. btcwallet
	// keeps locks in memory only (a restart loses them), never drops the
	// lock of an output once it is spent, and locks any outpoint it is
	// given, known or not; the ledger's payment_inputs is the durable
	// record that the locks follow.
	LockUnspent(ctx context.Context, ops []wire.OutPoint) error
	// UnlockUnspent releases locks. An empty ops is a no-op (btcwallet's
	// lockunspent with no outpoints would release every lock).
	UnlockUnspent(ctx context.Context, ops []wire.OutPoint) error
	// ListLockUnspent returns every locked outpoint.
	ListLockUnspent(ctx context.Context) ([]wire.OutPoint, error)
	// ChangeAddress returns a new P2PKH address of the wallet for change.
	ChangeAddress(ctx context.Context) (btcutil.Address, error)
	// Sign signs every input of tx (the wallet's P2PKH outputs in prev)
	// and returns the signed transaction; an incomplete signature is an
	// error.
	Sign(ctx context.Context, tx *wire.MsgTx, prev []Unspent) (*wire.MsgTx, error)
	// Send broadcasts tx. A transaction the network already has is not an
	// error (see isDuplicate).
	Send(ctx context.Context, tx *wire.MsgTx) error
	// Status reports what the wallet knows of txid. btcwallet keeps a
	// transaction a replacement evicted from the mempool as unmined
	// (known, 0 confirmations) until a conflicting one confirms; then it
	// forgets it.
	Status(ctx context.Context, txid chainhash.Hash) (TxStatus, error)
	// SyncedHeight is the height of the last block the wallet processed.
	SyncedHeight(ctx context.Context) (int64, error)
}

// Node is the part of a full node (btcd, or Bitcoin Core) used to classify
// found blocks.
type Node interface {
	// BestHeight is the height of the node's best chain tip.
	BestHeight(ctx context.Context) (int64, error)
	// BlockHash is the hash of the best chain's block at height.
	BlockHash(ctx context.Context, height int64) (chainhash.Hash, error)
	// UnspentOutput returns the output op if it is unspent in the best
	// chain (the mempool ignored), nil if it is spent there or unknown
	// (gettxout with include_mempool false).
	UnspentOutput(ctx context.Context, op wire.OutPoint) (*wire.TxOut, error)
}

// RPCConfig says how to reach a JSON-RPC server.
type RPCConfig struct {
	// URL is http://host:port or https://host:port (a bare host:port
	// means http on loopback and https elsewhere is not assumed: it is
	// http).
	URL  string
	User string
	Pass string
	// CertFile is a PEM certificate to trust for https (btcwallet's and
	// btcd's rpc.cert); empty means the system roots.
	CertFile string
}

func (c RPCConfig) connConfig() (*rpcclient.ConnConfig, error) {
	raw := c.URL
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("rpc url %q: %w", c.URL, ErrInvalid)
	}
	cc := &rpcclient.ConnConfig{Host: u.Host, User: c.User, Pass: c.Pass, HTTPPostMode: true}
	switch u.Scheme {
	case "http":
		cc.DisableTLS = true
	case "https":
		if c.CertFile != "" {
			pem, err := os.ReadFile(c.CertFile)
			if err != nil {
				return nil, fmt.Errorf("rpc certificate: %w", err)
			}
			cc.Certificates = pem
		}
	default:
		return nil, fmt.Errorf("rpc url %q: scheme must be http or https: %w", c.URL, ErrInvalid)
	}
	return cc, nil
}

// RPCWallet talks to btcwallet's legacy JSON-RPC server. It is safe for
// concurrent use.
type RPCWallet struct {
	c          *rpcclient.Client
	passphrase string
	params     *chaincfg.Params
	account    string
}

// NewRPCWallet connects (lazily: HTTP POST) to btcwallet. passphrase is the
// wallet's private passphrase, used to unlock it for the few seconds of a
// signature; empty means the wallet is kept unlocked by the operator.
func NewRPCWallet(cfg RPCConfig, passphrase string, params *chaincfg.Params) (*RPCWallet, error) {
	cc, err := cfg.connConfig()
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	c, err := rpcclient.New(cc, nil)
	if err != nil {
		return nil, fmt.Errorf("wallet: %w: %w", ErrWallet, err)
	}
	return &RPCWallet{c: c, passphrase: passphrase, params: params, account: "default"}, nil
}

// Close releases the client.
func (w *RPCWallet) Close() { w.c.Shutdown() }

func btcToSat(v float64) (int64, error) {
	a, err := btcutil.NewAmount(v)
	if err != nil || a < 0 {
		return 0, fmt.Errorf("amount %v: %w", v, ErrWallet)
	}
	return int64(a), nil
}

// ListUnspent implements Wallet.
func (w *RPCWallet) ListUnspent(ctx context.Context) ([]Unspent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res, err := w.c.ListUnspent()
	if err != nil {
		return nil, fmt.Errorf("wallet listunspent: %w: %w", ErrWallet, err)
	}
	out := make([]Unspent, 0, len(res))
	for _, r := range res {
		h, err := chainhash.NewHashFromStr(r.TxID)
		if err != nil {
			return nil, fmt.Errorf("wallet listunspent txid %q: %w", r.TxID, ErrWallet)
		}
		script, err := hex.DecodeString(r.ScriptPubKey)
		if err != nil {
			return nil, fmt.Errorf("wallet listunspent script: %w", ErrWallet)
		}
		amt, err := btcToSat(r.Amount)
		if err != nil {
			return nil, fmt.Errorf("wallet listunspent: %w", err)
		}
		out = append(out, Unspent{OutPoint: wire.OutPoint{Hash: *h, Index: r.Vout}, Amount: amt,
			PkScript: script, Confirmations: r.Confirmations, Spendable: r.Spendable})
	}
	return out, nil
}

// LockUnspent implements Wallet.
func (w *RPCWallet) LockUnspent(ctx context.Context, ops []wire.OutPoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(ops) == 0 {
		return nil
	}
	ptrs := make([]*wire.OutPoint, len(ops))
	for i := range ops {
		ptrs[i] = &ops[i]
	}
	if err := w.c.LockUnspent(false, ptrs); err != nil {
		return fmt.Errorf("wallet lockunspent: %w: %w", ErrWallet, err)
	}
	return nil
}

// UnlockUnspent implements Wallet.
func (w *RPCWallet) UnlockUnspent(ctx context.Context, ops []wire.OutPoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(ops) == 0 {
		return nil // lockunspent true [] would unlock everything
	}
	ptrs := make([]*wire.OutPoint, len(ops))
	for i := range ops {
		ptrs[i] = &ops[i]
	}
	if err := w.c.LockUnspent(true, ptrs); err != nil {
		return fmt.Errorf("wallet lockunspent (unlock): %w: %w", ErrWallet, err)
	}
	return nil
}

// ListLockUnspent implements Wallet.
func (w *RPCWallet) ListLockUnspent(ctx context.Context) ([]wire.OutPoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res, err := w.c.ListLockUnspent()
	if err != nil {
		return nil, fmt.Errorf("wallet listlockunspent: %w: %w", ErrWallet, err)
	}
	out := make([]wire.OutPoint, len(res))
	for i, op := range res {
		out[i] = *op
	}
	return out, nil
}

// ChangeAddress implements Wallet: getrawchangeaddress of the default
// (BIP 44, P2PKH) account.
func (w *RPCWallet) ChangeAddress(ctx context.Context) (btcutil.Address, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	raw, err := w.c.RawRequest("getrawchangeaddress", []json.RawMessage{json.RawMessage(`"` + w.account + `"`)})
	if err != nil {
		return nil, fmt.Errorf("wallet getrawchangeaddress: %w: %w", ErrWallet, err)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("wallet getrawchangeaddress: %w: %w", ErrWallet, err)
	}
	a, err := btcutil.DecodeAddress(s, w.params)
	if err != nil || !a.IsForNet(w.params) {
		return nil, fmt.Errorf("wallet change address %q: %w", s, ErrWallet)
	}
	return a, nil
}

// Sign implements Wallet with signrawtransaction, unlocking the wallet with
// the passphrase for the call and locking it again afterwards.
func (w *RPCWallet) Sign(ctx context.Context, tx *wire.MsgTx, prev []Unspent) (*wire.MsgTx, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	inputs := make([]btcjson.RawTxInput, len(prev))
	for i, u := range prev {
		inputs[i] = btcjson.RawTxInput{Txid: u.OutPoint.Hash.String(), Vout: u.OutPoint.Index,
			ScriptPubKey: hex.EncodeToString(u.PkScript)}
	}
	if w.passphrase != "" {
		if err := w.c.WalletPassphrase(w.passphrase, 60); err != nil {
			return nil, fmt.Errorf("wallet walletpassphrase: %w: %w", ErrWallet, err)
		}
		defer w.c.WalletLock()
	}
	signed, complete, err := w.c.SignRawTransaction2(tx, inputs)
	if err != nil {
		return nil, fmt.Errorf("wallet signrawtransaction: %w: %w", ErrWallet, err)
	}
	if !complete {
		return nil, fmt.Errorf("wallet signrawtransaction: incomplete (inputs not the wallet's P2PKH outputs?): %w", ErrWallet)
	}
	return signed, nil
}

// Send implements Wallet: sendrawtransaction, which btcwallet hands to its
// node.
func (w *RPCWallet) Send(ctx context.Context, tx *wire.MsgTx) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	raw, err := txBytes(tx)
	if err != nil {
		return err
	}
	_, err = w.c.RawRequest("sendrawtransaction", []json.RawMessage{json.RawMessage(`"` + hex.EncodeToString(raw) + `"`)})
	if err != nil && !isDuplicate(err) {
		return fmt.Errorf("wallet sendrawtransaction %s: %w: %w", tx.TxHash(), ErrWallet, err)
	}
	return nil
}

// isDuplicate reports whether a broadcast error says the transaction is
// already in the node's mempool or chain (btcd and Bitcoin Core wording).
func isDuplicate(err error) bool {
	m := strings.ToLower(err.Error())
	for _, s := range []string{"already have transaction", "already exists", "already in block chain",
		"txn-already-known", "txn-already-in-mempool", "already known"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// Status implements Wallet with gettransaction.
func (w *RPCWallet) Status(ctx context.Context, txid chainhash.Hash) (TxStatus, error) {
	if err := ctx.Err(); err != nil {
		return TxStatus{}, err
	}
	res, err := w.c.GetTransaction(&txid)
	if err != nil {
		var rerr *btcjson.RPCError
		if errors.As(err, &rerr) && rerr.Code == btcjson.ErrRPCNoTxInfo {
			return TxStatus{}, nil
		}
		return TxStatus{}, fmt.Errorf("wallet gettransaction %s: %w: %w", txid, ErrWallet, err)
	}
	return TxStatus{Known: true, Confirmations: max(res.Confirmations, 0), BlockHash: res.BlockHash}, nil
}

// SyncedHeight implements Wallet with getbestblock, which btcwallet answers
// from its own sync state.
func (w *RPCWallet) SyncedHeight(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	_, h, err := w.c.GetBestBlock()
	if err != nil {
		return 0, fmt.Errorf("wallet getbestblock: %w: %w", ErrWallet, err)
	}
	return int64(h), nil
}

// RPCNode asks a btcd or Bitcoin Core node (or btcwallet, which forwards
// chain calls to its btcd) about the best chain.
type RPCNode struct {
	c *rpcclient.Client
}

// NewRPCNode connects (lazily: HTTP POST) to a node's RPC server.
func NewRPCNode(cfg RPCConfig) (*RPCNode, error) {
	cc, err := cfg.connConfig()
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	c, err := rpcclient.New(cc, nil)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return &RPCNode{c: c}, nil
}

// Close releases the client.
func (n *RPCNode) Close() { n.c.Shutdown() }

// BestHeight implements Node.
func (n *RPCNode) BestHeight(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	h, err := n.c.GetBlockCount()
	if err != nil {
		return 0, fmt.Errorf("node getblockcount: %w", err)
	}
	return h, nil
}

// BlockHash implements Node.
func (n *RPCNode) BlockHash(ctx context.Context, height int64) (chainhash.Hash, error) {
	if err := ctx.Err(); err != nil {
		return chainhash.Hash{}, err
	}
	if height < 0 || height > math.MaxInt32 {
		return chainhash.Hash{}, fmt.Errorf("node getblockhash %d: %w", height, ErrInvalid)
	}
	h, err := n.c.GetBlockHash(height)
	if err != nil {
		return chainhash.Hash{}, fmt.Errorf("node getblockhash %d: %w", height, err)
	}
	return *h, nil
}

// UnspentOutput implements Node with gettxout (include_mempool false).
func (n *RPCNode) UnspentOutput(ctx context.Context, op wire.OutPoint) (*wire.TxOut, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res, err := n.c.GetTxOut(&op.Hash, op.Index, false)
	if err != nil {
		return nil, fmt.Errorf("node gettxout %s: %w", op, err)
	}
	if res == nil {
		return nil, nil
	}
	pk, err := hex.DecodeString(res.ScriptPubKey.Hex)
	if err != nil {
		return nil, fmt.Errorf("node gettxout %s: script: %w", op, err)
	}
	v, err := btcToSat(res.Value)
	if err != nil {
		return nil, fmt.Errorf("node gettxout %s: %w", op, err)
	}
	return wire.NewTxOut(v, pk), nil
}
