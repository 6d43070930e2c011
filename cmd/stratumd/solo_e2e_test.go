package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/embedded"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
)

// regtestWPKH is a P2WPKH regtest address of an arbitrary key hash.
func regtestWPKH(t *testing.T, seed byte) string {
	t.Helper()
	a, err := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{seed}, 20), &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	return a.EncodeAddress()
}

func payScript(t *testing.T, addr string) []byte {
	t.Helper()
	a, err := btcutil.DecodeAddress(addr, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	s, err := txscript.PayToAddrScript(a)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mineBlocks mines with m until it has found n blocks (every share is a
// block at the test's difficulty) and returns their hashes.
func mineBlocks(ctx context.Context, t *testing.T, m *miner.Miner, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		res, err := m.Mine(ctx, 1)
		if err != nil {
			t.Fatalf("mine: %v", err)
		}
		for _, x := range res {
			if x.Accepted && x.MeetsNetwork {
				out = append(out, x.Hash.String())
			}
		}
	}
	return out
}

// TestSoloMining: with the embedded regtest node, a miner whose user name is
// "solo:<address>" on the pool's port and a miner on a port marked solo
// each find blocks whose coinbase, on the node's chain, pays their own
// address the reward less --solo-fee-bps (rounded down) and the fee to the
// pool's address; a pool miner's blocks on the same server pay the pool.
// The blocks table, the share dumps and the JSON API say "solo" for the
// solo blocks, whose shares are stored under "solo:<address>".
func TestSoloMining(t *testing.T) {
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	const feeBPS = 250
	r, addrs := startDaemonAll(t, db, 2, "--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0,solo",
		"--network", "regtest", "--auth", "open", "--datadir", filepath.Join(dir, "node"),
		"--share-dir", filepath.Join(dir, "shares"), "--min-diff", "1e-9", "--max-diff", "1e-9",
		"--solo-fee-bps", fmt.Sprint(feeBPS), "--metrics-listen", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	soloA := otherRegtestAddress(t) // P2WSH, by user name on the pool port
	soloB := regtestWPKH(t, 0x5b)   // P2WPKH, on the solo port without the prefix
	poolUser := regtestWPKH(t, 0x77)
	found := map[string]string{} // block hash → stored user name
	dial := func(addr, user string) *miner.Miner {
		m, err := miner.Dial(ctx, addr, miner.Options{User: user, Workers: []string{"rig"}})
		if err != nil {
			t.Fatalf("dial %s as %s: %v", addr, user, err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	mA := dial(addrs[0], "solo:"+soloA)
	mB := dial(addrs[1], soloB)
	mP := dial(addrs[0], poolUser)
	// In turns, so that every block builds on the previous one.
	for range 2 {
		for _, h := range mineBlocks(ctx, t, mA, 1) {
			found[h] = "solo:" + soloA
		}
		for _, h := range mineBlocks(ctx, t, mP, 1) {
			found[h] = poolUser
		}
		for _, h := range mineBlocks(ctx, t, mB, 1) {
			found[h] = "solo:" + soloB
		}
	}
	if st := r.d.server.Stats(); st.SoloSessions != 2 || st.SoloCoinbases == 0 {
		t.Fatalf("stats: %d solo sessions, %d solo coinbases", st.SoloSessions, st.SoloCoinbases)
	}

	// The JSON API says which blocks are solo (once the drainer stored them).
	base := "http://" + r.d.ops.l.Addr().String()
	var api struct {
		Blocks []struct {
			Hash string `json:"hash"`
			User string `json:"user"`
			Mode string `json:"mode"`
		} `json:"blocks"`
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		api.Blocks = nil
		resp, err := http.Get(base + "/api/blocks?limit=50")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&api)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(api.Blocks) == len(found) || time.Now().After(deadline) {
			break
		}
	}
	if len(api.Blocks) != len(found) {
		t.Fatalf("the API lists %d blocks, the miners found %d", len(api.Blocks), len(found))
	}
	for _, b := range api.Blocks {
		want := "pplns"
		if b.User != poolUser {
			want = "solo"
		}
		if b.User != found[b.Hash] || b.Mode != want {
			t.Fatalf("API block %+v: found by %q, want mode %q", b, found[b.Hash], want)
		}
	}
	// A solo miner's page: its workers, no balance.
	resp, err := http.Get(base + "/api/users/solo:" + soloA)
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		User    string `json:"user"`
		Workers []struct {
			Name     string `json:"name"`
			Shares1h int64  `json:"shares_1h"`
		} `json:"workers"`
		Balance *struct{} `json:"balance"`
	}
	err = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || page.User != "solo:"+soloA || len(page.Workers) != 1 ||
		page.Workers[0].Name != "rig" || page.Workers[0].Shares1h < 2 || page.Balance != nil {
		t.Fatalf("/api/users/solo:%s: %d %+v %v", soloA, resp.StatusCode, page, err)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	// The blocks table and the shares.
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT hash, username, mode FROM blocks`)
	n := 0
	var hash, user, mode string
	if _, err := pgx.ForEachRow(rows, []any{&hash, &user, &mode}, func() error {
		n++
		want := "pplns"
		if user != poolUser {
			want = "solo"
		}
		if found[hash] != user || mode != want {
			return fmt.Errorf("block row %s by %q mode %q; found by %q, want mode %q", hash, user, mode, found[hash], want)
		}
		return nil
	}); err != nil || n != len(found) {
		t.Fatalf("%d block rows for %d blocks: %v", n, len(found), err)
	}
	for _, u := range []string{"solo:" + soloA, "solo:" + soloB, poolUser} {
		var shares int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM shares WHERE username = $1`, u).Scan(&shares); err != nil || shares < 2 {
			t.Fatalf("%d shares stored for %s: %v", shares, u, err)
		}
	}

	// The chain: every block is on it and its coinbase pays whom it should.
	node, err := embedded.New(embedded.Config{Network: &chaincfg.RegressionNetParams, DataDir: filepath.Join(dir, "node")})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	poolScript := payScript(t, regtestDevAddress) // the regtest default --payout-address
	for h, u := range found {
		bh, err := chainhash.NewHashFromStr(h)
		if err != nil {
			t.Fatal(err)
		}
		blk, err := node.Chain().BlockByHash(bh)
		if err != nil {
			t.Fatalf("block %s of %s: %v", h, u, err)
		}
		height := blk.Height()
		if mh, err := node.Chain().BlockHashByHeight(height); err != nil || *mh != *bh {
			t.Fatalf("block %s of %s is not on the best chain at %d", h, u, height)
		}
		cb := blk.MsgBlock().Transactions[0]
		var total int64
		for _, o := range cb.TxOut {
			total += o.Value
		}
		if total != btcutil.SatoshiPerBitcoin*50 {
			t.Fatalf("block %d: coinbase pays %d in all, want the 50 BTC subsidy", height, total)
		}
		out0 := cb.TxOut[0]
		if u == poolUser {
			if !bytes.Equal(out0.PkScript, poolScript) || out0.Value != total {
				t.Fatalf("pool block %d: output 0 pays %d to %x, want all to the pool", height, out0.Value, out0.PkScript)
			}
			continue
		}
		minerPart, fee := chain.SoloSplit(total, feeBPS)
		if want := payScript(t, u[len("solo:"):]); !bytes.Equal(out0.PkScript, want) || out0.Value != minerPart {
			t.Fatalf("solo block %d of %s: output 0 pays %d to %x, want %d to %x", height, u, out0.Value, out0.PkScript, minerPart, want)
		}
		if out1 := cb.TxOut[1]; !bytes.Equal(out1.PkScript, poolScript) || out1.Value != fee || fee != total*feeBPS/10_000 {
			t.Fatalf("solo block %d: output 1 pays %d to %x, want the fee %d to the pool", height, out1.Value, out1.PkScript, fee)
		}

		// Its share dump says solo, and its round is its finder's alone.
		raw, err := os.ReadFile(filepath.Join(dir, "shares", fmt.Sprintf("%d-%s.json", height, h)))
		if err != nil {
			t.Fatal(err)
		}
		var dump struct {
			Mode  string `json:"mode"`
			Round struct {
				Users []struct {
					Username string `json:"username"`
				} `json:"users"`
			} `json:"round"`
		}
		if err := json.Unmarshal(raw, &dump); err != nil || dump.Mode != "solo" || len(dump.Round.Users) != 1 || dump.Round.Users[0].Username != u {
			t.Fatalf("dump of solo block %d: %s (%v)", height, raw, err)
		}
	}
}
