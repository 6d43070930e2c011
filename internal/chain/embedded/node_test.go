package embedded

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/stratumd/stratumd/internal/chain"
)

func TestNewInvalidConfig(t *testing.T) {
	good := testConfig(t)
	for name, mutate := range map[string]func(*Config){
		"no network":      func(c *Config) { c.Network = nil },
		"no datadir":      func(c *Config) { c.DataDir = "" },
		"weight too big":  func(c *Config) { c.BlockMaxWeight = blockchain.MaxBlockWeight },
		"weight too tiny": func(c *Config) { c.BlockMaxWeight = 100 },
		"negative orphan": func(c *Config) { c.MaxOrphanTxs = -1 },
	} {
		cfg := good
		mutate(&cfg)
		if n, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			if n != nil {
				n.Close()
			}
			t.Errorf("%s: New err = %v, want ErrInvalidConfig", name, err)
		}
	}
}

// TestFreshRegtest: the first template, then ten generated blocks, each
// announced on Updates with the right height and hash, each coinbase with
// its BIP34 height and the regtest subsidy.
func TestFreshRegtest(t *testing.T) {
	cfg := testConfig(t)
	n := startNode(t, cfg)
	params := cfg.Network
	ctx := testCtx(t)

	if _, err := os.Stat(filepath.Join(cfg.DataDir, "blocks")); err != nil {
		t.Errorf("block database not where documented: %v", err)
	}
	if n.BestHeight() != 0 || n.BestHash() != *params.GenesisHash {
		t.Fatalf("fresh tip = %d %s", n.BestHeight(), n.BestHash())
	}
	if n.Chain().IsCurrent() || !n.IsCurrent() {
		t.Errorf("fresh regtest: chain current %v, node current %v; want false, true",
			n.Chain().IsCurrent(), n.IsCurrent())
	}

	before := time.Unix(time.Now().Unix(), 0)
	tmpl, err := n.Template(ctx)
	if err != nil {
		t.Fatalf("Template: %v", err)
	}
	if tmpl.Height != 1 || tmpl.PrevHash != *params.GenesisHash {
		t.Errorf("template height %d prev %s, want 1 on genesis", tmpl.Height, tmpl.PrevHash)
	}
	if tmpl.Bits != params.PowLimitBits || tmpl.Bits != 0x207fffff {
		t.Errorf("template bits %08x, want regtest's %08x", tmpl.Bits, params.PowLimitBits)
	}
	if tmpl.CoinbaseValue != 50*btcutil.SatoshiPerBitcoin {
		t.Errorf("coinbase value %d, want 50 BTC", tmpl.CoinbaseValue)
	}
	if want := params.GenesisBlock.Header.Timestamp.Add(time.Second); !tmpl.MinTime.Equal(want) {
		t.Errorf("MinTime %v, want genesis time + 1s %v", tmpl.MinTime, want)
	}
	if tmpl.CurTime.Before(before) || tmpl.CurTime.After(time.Now()) {
		t.Errorf("CurTime %v not the clock's time (%v..now)", tmpl.CurTime, before)
	}
	if tmpl.Version != 0x20000000 {
		t.Errorf("version %08x, want BIP9 top bits and no signal in the first window", tmpl.Version)
	}
	if len(tmpl.Transactions) != 0 || len(tmpl.Fees) != 0 || tmpl.HasWitness() {
		t.Errorf("empty mempool gave %d transactions", len(tmpl.Transactions))
	}

	script := payoutScript(t, "fresh")
	drainUpdates(n)
	for h := int32(1); h <= 10; h++ {
		hashes, err := n.Generate(ctx, 1, script)
		if err != nil {
			t.Fatalf("Generate at %d: %v", h, err)
		}
		u := nextUpdate(t, n)
		if u.Kind != chain.NewTip || u.Height != h || u.Tip != hashes[0] {
			t.Fatalf("update %+v, want new tip %d %s", u, h, hashes[0])
		}
		if n.BestHeight() != h || n.BestHash() != hashes[0] {
			t.Fatalf("tip %d %s after block %d", n.BestHeight(), n.BestHash(), h)
		}
	}
	for h := int32(1); h <= 10; h++ {
		checkCoinbase(t, n, h, script)
	}
	if !n.Chain().IsCurrent() {
		t.Error("chain not current after mining blocks at the current time")
	}
}

// checkCoinbase checks the coinbase of the best-chain block at height h:
// BIP34 height, the full subsidy paid to script.
func checkCoinbase(t *testing.T, n *Node, h int32, script []byte) {
	t.Helper()
	b, err := n.Chain().BlockByHeight(h)
	if err != nil {
		t.Fatalf("block %d: %v", h, err)
	}
	cb := b.Transactions()[0]
	got, err := blockchain.ExtractCoinbaseHeight(cb)
	if err != nil || got != h {
		t.Errorf("block %d: coinbase height %d, %v", h, got, err)
	}
	out := cb.MsgTx().TxOut[0]
	if out.Value != blockchain.CalcBlockSubsidy(h, n.Params()) || string(out.PkScript) != string(script) {
		t.Errorf("block %d: coinbase pays %d to %x", h, out.Value, out.PkScript)
	}
}

