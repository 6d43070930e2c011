package btcdtest

import (
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
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
