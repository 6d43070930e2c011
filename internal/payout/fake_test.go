package payout

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// fakeWallet is an in-memory btcwallet with a one-node "chain" and
// mempool behind it: it records every call, confirms what is in the
// mempool when mine is called (unless frozen: blocks with a coinbase only)
// and counts refused double spends.
//
// It models the btcwallet v0.16.13 and btcd v0.24.2 behaviour payout
// depends on (read in btcwallet's rpc/legacyrpc/methods.go lockUnspent,
// listLockUnspent, wallet.go ListUnspent and LockOutpoint, wtxmgr's
// insertMemPoolTx and removeDoubleSpends; btcd's mempool
// validateReplacement):
//   - listunspent hides locked outputs and outputs spent by a transaction
//     the wallet knows (in the mempool, or replaced but not yet conflicted
//     away);
//   - lockunspent locks any outpoint it is given, known to the wallet or
//     not, spent or not, without an error; a lock is never dropped when
//     the output is spent; locks live in memory and a restart (restart)
//     loses them. (btcwallet's lockunspent true with no outpoints releases
//     every lock: RPCWallet.UnlockUnspent never sends that, and this fake
//     implements the Wallet contract, an empty list is a no-op);
//   - a transaction spending an output a mempool transaction spends is
//     refused unless every one it conflicts with signals replace-by-fee
//     and it pays more than their fees plus 1 sat/vB of its own size, at a
//     higher rate (BIP 125 as btcd checks it); one spending an output spent
//     in a block is refused;
//   - a replaced transaction stays known to the wallet (0 confirmations)
//     until a conflicting one confirms; then the wallet forgets it.
//
// It does not model signatures (placeholders), scripts, coinbase maturity
// or the wallet's sync lag. TestEndToEndRealWallet, TestLocksRealWallet,
// TestStuckPaymentBumpedRealWallet and TestAbandonRealWallet run the same
// steps against the real btcwallet and btcd.
type fakeWallet struct {
	mu      sync.Mutex
	params  *chaincfg.Params
	utxos   map[wire.OutPoint]Unspent // the wallet's outputs, spent or not
	onChain map[wire.OutPoint]*wire.TxOut
	spentBy map[wire.OutPoint]chainhash.Hash // by a transaction in the mempool or a block
	txs     map[chainhash.Hash]*fakeTx       // known to the wallet
	change  map[string]bool                  // change scripts the wallet handed out
	nChange int
	height  int64 // the best height: the wallet is always synced to its node
	// frozen: mine makes blocks with a coinbase only.
	frozen bool

	sends, signs, doubleSpends, lost int
	locked                           map[wire.OutPoint]bool
	// failSend, when set, may refuse a broadcast; failSign a signature.
	failSend func(tx *wire.MsgTx) error
	failSign func(tx *wire.MsgTx) error
}

type fakeTxState int

const (
	inMempool fakeTxState = iota
	replaced              // evicted by a replacement, still known to the wallet
	confirmed
)

type fakeTx struct {
	tx    *wire.MsgTx
	fee   int64
	state fakeTxState
	confs int64
}

func newFakeWallet(params *chaincfg.Params) *fakeWallet {
	return &fakeWallet{params: params, utxos: map[wire.OutPoint]Unspent{}, onChain: map[wire.OutPoint]*wire.TxOut{},
		spentBy: map[wire.OutPoint]chainhash.Hash{}, txs: map[chainhash.Hash]*fakeTx{}, change: map[string]bool{},
		locked: map[wire.OutPoint]bool{}}
}

// fund adds a confirmed P2PKH output of amount.
func (w *fakeWallet) fund(amount int64) wire.OutPoint {
	w.mu.Lock()
	defer w.mu.Unlock()
	var h chainhash.Hash
	h[0], h[1] = byte(len(w.utxos)), byte(len(w.utxos)>>8)
	h[31] = 0xfa
	a, _ := btcutil.NewAddressPubKeyHash(h[:20], w.params)
	pk, _ := txscript.PayToAddrScript(a)
	op := wire.OutPoint{Hash: h, Index: 0}
	w.utxos[op] = Unspent{OutPoint: op, Amount: amount, PkScript: pk, Confirmations: 101, Spendable: true}
	w.onChain[op] = wire.NewTxOut(amount, pk)
	return op
}

