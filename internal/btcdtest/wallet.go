package btcdtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/testutil"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Credentials of every test wallet. WalletPassphrase is the private
// passphrase btcwallet --createtemp gives the wallets it creates.
const (
	WalletUser       = "wallet"
	WalletPass       = "wallet-test"
	WalletPassphrase = "password"
)

// Wallet is one running btcwallet, connected to a Node.
//
// How the wallet is created without a terminal: btcwallet --create prompts
// on a terminal, but --createtemp creates a "temporary simulation wallet"
// (private passphrase "password", default public passphrase) in the
// --appdata directory non-interactively. btcwallet allows --createtemp on
// simnet only, so wallet tests run their btcd with Options{Network:
// "simnet"}. The wallet's default account is BIP 44, so getnewaddress and
// getrawchangeaddress give P2PKH addresses, the only kind btcwallet's
// signrawtransaction can spend.
type Wallet struct {
	t       testing.TB
	bin     string
	DataDir string
	RPCPort int
	node    *Node

	mu     sync.Mutex
	proc   *testutil.Proc // the last btcwallet started
	client *rpcclient.Client
}

// StartWallet creates a wallet for node (which must run on simnet), starts
// btcwallet on it and waits until its RPC answers and it has synced to the
// node's tip. It is stopped at cleanup.
func StartWallet(t testing.TB, node *Node) *Wallet {
	t.Helper()
	if node.Params.Name != "simnet" {
		t.Fatalf("btcdtest: btcwallet --createtemp needs a simnet node, not %s", node.Params.Name)
	}
	dir, err := ToolsBin()
	if err != nil {
		t.Fatalf("btcdtest: %v", err)
	}
	w := &Wallet{t: t, bin: filepath.Join(dir, "btcwallet"), DataDir: t.TempDir(), RPCPort: FreePort(t), node: node}
	t.Cleanup(w.Stop)
	w.start()
	return w
}

// start runs btcwallet on w.DataDir (--createtemp creates the wallet the
// first time and loads it afterwards) and waits until it has synced to the
// node's tip.
func (w *Wallet) start() {
	w.t.Helper()
	args := []string{
		"--simnet", "--createtemp", "--appdata=" + w.DataDir, "--logdir=" + filepath.Join(w.DataDir, "logs"),
		"--rpcconnect=" + w.node.RPCAddr(), "--noclienttls", "--btcdusername=" + RPCUser, "--btcdpassword=" + RPCPass,
		"--username=" + WalletUser, "--password=" + WalletPass, "--noservertls",
		fmt.Sprintf("--rpclisten=127.0.0.1:%d", w.RPCPort), "--debuglevel=info",
		"--configfile=" + filepath.Join(w.DataDir, "none.conf"),
	}
	p, err := testutil.StartProc(exec.Command(w.bin, args...))
	if err != nil {
		w.t.Fatalf("btcdtest: %v", err)
	}
	c, err := rpcclient.New(w.ConnConfig(), nil)
	if err != nil {
		w.t.Fatalf("btcdtest: wallet rpc client: %v", err)
	}
	w.mu.Lock()
	w.proc, w.client = p, c
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	best, err := w.node.Client().GetBlockCount()
	if err != nil {
		w.t.Fatalf("btcdtest: node height: %v", err)
	}
	if err := w.WaitSynced(ctx, best); err != nil {
		w.t.Fatalf("%v\n%s", err, w.Log())
	}
}

// ConnConfig is an HTTP-POST rpcclient configuration for the wallet.
func (w *Wallet) ConnConfig() *rpcclient.ConnConfig {
	return &rpcclient.ConnConfig{Host: w.RPCAddr(), User: WalletUser, Pass: WalletPass, HTTPPostMode: true, DisableTLS: true,
		Params: w.node.Params.Name}
}

// RPCAddr is host:port of the wallet's legacy RPC server.
func (w *Wallet) RPCAddr() string { return fmt.Sprintf("127.0.0.1:%d", w.RPCPort) }

// Client is an HTTP-POST RPC client of the wallet.
func (w *Wallet) Client() *rpcclient.Client {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.client
}

// Log returns what btcwallet printed so far.
func (w *Wallet) Log() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.proc == nil {
		return ""
	}
	return w.proc.Log()
}

// NewAddress returns a new P2PKH address of the wallet's default account.
func (w *Wallet) NewAddress() btcutil.Address {
	w.t.Helper()
	a, err := w.Client().GetNewAddress("default")
	if err != nil {
		w.t.Fatalf("btcdtest: getnewaddress: %v", err)
	}
	return a
}

