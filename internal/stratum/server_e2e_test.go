package stratum_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	btcwire "github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain/chaintest"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/store/spool"
	"github.com/stratumd/stratumd/internal/stratum"
	"github.com/stratumd/stratumd/internal/stratum/wire"
)

// TestEndToEndRealStore drives the server with the in-repo CPU miner over
// real TCP, with PostgreSQL, a real spool, ShareWriter and Drainer:
// accepted, duplicate, low-difficulty, bad-ntime, bad-version and stale
// shares each get their reply; accepted shares are in PostgreSQL with the
// right user, worker and difficulty; a found block is handed to the chain,
// stored in blocks with its bytes and dumped by the recorder.
func TestEndToEndRealStore(t *testing.T) {
	st, _ := pgtest.NewStore(t)
	defer st.Close()
	storeCtx, stopStore := context.WithCancel(context.Background())
	sp, err := spool.Open(spool.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	shareDir := t.TempDir()
	recorder, err := stratum.NewRecorder(stratum.RecorderConfig{Store: st, ShareDir: shareDir,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	drainer, err := store.NewDrainer(store.DrainerConfig{Store: st, Spool: sp, InstanceID: 3, QuarantineDir: t.TempDir(),
		OnBlocks: recorder.Stored})
	if err != nil {
		t.Fatal(err)
	}
	var storeWG sync.WaitGroup
	storeWG.Go(func() { sp.Run(storeCtx) })
	storeWG.Go(func() { drainer.Run(storeCtx) })
	storeWG.Go(func() { recorder.Run(storeCtx) })
	defer func() {
		stopStore()
		storeWG.Wait()
		sp.Close()
	}()

	params := &chaincfg.RegressionNetParams
	src := chaintest.New(params)
	src.SetBits(0x1e0fffff) // network difficulty 2^-12: shares at ~1e-6 are rarely blocks
	payout := addr(t, 0x42)
	pkScript, err := txscript.PayToAddrScript(payout)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := stratum.New(stratum.Config{
		Source: src, Network: params, Users: st, Shares: store.NewShareWriter(sp), Blocks: st, Recorder: recorder,
		PayoutScript: pkScript, InstanceID: 3, Auth: stratum.AuthOpen,
		Limits: stratum.Limits{MinDiff: 1e-7, MaxDiff: 1 << 20, StartDiff: 1e-6, VardiffTarget: time.Hour},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	poolAddr, stopServer := serve(t, srv)
	defer stopServer()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	user := addr(t, 0x07).EncodeAddress()
	m, err := miner.Dial(ctx, poolAddr, miner.Options{
		User: user, Workers: []string{"rig1"}, VersionRolling: true,
		UserAgent: miner.UserAgentCPUMiner,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.VersionMask() != 0x1fffe000 {
		t.Errorf("negotiated mask %08x", m.VersionMask())
	}

	// Accepted shares.
	results, err := m.Mine(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	var accepted []miner.Result
	for _, r := range results {
		if !r.Accepted {
			t.Fatalf("share rejected: %v", r.Error)
		}
		accepted = append(accepted, r)
		if r.MeetsNetwork {
			t.Skip("a share at difficulty 1e-6 was a block (p < 1%); the tip moved")
		}
	}
	expect := func(name string, s miner.Share, code int) {
		t.Helper()
		r, err := m.Submit(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if r.Accepted || r.Error == nil || r.Error.Code != code {
			t.Errorf("%s: accepted %v error %v, want code %d", name, r.Accepted, r.Error, code)
		}
	}
	expect("duplicate", accepted[0].Share, wire.CodeDuplicate)

	job := m.CurrentJob()
	low := accepted[1].Share
	for {
		low.Nonce++
		h := job.Hash(low.Extranonce2, low.NTime, low.Nonce, low.Version)
		if target := job.ShareTarget(); !target.Meets(&h) {
			break
		}
	}
	expect("low difficulty", low, wire.CodeLowDifficulty)
	badTime := accepted[1].Share
	badTime.NTime += 3 * 3600
	expect("ntime", badTime, wire.CodeOther)
	badVersion := accepted[1].Share
	badVersion.VersionBits, badVersion.HasVersionBits = 0xe0000000, true
	expect("version bits", badVersion, wire.CodeOther)

	// Stale: found on the old tip, submitted after the new one.
	old, err := m.FindShare(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src.Advance()
	if _, err := m.WaitEvent(ctx, func(e miner.Event) bool { return e.Job != nil && e.Job.Clean && e.Job.ID != old.JobID }); err != nil {
		t.Fatal(err)
	}
	expect("stale", old, wire.CodeJobNotFound)

	// The accepted shares reach PostgreSQL with user, worker and difficulty.
	if err := drainer.WaitStored(ctx, sp.Durable()); err != nil {
		t.Fatal(err)
	}
	rows, err := st.Pool().Query(ctx, `SELECT username, worker, difficulty, instance_id, remote_addr FROM shares ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var u, w, ip string
		var d float64
		var inst int16
		if err := rows.Scan(&u, &w, &d, &inst, &ip); err != nil {
			t.Fatal(err)
		}
		if u != user || w != "rig1" || d != accepted[n].Difficulty || inst != 3 || ip != "127.0.0.1" {
			t.Errorf("share %d: %s %s %v %d %s, want difficulty %v", n, u, w, d, inst, ip, accepted[n].Difficulty)
		}
		n++
	}
	if rows.Err() != nil || n != len(accepted) {
		t.Fatalf("%d shares stored (err %v), want %d", n, rows.Err(), len(accepted))
	}

	// A block: easy bits on the next tip, then mine until a share meets them.
	src.SetBits(chaintest.DefaultBits)
	src.Advance()
	if _, err := m.WaitEvent(ctx, func(e miner.Event) bool { return e.Job != nil && e.Job.Bits == chaintest.DefaultBits }); err != nil {
		t.Fatal(err)
	}
	var block miner.Result
	for block.Hash == ([32]byte{}) {
		rs, err := m.Mine(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !rs[0].Accepted {
			t.Fatalf("share rejected: %v", rs[0].Error)
		}
		accepted = append(accepted, rs[0])
		if rs[0].MeetsNetwork {
			block = rs[0]
		}
	}
	sub := src.Submitted()
	if len(sub) != 1 || sub[0].BlockHash() != block.Hash {
		t.Fatalf("submitted %d blocks; want the share's %v", len(sub), block.Hash)
	}
	if tip, _ := src.Tip(); tip != block.Hash {
		t.Errorf("block not accepted by the chain: tip %v", tip)
	}
	stopServer()
	// The block's row and its raw bytes come with its share; the recorder
	// behind the drainer writes its dump.
	if err := drainer.WaitStored(ctx, sp.Durable()); err != nil {
		t.Fatal(err)
	}
	for recorder.Stats().Written == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("no dump written: %+v", recorder.Stats())
		case <-time.After(5 * time.Millisecond):
		}
	}
	raw, err := st.BlockRaw(ctx, block.Hash.String())
	if err != nil {
		t.Fatal(err)
	}
	var stored btcwire.MsgBlock
	if err := stored.Deserialize(bytes.NewReader(raw)); err != nil || stored.BlockHash() != block.Hash ||
		len(stored.Transactions) != len(sub[0].Transactions) {
		t.Fatalf("stored block bytes: %v", err)
	}

	b, err := st.BlockByHash(ctx, block.Hash.String())
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != store.BlockSubmitted || b.Username != user || b.Worker != "rig1" || b.InstanceID != 3 ||
		b.Reward != 50*btcutil.SatoshiPerBitcoin || b.Height != 3 {
		t.Errorf("block row %+v", b)
	}
	data, err := os.ReadFile(filepath.Join(shareDir, fmt.Sprintf("%d-%s.json", b.Height, b.Hash)))
	if err != nil {
		t.Fatal(err)
	}
	var dump stratum.BlockDump
	if err := json.Unmarshal(data, &dump); err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, r := range accepted {
		sum += r.Difficulty
	}
	if dump.Hash != b.Hash || dump.Height != b.Height || dump.PrevHash != b.PrevHash || dump.Finder.User != user ||
		dump.Finder.Worker != "rig1" || dump.Reward != b.Reward || dump.Status != "submitted" || dump.Round.From != nil ||
		len(dump.Round.Users) != 1 || dump.Round.Users[0].Username != user ||
		dump.Round.Users[0].Shares != int64(len(accepted)) || math.Abs(dump.Round.Users[0].DifficultySum-sum) > 1e-12 {
		t.Errorf("dump %s\nwant %d shares, difficulty sum %v", data, len(accepted), sum)
	}
}

func addr(t *testing.T, seed byte) btcutil.Address {
	t.Helper()
	h := make([]byte, 20)
	for i := range h {
		h[i] = seed
	}
	a, err := btcutil.NewAddressWitnessPubKeyHash(h, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
