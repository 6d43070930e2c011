package btcdtest

import (
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// TestWalletMinesAndSpends: a --createtemp wallet on simnet owns the
// coinbases GenerateTo pays to its P2PKH address and sees them mature.
func TestWalletMinesAndSpends(t *testing.T) {
	n := Start(t, Options{Network: "simnet"})
	w := StartWallet(t, n)
	addr := w.NewAddress()
	if _, ok := addr.(*btcutil.AddressPubKeyHash); !ok {
		t.Fatalf("wallet address %s is %T, want P2PKH", addr, addr)
	}
	blocks := n.GenerateTo(addr, 2)
	pk, _ := txscript.PayToAddrScript(addr)
	if string(blocks[0].Transactions[0].TxOut[0].PkScript) != string(pk) {
		t.Fatal("coinbase does not pay the wallet")
	}
	n.Generate(100)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := w.WaitSynced(ctx, 102); err != nil {
		t.Fatal(err)
	}
	bal, err := w.Client().GetBalance("default")
	if err != nil {
		t.Fatal(err)
	}
	// the first coinbase has 101 confirmations, the second 100: both mature
	if want := 2 * blocks[0].Transactions[0].TxOut[0].Value; int64(bal) != want {
		t.Fatalf("balance %d, want %d\n%s", bal, want, w.Log())
	}
}

// TestWalletKillRestart: btcwallet killed with SIGKILL and restarted on the
// same data directory keeps its keys and coins, and forgets the outputs
// locked with lockunspent (btcwallet holds those in memory only).
func TestWalletKillRestart(t *testing.T) {
	n := Start(t, Options{Network: "simnet"})
	w := StartWallet(t, n)
	addr := w.NewAddress()
	n.GenerateTo(addr, 1)
	n.Generate(100)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := w.WaitSynced(ctx, 101); err != nil {
		t.Fatal(err)
	}
	utxos, err := w.Client().ListUnspent()
	if err != nil || len(utxos) != 1 {
		t.Fatalf("unspent %v, %v", utxos, err)
	}
	h, _ := chainhash.NewHashFromStr(utxos[0].TxID)
	op := wire.NewOutPoint(h, utxos[0].Vout)
	if err := w.Client().LockUnspent(false, []*wire.OutPoint{op}); err != nil {
		t.Fatal(err)
	}
	if locked, err := w.Client().ListLockUnspent(); err != nil || len(locked) != 1 {
		t.Fatalf("locked %v, %v", locked, err)
	}
	w.Kill()
	if w.Client() != nil {
		t.Fatal("a wallet client after the kill")
	}
	w.Restart()
	locked, err := w.Client().ListLockUnspent()
	if err != nil || len(locked) != 0 {
		t.Fatalf("after restart locked %v, %v; want none", locked, err)
	}
	utxos, err = w.Client().ListUnspent()
	if err != nil || len(utxos) != 1 || utxos[0].Address != addr.EncodeAddress() {
		t.Fatalf("after restart unspent %+v, %v; want the coinbase to %s", utxos, err, addr)
	}
}