func (w *fakeWallet) ListUnspent(ctx context.Context) ([]Unspent, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Unspent
	for op, u := range w.utxos {
		if _, spent := w.spentBy[op]; spent || w.locked[op] || w.spentByKnown(op) {
			continue
		}
		if t := w.txs[op.Hash]; t != nil {
			u.Confirmations = t.confs
		}
		out = append(out, u)
	}
	return out, nil
}

// spentByKnown reports whether a replaced transaction the wallet still
// knows spends op.
func (w *fakeWallet) spentByKnown(op wire.OutPoint) bool {
	for _, t := range w.txs {
		for _, in := range t.tx.TxIn {
			if in.PreviousOutPoint == op {
				return true
			}
		}
	}
	return false
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

func signalsRBF(tx *wire.MsgTx) bool {
	for _, in := range tx.TxIn {
		if in.Sequence < wire.MaxTxInSequenceNum-1 {
			return true
		}
	}
	return false
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
	if t, ok := w.txs[h]; ok && t.state != replaced {
		return nil // already known: not an error (like btcd's duplicate)
	}
	var in, out int64
	conflicts := map[chainhash.Hash]*fakeTx{}
	for _, txin := range tx.TxIn {
		u, ok := w.utxos[txin.PreviousOutPoint]
		if !ok {
			return fmt.Errorf("send: unknown input: %w", ErrWallet)
		}
		in += u.Amount
		other, spent := w.spentBy[txin.PreviousOutPoint]
		if !spent {
			continue
		}
		t := w.txs[other]
		if t == nil || t.state == confirmed {
			w.doubleSpends++
			return fmt.Errorf("send: input spent in a block by %s: %w", other, ErrWallet)
		}
		conflicts[other] = t
	}
	for _, o := range tx.TxOut {
		out += o.Value
	}
	fee, size := in-out, int64(tx.SerializeSize())
	var conflictFees int64
	for ch, t := range conflicts {
		if !signalsRBF(t.tx) || fee*1000/size <= t.fee*1000/int64(t.tx.SerializeSize()) {
			w.doubleSpends++
			return fmt.Errorf("send: conflicts with %s (no RBF or a lower fee rate): %w", ch, ErrWallet)
		}
		conflictFees += t.fee
	}
	if len(conflicts) > 0 && fee < conflictFees+size {
		w.doubleSpends++
		return fmt.Errorf("send: fee %d below %d + %d: %w", fee, conflictFees, size, ErrWallet)
	}
	for ch, t := range conflicts {
		t.state = replaced
		for _, txin := range t.tx.TxIn {
			if w.spentBy[txin.PreviousOutPoint] == ch {
				delete(w.spentBy, txin.PreviousOutPoint)
			}
		}
	}
	for _, txin := range tx.TxIn {
		w.spentBy[txin.PreviousOutPoint] = h
	}
	w.txs[h] = &fakeTx{tx: tx, fee: fee}
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

func (w *fakeWallet) SyncedHeight(ctx context.Context) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.height, nil
}

// mine makes a block: every mempool transaction confirms (none when
// frozen), the others deepen, and transactions conflicting with a
// confirmed one are forgotten.
func (w *fakeWallet) mine() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.height++
	for h, t := range w.txs {
		switch {
		case t.state == confirmed:
			t.confs++
		case t.state == inMempool && !w.frozen:
			t.state, t.confs = confirmed, 1
			for _, in := range t.tx.TxIn {
				delete(w.onChain, in.PreviousOutPoint)
			}
			for i, o := range t.tx.TxOut {
				w.onChain[wire.OutPoint{Hash: h, Index: uint32(i)}] = o
			}
		}
	}
	for h, t := range w.txs {
		if t.state != replaced {
			continue
		}
		for _, in := range t.tx.TxIn {
			if other, ok := w.spentBy[in.PreviousOutPoint]; ok && w.txs[other] != nil && w.txs[other].state == confirmed {
				delete(w.txs, h)
				break
			}
		}
	}
}

