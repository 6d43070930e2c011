package stratum

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"golang.org/x/sync/errgroup"

	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/store/spool"
)

// readDump reads and decodes a block's share dump.
func readDump(t *testing.T, dir string, height int32, hash string) BlockDump {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%d-%s.json", height, hash)))
	if err != nil {
		t.Fatal(err)
	}
	var d BlockDump
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dump: %v\n%s", err, data)
	}
	if d.Height != height || d.Hash != hash {
		t.Errorf("dump names %d-%s, file %d-%s", d.Height, d.Hash, height, hash)
	}
	return d
}

// testRawBlock returns bytes standing for a serialized block (an 80-byte
// header from seed, then filler) and the header's hash.
func testRawBlock(seed byte) ([]byte, [32]byte) {
	raw := make([]byte, 120)
	for i := range raw {
		raw[i] = seed ^ byte(i)
	}
	return raw, chainhash.DoubleHashH(raw[:80])
}

// recorderPipeline is a spool, a drainer on real PostgreSQL and a recorder
// fed by the drainer, running.
type recorderPipeline struct {
	st     *store.Store
	sp     *spool.Spool
	w      *store.ShareWriter
	d      *store.Drainer
	rec    *Recorder
	cancel context.CancelFunc
	g      *errgroup.Group
}