// TestRestart: a node reopened on the same data directory resumes at its
// tip and keeps mining on it.
func TestRestart(t *testing.T) {
	cfg := testConfig(t)
	script := payoutScript(t, "restart")

	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := runNode(t, n)
	mustGenerate(t, n, 25, script)
	tip, height := n.BestHash(), n.BestHeight()
	stop()
	drained := make(chan struct{})
	go func() {
		for range n.Updates() { // ends once Close has closed it
		}
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(waitTimeout):
		t.Fatal("Updates not closed after Run returned")
	}
	if _, err := n.Template(testCtx(t)); !errors.Is(err, chain.ErrClosed) {
		t.Errorf("Template after close: %v", err)
	}

	n2 := startNode(t, cfg)
	if n2.BestHeight() != height || n2.BestHash() != tip || height != 25 {
		t.Fatalf("reopened at %d %s, want %d %s", n2.BestHeight(), n2.BestHash(), height, tip)
	}
	tmpl, err := n2.Template(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.Height != 26 || tmpl.PrevHash != tip {
		t.Fatalf("template after restart: %d on %s", tmpl.Height, tmpl.PrevHash)
	}
	mustGenerate(t, n2, 1, script)
	if n2.BestHeight() != 26 {
		t.Fatalf("height %d after mining on the reopened chain", n2.BestHeight())
	}
}

// TestInjectedClock: template times and IsCurrent follow Config.Now.
func TestInjectedClock(t *testing.T) {
	cfg := testConfig(t)
	now := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	cfg.Now = func() time.Time { return now }
	n := startNode(t, cfg)

	tmpl, err := n.Template(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !tmpl.CurTime.Equal(now) {
		t.Fatalf("CurTime %v, want the injected %v", tmpl.CurTime, now)
	}
	mustGenerate(t, n, 1, payoutScript(t, "clock"))
	if !n.Chain().IsCurrent() {
		t.Error("chain not current with a tip at the injected time")
	}
	now = now.Add(25 * time.Hour) // only read by this goroutine's calls below
	if n.Chain().IsCurrent() {
		t.Error("chain current 25 h after its tip")
	}
}

// TestMainnetNotSynced: a fresh mainnet node serves no templates and does
// not generate.
func TestMainnetNotSynced(t *testing.T) {
	cfg := testConfig(t)
	cfg.Network = &chaincfg.MainNetParams
	n := startNode(t, cfg)
	if n.IsCurrent() {
		t.Error("fresh mainnet node claims to be current")
	}
	if _, err := n.Template(testCtx(t)); !errors.Is(err, chain.ErrNotSynced) {
		t.Errorf("Template: %v, want ErrNotSynced", err)
	}
	if _, err := n.Generate(testCtx(t), 1, payoutScript(t, "main")); !errors.Is(err, ErrNotDevNetwork) {
		t.Errorf("Generate: %v, want ErrNotDevNetwork", err)
	}
}

// TestLifecycle: Run twice, Close idempotent, operations after Close.
func TestLifecycle(t *testing.T) {
	n, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := runNode(t, n)
	if err := n.SyncMempool(testCtx(t)); err != nil {
		t.Fatalf("SyncMempool while running: %v", err)
	}
	if err := n.Run(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
		t.Errorf("second Run: %v", err)
	}
	// Close from outside stops Run.
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	stop()
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ctx := testCtx(t)
	if _, err := n.Template(ctx); !errors.Is(err, chain.ErrClosed) {
		t.Errorf("Template: %v", err)
	}
	blk := n.Params().GenesisBlock
	if _, err := n.SubmitBlock(ctx, blk); !errors.Is(err, chain.ErrClosed) {
		t.Errorf("SubmitBlock: %v", err)
	}
	if err := n.SubmitTx(ctx, blk.Transactions[0]); !errors.Is(err, chain.ErrClosed) {
		t.Errorf("SubmitTx: %v", err)
	}
	if err := n.SyncMempool(ctx); !errors.Is(err, chain.ErrClosed) {
		t.Errorf("SyncMempool: %v", err)
	}

	// A node closed before Run never runs.
	n2, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := n2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n2.Run(context.Background()); !errors.Is(err, chain.ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
}

// TestConcurrentTemplates: templates built while blocks connect are each
// consistent with the chain (run under -race).
func TestConcurrentTemplates(t *testing.T) {
	n := startNode(t, testConfig(t))
	ctx := testCtx(t)
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				tmpl, err := n.Template(ctx)
				if err != nil {
					errs <- err
					return
				}
				prev, err := n.Chain().BlockHashByHeight(tmpl.Height - 1)
				if err != nil || *prev != tmpl.PrevHash {
					errs <- errors.New("template parent is not the best chain block below it")
					return
				}
			}
		})
	}
	mustGenerate(t, n, 40, payoutScript(t, "concurrent"))
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSimnet: simnet, like regtest, serves templates on a stale chain and
// generates blocks, in its own directory.
func TestSimnet(t *testing.T) {
	cfg := testConfig(t)
	cfg.Network = &chaincfg.SimNetParams
	n := startNode(t, cfg)
	script := payoutScript(t, "simnet")
	mustGenerate(t, n, 3, script)
	if n.BestHeight() != 3 {
		t.Fatalf("simnet height %d", n.BestHeight())
	}
	checkCoinbase(t, n, 3, script)
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "blocks")); err != nil {
		t.Errorf("simnet block database: %v", err)
	}
}
