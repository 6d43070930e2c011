package embedded

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"go.uber.org/goleak"

	"github.com/stratumd/stratumd/internal/chain"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait on an event; reaching it fails the test.
const waitTimeout = 30 * time.Second

// testConfig returns a regtest Config on a fresh directory with a small
// UTXO cache and warnings logged to the test.
func testConfig(t testing.TB) Config {
	t.Helper()
	return Config{
		Network:             &chaincfg.RegressionNetParams,
		DataDir:             t.TempDir(),
		Logger:              slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		UtxoCacheMaxSizeMiB: 2,
	}
}

// startNode builds a node from cfg and runs it until the test ends; the
// cleanup checks that Run returned nil.
func startNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	stop := runNode(t, n)
	t.Cleanup(stop)
	return n
}

// runNode runs n in a goroutine and returns a function that stops it and
// checks Run's result.
func runNode(t testing.TB, n *Node) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// testCtx returns a context bounded by waitTimeout.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testKey returns a deterministic private key derived from label.
func testKey(label string) (*btcec.PrivateKey, *btcec.PublicKey) {
	seed := sha256.Sum256([]byte("stratumd embedded test key " + label))
	return btcec.PrivKeyFromBytes(seed[:])
}

// p2wpkh returns the P2WPKH output script of pub.
func p2wpkh(t testing.TB, pub *btcec.PublicKey) []byte {
	t.Helper()
	s, err := txscript.NewScriptBuilder().AddOp(txscript.OP_0).
		AddData(btcutil.Hash160(pub.SerializeCompressed())).Script()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// payoutScript returns a P2WPKH script of a throwaway key named label.
func payoutScript(t testing.TB, label string) []byte {
	t.Helper()
	_, pub := testKey(label)
	return p2wpkh(t, pub)
}

// drainUpdates discards the updates pending on n.
func drainUpdates(n *Node) {
	for {
		select {
		case <-n.Updates():
		default:
			return
		}
	}
}

// nextUpdate waits for the next update.
func nextUpdate(t testing.TB, n *Node) chain.Update {
	t.Helper()
	select {
	case u, ok := <-n.Updates():
		if !ok {
			t.Fatal("Updates closed")
		}
		return u
	case <-time.After(waitTimeout):
		t.Fatal("no update")
		return chain.Update{}
	}
}

// mustGenerate mines count blocks paying to script.
func mustGenerate(t testing.TB, n *Node, count int, script []byte) {
	t.Helper()
	hashes, err := n.Generate(testCtx(t), count, script)
	if err != nil {
		t.Fatalf("Generate(%d): %v", count, err)
	}
	if len(hashes) != count {
		t.Fatalf("Generate(%d) returned %d hashes", count, len(hashes))
	}
}

// solveTemplate turns tmpl into a block paying to script.
func solveTemplate(t testing.TB, tmpl *chain.Template, script []byte) *wire.MsgBlock {
	t.Helper()
	job, err := chain.NewJob("t", tmpl, chain.CoinbaseConfig{
		PayoutScript: script, Tag: "/test/", Extranonce1Size: 4, Extranonce2Size: 4,
	})
	if err != nil {
		t.Fatalf("NewJob: %v", err)
	}
	b, err := Solve(testCtx(t), job)
	if err != nil {
		t.Fatalf("Solve: %v", err)
	}
	return b
}

// submit submits b and fails the test on error or an unexpected status.
func submit(t testing.TB, n *Node, b *wire.MsgBlock, want chain.SubmitStatus) chain.SubmitResult {
	t.Helper()
	res, err := n.SubmitBlock(testCtx(t), b)
	if err != nil {
		t.Fatalf("SubmitBlock: %v", err)
	}
	if res.Status != want {
		t.Fatalf("SubmitBlock = %v %q, want %v", res.Status, res.Reason, want)
	}
	return res
}
