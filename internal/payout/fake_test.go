package payout

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// fakeWallet is an in-memory wallet with a one-node "chain": it records
// every call, refuses double spends, and confirms what was sent when mine is
// called.
//
// It models the btcwallet v0.16.13 behaviour payout depends on (read in
// rpc/legacyrpc/methods.go lockUnspent, listLockUnspent, and wallet.go
// ListUnspent, LockOutpoint):
//   - listunspent hides locked outputs and outputs spent by a transaction
//     the wallet knows;
//   - lockunspent locks any outpoint it is given, known to the wallet or
//     not, spent or not, without an error; a lock is never dropped when
//     the output is spent; locks live in memory and a restart (restart)
//     loses them (btcwallet's lockunspent true with no outpoints releases
//     every lock: RPCWallet.UnlockUnspent never sends that, and this fake
//     implements the Wallet contract, an empty list is a no-op);
//   - a transaction spending an output another known transaction spends is
//     refused, as the node's mempool refuses it.
//
// It does not model signing (signatures are placeholders), fees, coinbase
// maturity or the wallet's sync lag. TestEndToEndRealWallet and
// TestLocksRealWallet run the same steps against the real btcwallet and
// btcd.
type fakeWallet struct {
	mu      sync.Mutex
	params  *chaincfg.Params
	utxos   map[wire.OutPoint]Unspent
	spentBy map[wire.OutPoint]chainhash.Hash
	txs     map[chainhash.Hash]*fakeTx
	change  map[string]bool // change scripts (hex) the wallet handed out
	nChange int

	sends, signs, doubleSpends, lost int
	locked                           map[wire.OutPoint]bool
	// failSend, when set, may refuse a broadcast; failSign a signature.
	failSend func(tx *wire.MsgTx) error
	failSign func(tx *wire.MsgTx) error
}

type fakeTx struct {
	tx    *wire.MsgTx
	confs int64
}

func newFakeWallet(params *chaincfg.Params) *fakeWallet {
	return &fakeWallet{params: params, utxos: map[wire.OutPoint]Unspent{}, spentBy: map[wire.OutPoint]chainhash.Hash{},
		txs: map[chainhash.Hash]*fakeTx{}, change: map[string]bool{}, locked: map[wire.OutPoint]bool{}}
}

// fund adds a confirmed P2PKH output of amount.
func (w *fakeWallet) fund(amount int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var h chainhash.Hash
	h[0], h[1] = byte(len(w.utxos)), byte(len(w.utxos)>>8)
	h[31] = 0xfa
	a, _ := btcutil.NewAddressPubKeyHash(h[:20], w.params)
	pk, _ := txscript.PayToAddrScript(a)
	op := wire.OutPoint{Hash: h, Index: 0}
	w.utxos[op] = Unspent{OutPoint: op, Amount: amount, PkScript: pk, Confirmations: 101, Spendable: true}
}

func (w *fakeWallet) ListUnspent(ctx context.Context) ([]Unspent, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Unspent
	for op, u := range w.utxos {
		if _, spent := w.spentBy[op]; !spent && !w.locked[op] {
			out = append(out, u)
		}
	}
	return out, nil
}

func (w *fakeWallet) LockUnspent(ctx context.Context, ops []wire.OutPoint) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, op := range ops {
		w.locked[op] = true
	}
	return nil
}

func (w *fakeWallet) UnlockUnspent(ctx context.Context, ops []wire.OutPoint) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, op := range ops {
		delete(w.locked, op)
	}
	return nil
}

func (w *fakeWallet) ListLockUnspent(ctx context.Context) ([]wire.OutPoint, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []wire.OutPoint
	for op := range w.locked {
		out = append(out, op)
	}
	return out, nil
}

// restart is a wallet restart: the locks are lost, the rest is on disk.
func (w *fakeWallet) restart() {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.locked)
}

// lockedSet returns the locked outpoints.
func (w *fakeWallet) lockedSet() map[wire.OutPoint]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.locked)
}