// WaitSynced waits until the wallet's view of the chain reaches height
// (getbestblock answers from the wallet's own sync state, unlike
// getblockcount which it forwards to btcd).
func (w *Wallet) WaitSynced(ctx context.Context, height int64) error {
	var got int64 = -1
	var err error
	for {
		var raw []byte
		raw, err = w.Client().RawRequest("getbestblock", nil)
		if err == nil {
			var r btcjson.GetBestBlockResult
			if err = json.Unmarshal(raw, &r); err == nil {
				got = int64(r.Height)
				if got >= height {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("btcdtest: wallet at height %d, want %d (%w): %w", got, height, err, ctx.Err())
		case <-w.exited():
			return fmt.Errorf("btcdtest: btcwallet exited")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// exited is closed when the running btcwallet has ended.
func (w *Wallet) exited() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.proc.Exited()
}

func (w *Wallet) halt(sig syscall.Signal) {
	w.mu.Lock()
	p, c := w.proc, w.client
	w.client = nil
	w.mu.Unlock()
	if c != nil {
		c.Shutdown()
	}
	if p != nil {
		p.Halt(sig, 30*time.Second)
	}
}

// Stop stops btcwallet (SIGINT) and waits for it. Idempotent.
func (w *Wallet) Stop() { w.halt(syscall.SIGINT) }

// Kill stops btcwallet with SIGKILL and waits for it to end. What it kept
// in memory only is gone, such as the outputs locked with lockunspent.
func (w *Wallet) Kill() { w.halt(syscall.SIGKILL) }

// Restart starts btcwallet again (after Stop or Kill; a running one is
// stopped first) on the same data directory, wallet and RPC port, and waits
// until it has synced to the node's tip.
func (w *Wallet) Restart() {
	w.t.Helper()
	w.Stop()
	w.start()
}

// GenerateTo mines count blocks whose coinbase pays the block subsidy to
// addr, as a pool would: getblocktemplate for the tip and bits, a coinbase
// with the BIP 34 height, no other transactions, proof of work solved on
// the CPU (trivial at simnet/regtest difficulty), submitblock. It returns
// the blocks in order.
func (n *Node) GenerateTo(addr btcutil.Address, count int) []*wire.MsgBlock {
	n.t.Helper()
	pk, err := txscript.PayToAddrScript(addr)
	if err != nil {
		n.t.Fatalf("btcdtest: generate to %s: %v", addr, err)
	}
	var out []*wire.MsgBlock
	for i := range count {
		tmpl, err := n.Client().GetBlockTemplate(&btcjson.TemplateRequest{Mode: "template",
			Capabilities: []string{"coinbasevalue"}, Rules: []string{"segwit"}})
		if err != nil {
			n.t.Fatalf("btcdtest: getblocktemplate: %v", err)
		}
		prev, err := chainhash.NewHashFromStr(tmpl.PreviousHash)
		if err != nil {
			n.t.Fatal(err)
		}
		var bits uint32
		if _, err := fmt.Sscanf(tmpl.Bits, "%x", &bits); err != nil {
			n.t.Fatalf("btcdtest: bits %q: %v", tmpl.Bits, err)
		}
		sig, err := txscript.NewScriptBuilder().AddInt64(tmpl.Height).AddInt64(int64(i)).AddData([]byte("/btcdtest/")).Script()
		if err != nil {
			n.t.Fatal(err)
		}
		cb := wire.NewMsgTx(1)
		cb.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex}, SignatureScript: sig, Sequence: wire.MaxTxInSequenceNum})
		cb.AddTxOut(wire.NewTxOut(blockchain.CalcBlockSubsidy(int32(tmpl.Height), n.Params), pk))
		blk := &wire.MsgBlock{Header: wire.BlockHeader{Version: tmpl.Version, PrevBlock: *prev, MerkleRoot: cb.TxHash(),
			Timestamp: time.Unix(tmpl.CurTime, 0), Bits: bits}}
		blk.AddTransaction(cb)
		target := blockchain.CompactToBig(bits)
		for {
			h := blk.Header.BlockHash()
			if blockchain.HashToBig(&h).Cmp(target) <= 0 {
				break
			}
			blk.Header.Nonce++
		}
		if err := n.Client().SubmitBlock(btcutil.NewBlock(blk), nil); err != nil {
			n.t.Fatalf("btcdtest: submitblock at %d: %v", tmpl.Height, err)
		}
		out = append(out, blk)
	}
	return out
}