func startRecorderPipeline(t *testing.T, st *store.Store, dir, shareDir string) *recorderPipeline {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sp, err := spool.Open(spool.Config{Dir: filepath.Join(dir, "spool")})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := NewRecorder(RecorderConfig{Store: st, ShareDir: shareDir, RetryMin: 10 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	d, err := store.NewDrainer(store.DrainerConfig{Store: st, Spool: sp, InstanceID: 2,
		QuarantineDir: filepath.Join(dir, "q"), Logger: log, OnBlocks: rec.Stored})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &recorderPipeline{st: st, sp: sp, w: store.NewShareWriter(sp), d: d, rec: rec, cancel: cancel, g: &errgroup.Group{}}
	p.g.Go(func() error { return sp.Run(ctx) })
	p.g.Go(func() error { return d.Run(ctx) })
	p.g.Go(func() error { return rec.Run(ctx) })
	return p
}

func (p *recorderPipeline) stop(t *testing.T) {
	t.Helper()
	p.cancel()
	if err := p.g.Wait(); err != nil {
		t.Fatal(err)
	}
	p.sp.Close()
}

// TestRecorderOneDumpPerBlock: blocks that travel with their shares through
// the spool get their dump from the recorder behind the drainer, with the
// round summed from the stored shares; fed the same blocks again (a
// replay) and restarted, the recorder writes no dump twice; a block stored
// without its dump written (a crash in between) gets it at the next start;
// a dump that cannot be written is retried.
func TestRecorderOneDumpPerBlock(t *testing.T) {
	st, _ := pgtest.NewStore(t)
	defer st.Close()
	dir := t.TempDir()
	shareDir := filepath.Join(dir, "shares")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := startRecorderPipeline(t, st, dir, shareDir)

	at := testEpoch
	share := func(i int, user string, seed byte) store.Share {
		s := store.Share{Time: at.Add(time.Duration(i) * time.Second), Username: user, Worker: "w", JobID: "j",
			Height: 100, Difficulty: float64(i + 1), ShareDifficulty: 1, InstanceID: 2}
		if seed != 0 {
			raw, hash := testRawBlock(seed)
			s.Block = &store.BlockFound{Hash: hash, PrevHash: [32]byte{1}, Reward: 5000000000, NetworkDifficulty: 1,
				Status: store.BlockSubmitted, Raw: raw}
		}
		return s
	}
	plan := []store.Share{share(0, "alice", 0), share(1, "bob", 0), share(2, "alice", 7),
		share(3, "bob", 0), share(4, "bob", 9)}
	for i := range plan {
		if _, err := p.w.Write(ctx, &plan[i]); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ctx, "two dumps", func() bool { return p.rec.Stats().Written == 2 })
	first, second := chainhash.Hash(plan[2].Block.Hash).String(), chainhash.Hash(plan[4].Block.Hash).String()
	d1 := readDump(t, shareDir, 100, first)
	if d1.Round.From != nil || len(d1.Round.Users) != 2 || d1.Round.Users[0] != (store.RoundUser{Username: "alice", Shares: 2, DifficultySum: 4}) ||
		d1.Round.Users[1] != (store.RoundUser{Username: "bob", Shares: 1, DifficultySum: 2}) || d1.Finder.User != "alice" || d1.Status != "submitted" {
		t.Errorf("first dump %+v", d1)
	}
	d2 := readDump(t, shareDir, 100, second)
	if d2.Round.From == nil || *d2.Round.From != first || len(d2.Round.Users) != 1 || d2.Round.Users[0].Shares != 2 {
		t.Errorf("second dump %+v", d2)
	}
	if todo, err := st.BlocksToDump(ctx, 10); err != nil || len(todo) != 0 {
		t.Fatalf("blocks left to dump: %+v, %v", todo, err)
	}

	// A replay hands the same blocks over again: no dump is written twice.
	info, _ := os.Stat(filepath.Join(shareDir, fmt.Sprintf("100-%s.json", first)))
	b1, _ := st.BlockByHash(ctx, first)
	b2, _ := st.BlockByHash(ctx, second)
	p.rec.Stored(ctx, []store.Block{b1, b2})
	p.rec.Add(b1)
	waitFor(t, ctx, "the replayed blocks", func() bool { return p.rec.Stats().Existing == 2 })
	if st := p.rec.Stats(); st.Written != 2 || st.Queued != 0 {
		t.Fatalf("after the replay: %+v", st)
	}
	if again, _ := os.Stat(filepath.Join(shareDir, fmt.Sprintf("100-%s.json", first))); !again.ModTime().Equal(info.ModTime()) {
		t.Error("the first dump was written again")
	}
	p.stop(t)

	// A block stored while no recorder ran (a crash after the commit), and
	// a share dir that cannot be written at first.
	raw, hash := testRawBlock(11)
	third := chainhash.Hash(hash).String()
	if _, err := st.InsertBlock(ctx, store.Block{Height: 101, Hash: third, PrevHash: second, FoundAt: at.Add(time.Minute),
		Username: "carol", Worker: "x", Reward: 1, NetworkDifficulty: 1, InstanceID: 2, Raw: raw,
		LastShare: store.SharePos{Time: at.Add(time.Minute), Instance: 2, Seq: 99}}); err != nil {
		t.Fatal(err)
	}
	blocked := filepath.Join(dir, "blocked")
	if err := os.WriteFile(blocked, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p = startRecorderPipeline(t, st, dir, filepath.Join(blocked, "shares"))
	waitFor(t, ctx, "a failed dump", func() bool { return p.rec.Stats().Failures >= 1 })
	p.stop(t)
	if todo, err := st.BlocksToDump(ctx, 10); err != nil || len(todo) != 1 || todo[0].Hash != third {
		t.Fatalf("blocks left to dump: %+v, %v", todo, err)
	}
	os.Remove(blocked)
	if err := os.MkdirAll(filepath.Join(blocked, "shares"), 0o755); err != nil {
		t.Fatal(err)
	}
	p = startRecorderPipeline(t, st, dir, filepath.Join(blocked, "shares"))
	waitFor(t, ctx, "the dump at restart", func() bool { return p.rec.Stats().Written == 1 })
	p.stop(t)
	if d := readDump(t, filepath.Join(blocked, "shares"), 101, third); d.Round.From == nil || *d.Round.From != second || d.Finder.User != "carol" {
		t.Errorf("third dump %+v", d)
	}
}

// TestRecorderNoShareDir: without a share dir the recorder keeps nothing
// and Run only waits.
func TestRecorderNoShareDir(t *testing.T) {
	rec, err := NewRecorder(RecorderConfig{Store: nopRecorderStore{}})
	if err != nil {
		t.Fatal(err)
	}
	rec.Add(store.Block{Hash: "x"})
	if st := rec.Stats(); st.Queued != 0 {
		t.Fatalf("stats %+v", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := rec.Run(ctx); err != nil {
			t.Error(err)
		}
	})
	cancel()
	wg.Wait()
	if _, err := NewRecorder(RecorderConfig{}); err == nil {
		t.Fatal("a recorder without a store")
	}
}

// nopRecorderStore is a RecorderStore that is never reached.
type nopRecorderStore struct{ RecorderStore }