func (w *fakeWallet) ChangeAddress(ctx context.Context) (btcutil.Address, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nChange++
	h := make([]byte, 20)
	h[0], h[1], h[19] = byte(w.nChange), byte(w.nChange>>8), 0xcc
	a, err := btcutil.NewAddressPubKeyHash(h, w.params)
	if err != nil {
		return nil, err
	}
	pk, _ := txscript.PayToAddrScript(a)
	w.change[string(pk)] = true
	return a, nil
}

func (w *fakeWallet) Sign(ctx context.Context, tx *wire.MsgTx, prev []Unspent) (*wire.MsgTx, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.signs++
	if w.failSign != nil {
		if err := w.failSign(tx); err != nil {
			return nil, err
		}
	}
	out := tx.Copy()
	for i, in := range out.TxIn {
		if _, ok := w.utxos[in.PreviousOutPoint]; !ok {
			return nil, fmt.Errorf("sign: input %d not the wallet's: %w", i, ErrWallet)
		}
		in.SignatureScript = []byte{0x01, byte(i), 0x01, byte(w.signs)} // a different "signature" each time
	}
	return out, nil
}

func (w *fakeWallet) Send(ctx context.Context, tx *wire.MsgTx) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sends++
	if w.failSend != nil {
		if err := w.failSend(tx); err != nil {
			return err
		}
	}
	h := tx.TxHash()
	if _, ok := w.txs[h]; ok {
		return nil // already known: not an error (like btcd's duplicate)
	}
	for _, in := range tx.TxIn {
		if _, ok := w.utxos[in.PreviousOutPoint]; !ok {
			return fmt.Errorf("send: unknown input: %w", ErrWallet)
		}
		if other, spent := w.spentBy[in.PreviousOutPoint]; spent && other != h {
			w.doubleSpends++
			return fmt.Errorf("send: input already spent by %s: %w", other, ErrWallet)
		}
	}
	for _, in := range tx.TxIn {
		w.spentBy[in.PreviousOutPoint] = h
	}
	w.txs[h] = &fakeTx{tx: tx}
	for i, o := range tx.TxOut {
		if w.change[string(o.PkScript)] {
			op := wire.OutPoint{Hash: h, Index: uint32(i)}
			w.utxos[op] = Unspent{OutPoint: op, Amount: o.Value, PkScript: o.PkScript, Spendable: true}
		}
	}
	return nil
}

func (w *fakeWallet) Status(ctx context.Context, txid chainhash.Hash) (TxStatus, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.txs[txid]
	if !ok {
		return TxStatus{}, nil
	}
	st := TxStatus{Known: true, Confirmations: t.confs}
	if t.confs > 0 {
		st.BlockHash = fmt.Sprintf("%064x", t.confs)
	}
	return st, nil
}

// mine confirms everything sent so far (and deepens the rest).
func (w *fakeWallet) mine() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range w.txs {
		t.confs++
	}
	for op, u := range w.utxos {
		u.Confirmations++
		w.utxos[op] = u
	}
}

// forget drops an unconfirmed transaction (mempool eviction): the wallet no
// longer knows it and its inputs are free again.
func (w *fakeWallet) forget(h chainhash.Hash) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.txs[h]
	if t == nil || t.confs > 0 {
		return
	}
	w.lost++
	delete(w.txs, h)
	for _, in := range t.tx.TxIn {
		delete(w.spentBy, in.PreviousOutPoint)
	}
}

// received sums, per output script, what the transactions the wallet sent
// pay (change excluded).
func (w *fakeWallet) received() map[string]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int64{}
	for _, t := range w.txs {
		for _, o := range t.tx.TxOut {
			if !w.change[string(o.PkScript)] {
				out[string(o.PkScript)] += o.Value
			}
		}
	}
	return out
}

// fakeNode is a best chain given as a map height → hash.
type fakeNode struct {
	mu     sync.Mutex
	best   int64
	hashes map[int64]chainhash.Hash
}

func (n *fakeNode) BestHeight(ctx context.Context) (int64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.best, nil
}

func (n *fakeNode) BlockHash(ctx context.Context, height int64) (chainhash.Hash, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h, ok := n.hashes[height]
	if !ok {
		return chainhash.Hash{}, fmt.Errorf("no block at %d", height)
	}
	return h, nil
}
