package rpcsource

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"go.uber.org/goleak"

	"github.com/stratumd/stratumd/internal/btcdtest"
	"github.com/stratumd/stratumd/internal/chain"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait on an event; reaching it fails the test.
const waitTimeout = 30 * time.Second

// testLogger logs warnings and errors to the test output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// testCtx returns a context bounded by waitTimeout.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// startSource builds a Source from cfg and runs it until the test ends; the
// cleanup checks that Run returned nil and closed Updates.
func startSource(t testing.TB, cfg Config) *Source {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

// waitUpdate returns the first update satisfying ok, failing the test after
// waitTimeout.
func waitUpdate(t testing.TB, s *Source, what string, ok func(chain.Update) bool) chain.Update {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case u, open := <-s.Updates():
			if !open {
				t.Fatalf("waiting for %s: updates closed", what)
			}
			if ok(u) {
				return u
			}
		case <-timer.C:
			t.Fatalf("no %s within %v (stats %+v)", what, waitTimeout, s.Stats())
		}
	}
}

// tipIs matches a NewTip update on hash.
func tipIs(hash chainhash.Hash) func(chain.Update) bool {
	return func(u chain.Update) bool { return u.Kind == chain.NewTip && u.Tip == hash }
}

// payoutScript is the P2WPKH script of btcdtest's key 1.
func payoutScript(t testing.TB) []byte {
	t.Helper()
	h, err := hex.DecodeString(btcdtest.KeyOneHash160)
	if err != nil {
		t.Fatal(err)
	}
	s, err := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(h).Script()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// coinbaseConfig is the coinbase the tests mine with.
func coinbaseConfig(t testing.TB) chain.CoinbaseConfig {
	return chain.CoinbaseConfig{PayoutScript: payoutScript(t), Tag: "/rpcsource-test/", Extranonce1Size: 4, Extranonce2Size: 4}
}

// solve grinds nonces (and, past 2^32, extranonce2) until the job's block
// meets its network target; regtest and simnet targets take a few tries.
func solve(t testing.TB, job *chain.Job) *wire.MsgBlock {
	t.Helper()
	en1 := []byte{0, 0, 0, 1}
	ntime := uint32(job.Template.CurTime.Unix())
	version := job.Template.Version
	for en := uint32(0); en < 16; en++ {
		en2 := []byte{byte(en >> 24), byte(en >> 16), byte(en >> 8), byte(en)}
		for nonce := uint32(0); nonce < 1<<20; nonce++ {
			h, _ := job.Hash(en1, en2, ntime, nonce, version)
			if job.Target.Meets(&h) {
				b, err := job.Block(en1, en2, ntime, nonce, version)
				if err != nil {
					t.Fatalf("Block: %v", err)
				}
				if b.BlockHash() != h {
					t.Fatalf("block hash %s, job hash %s", b.BlockHash(), h)
				}
				return b
			}
		}
	}
	t.Fatalf("no solution for job %s (bits %s)", job.ID, job.BitsHex)
	return nil
}

// solveTemplate builds a job from tmpl with the tests' coinbase and solves
// it, returning the block and its hex as submitblock sends it.
func solveTemplate(t testing.TB, tmpl *chain.Template) (*wire.MsgBlock, string) {
	t.Helper()
	job, err := chain.NewJob("1", tmpl, coinbaseConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	b := solve(t, job)
	var buf bytes.Buffer
	if err := b.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return b, hex.EncodeToString(buf.Bytes())
}

// regrind changes b's nonce until its header meets target again (after a
// change to the header).
func regrind(t testing.TB, b *wire.MsgBlock, target chain.Target) {
	t.Helper()
	for n := uint32(0); n < 1<<24; n++ {
		b.Header.Nonce = n
		h := b.BlockHash()
		if target.Meets(&h) {
			return
		}
	}
	t.Fatal("regrind: no nonce")
}