// spendElsewhere confirms a transaction that is none of payout's: it
// spends op (in a block); the wallet forgets what of its own conflicts.
func (w *fakeWallet) spendElsewhere(op wire.OutPoint) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var foreign chainhash.Hash
	foreign[0], foreign[31] = 0xee, byte(len(w.txs))
	for h, t := range w.txs {
		for _, in := range t.tx.TxIn {
			if in.PreviousOutPoint == op && t.state != confirmed {
				delete(w.txs, h)
				for _, in := range t.tx.TxIn {
					if w.spentBy[in.PreviousOutPoint] == h {
						delete(w.spentBy, in.PreviousOutPoint)
					}
				}
				break
			}
		}
	}
	w.spentBy[op] = foreign
	delete(w.onChain, op)
}

// forget drops an unconfirmed transaction (mempool eviction): the wallet no
// longer knows it and its inputs are free again.
func (w *fakeWallet) forget(h chainhash.Hash) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.txs[h]
	if t == nil || t.state == confirmed {
		return
	}
	w.lost++
	delete(w.txs, h)
	for _, in := range t.tx.TxIn {
		if w.spentBy[in.PreviousOutPoint] == h {
			delete(w.spentBy, in.PreviousOutPoint)
		}
	}
}

// live reports whether txid is in the mempool or a block.
func (w *fakeWallet) live(txid chainhash.Hash) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.txs[txid]
	return t != nil && t.state != replaced
}

// received sums, per output script, what the transactions in the mempool
// or in blocks pay (change excluded).
func (w *fakeWallet) received() map[string]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int64{}
	for _, t := range w.txs {
		if t.state == replaced {
			continue
		}
		for _, o := range t.tx.TxOut {
			if !w.change[string(o.PkScript)] {
				out[string(o.PkScript)] += o.Value
			}
		}
	}
	return out
}

// fakeNode is a best chain given as a map height → hash; with a chain
// (the fake wallet's), its tip and UTXO set are chain's.
type fakeNode struct {
	mu     sync.Mutex
	best   int64
	hashes map[int64]chainhash.Hash
	chain  *fakeWallet
}

func (n *fakeNode) BestHeight(ctx context.Context) (int64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.chain != nil {
		return n.chain.SyncedHeight(ctx)
	}
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

func (n *fakeNode) UnspentOutput(ctx context.Context, op wire.OutPoint) (*wire.TxOut, error) {
	n.mu.Lock()
	w := n.chain
	n.mu.Unlock()
	if w == nil {
		return nil, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.onChain[op], nil
}

// mineTx makes a block holding txid only, even if it was replaced (a miner
// that never saw the replacement): what conflicts with it is forgotten.
func (w *fakeWallet) mineTx(txid chainhash.Hash) {
	w.mu.Lock()
	t := w.txs[txid]
	if t == nil {
		w.mu.Unlock()
		panic("mineTx: unknown transaction")
	}
	for h, o := range w.txs {
		if h == txid || o.state == confirmed {
			continue
		}
		for _, in := range o.tx.TxIn {
			if slices.ContainsFunc(t.tx.TxIn, func(x *wire.TxIn) bool { return x.PreviousOutPoint == in.PreviousOutPoint }) {
				delete(w.txs, h)
				break
			}
		}
	}
	t.state = inMempool
	for _, in := range t.tx.TxIn {
		w.spentBy[in.PreviousOutPoint] = txid
	}
	frozen := w.frozen
	w.mu.Unlock()
	// Only txid is in the mempool now among its conflicts; mine it alone.
	w.mu.Lock()
	held := map[chainhash.Hash]bool{}
	for h, o := range w.txs {
		if o.state == inMempool && h != txid {
			held[h] = true
			o.state = replaced
		}
	}
	w.frozen = false
	w.mu.Unlock()
	w.mine()
	w.mu.Lock()
	for h := range held {
		if o := w.txs[h]; o != nil {
			o.state = inMempool
		}
	}
	w.frozen = frozen
	w.mu.Unlock()
}
