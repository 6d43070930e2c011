package store_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/store/spool"
)

// pipeline is a spool, a ShareWriter and a Drainer on one store, running.
type pipeline struct {
	sp     *spool.Spool
	w      *store.ShareWriter
	d      *store.Drainer
	cancel context.CancelFunc
	g      *errgroup.Group
}

func startPipeline(t testing.TB, st *store.Store, dir string) *pipeline {
	t.Helper()
	sp, err := spool.Open(spool.Config{Dir: filepath.Join(dir, "spool")})
	if err != nil {
		t.Fatal(err)
	}
	d, err := store.NewDrainer(store.DrainerConfig{Store: st, Spool: sp, InstanceID: 1,
		QuarantineDir: filepath.Join(dir, "quarantine"), MaxBackoff: 200 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sp.Run(gctx) })
	g.Go(func() error { return d.Run(gctx) })
	p := &pipeline{sp: sp, w: store.NewShareWriter(sp), d: d, cancel: cancel, g: g}
	return p
}

func (p *pipeline) stop(t testing.TB) {
	t.Helper()
	p.cancel()
	if err := p.g.Wait(); err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	if err := p.sp.Close(); err != nil {
		t.Fatal(err)
	}
}

func queryInts(t testing.TB, url, sql string, args ...any) []int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, sql, args...)
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDrainerStoresEverythingOnce(t *testing.T) {
	st, url := pgtest.NewStore(t)
	dir := t.TempDir()
	p := startPipeline(t, st, dir)
	ctx := ctxT(t)
	const writers, each = 16, 500
	start := time.Now().UTC()
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[uint64]string{}
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				s := sampleShare(w*each+i, start)
				s.JobID = fmt.Sprintf("w%d-%d", w, i)
				seq, err := p.w.Write(ctx, &s)
				if err != nil {
					t.Errorf("write: %v", err)
					return
				}
				mu.Lock()
				acked[seq] = s.JobID
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := p.d.WaitStored(ctx, p.sp.Durable()); err != nil {
		t.Fatal(err)
	}
	stats := p.d.Stats()
	p.stop(t)
	if len(acked) != writers*each || stats.Stored != writers*each || stats.Backlog != 0 {
		t.Fatalf("acked %d, stats %+v", len(acked), stats)
	}
	if c := queryInts(t, url, `SELECT count(*) FROM shares`); c[0] != writers*each {
		t.Fatalf("%d rows, want %d", c[0], writers*each)
	}
	checkAcked(t, url, acked)
	// Restart on the same spool: nothing is stored twice.
	p = startPipeline(t, st, dir)
	s := sampleShare(1, start)
	s.JobID = "after-restart"
	seq, err := p.w.Write(ctx, &s)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.d.WaitStored(ctx, seq); err != nil {
		t.Fatal(err)
	}
	p.stop(t)
	if c := queryInts(t, url, `SELECT count(*) FROM shares`); c[0] != writers*each+1 {
		t.Fatalf("after restart %d rows, want %d", c[0], writers*each+1)
	}
}

// checkAcked verifies every acknowledged share is stored exactly once with
// the job id it was written with.
func checkAcked(t testing.TB, url string, acked map[uint64]string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT seq, job_id FROM shares`)
	type row struct {
		Seq   int64
		JobID string
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]int{}
	for _, r := range got {
		seen[uint64(r.Seq)]++
		if want, ok := acked[uint64(r.Seq)]; ok && want != r.JobID {
			t.Errorf("seq %d stored with job %q, acknowledged as %q", r.Seq, r.JobID, want)
		}
	}
	for seq, n := range seen {
		if n != 1 {
			t.Errorf("seq %d stored %d times", seq, n)
		}
	}
	missing := 0
	for seq := range acked {
		if seen[seq] == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged shares are not stored", missing, len(acked))
	}
}

// TestDrainerResumesAfterPartialStore: shares stored (progress committed)
// but not trimmed before a crash are skipped on replay, not stored twice.
func TestDrainerResumesAfterPartialStore(t *testing.T) {
	st, url := pgtest.NewStore(t)
	dir := t.TempDir()
	ctx := ctxT(t)
	sp, err := spool.Open(spool.Config{Dir: filepath.Join(dir, "spool")})
	if err != nil {
		t.Fatal(err)
	}
	spCtx, spStop := context.WithCancel(ctx)
	spDone := make(chan error, 1)
	go func() { spDone <- sp.Run(spCtx) }()
	w := store.NewShareWriter(sp)
	start := time.Now().UTC()
	for i := range 100 {
		s := sampleShare(i, start)
		if _, err := w.Write(ctx, &s); err != nil {
			t.Fatal(err)
		}
	}
	// Store the first 60 "by an earlier run" that died before trimming.
	recs, err := sp.Read(1, 60, 1<<20)
	if err != nil || len(recs) != 60 {
		t.Fatalf("read: %d, %v", len(recs), err)
	}
	var first []store.StoredShare
	for _, r := range recs {
		s, err := store.DecodeShare(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		first = append(first, store.StoredShare{Share: s, Seq: r.Seq})
	}
	var id [16]byte
	if b, err := hex.DecodeString(sp.ID()); err != nil || copy(id[:], b) != 16 {
		t.Fatalf("spool id %q", sp.ID())
	}
	if err := st.StoreShares(ctx, id, 1, first); err != nil {
		t.Fatal(err)
	}
	d, err := store.NewDrainer(store.DrainerConfig{Store: st, Spool: sp, InstanceID: 1, QuarantineDir: filepath.Join(dir, "q")})
	if err != nil {
		t.Fatal(err)
	}
	dCtx, dStop := context.WithCancel(ctx)
	dDone := make(chan error, 1)
	go func() { dDone <- d.Run(dCtx) }()
	if err := d.WaitStored(ctx, 100); err != nil {
		t.Fatal(err)
	}
	dStop()
	spStop()
	if err := errors.Join(<-dDone, <-spDone, sp.Close()); err != nil {
		t.Fatal(err)
	}
	if c := queryInts(t, url, `SELECT count(DISTINCT seq) FROM shares HAVING count(*) = count(DISTINCT seq)`); len(c) != 1 || c[0] != 100 {
		t.Fatalf("distinct stored seqs: %v, want exactly 100 with no duplicates", c)
	}
	if s := d.Stats(); s.Stored != 40 {
		t.Fatalf("drainer stored %d, want the 40 not stored before", s.Stored)
	}
}

func TestDrainerQuarantinesBadRecords(t *testing.T) {
	st, url := pgtest.NewStore(t)
	dir := t.TempDir()
	p := startPipeline(t, st, dir)
	ctx := ctxT(t)
	start := time.Now().UTC()
	s := sampleShare(1, start)
	if _, err := p.w.Write(ctx, &s); err != nil {
		t.Fatal(err)
	}
	bad, err := p.sp.Append(ctx, []byte("not a share"))
	if err != nil {
		t.Fatal(err)
	}
	s2 := sampleShare(2, start)
	last, err := p.w.Write(ctx, &s2)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.d.WaitStored(ctx, last); err != nil {
		t.Fatal(err)
	}
	stats := p.d.Stats()
	p.stop(t)
	if stats.Quarantined != 1 || stats.Stored != 2 {
		t.Fatalf("stats %+v", stats)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "quarantine", fmt.Sprintf("*-%020d.share", bad)))
	if len(files) != 1 {
		t.Fatalf("quarantine files %v", files)
	}
	b, _ := os.ReadFile(files[0])
	if !strings.Contains(string(b), "reason:") || !strings.Contains(string(b), fmt.Sprintf("%x", "not a share")) {
		t.Fatalf("quarantine file: %q", b)
	}
	if c := queryInts(t, url, `SELECT count(*) FROM shares`); c[0] != 2 {
		t.Fatalf("%d rows", c[0])
	}
}

// TestSharesSurvivePostgresOutage: a steady share stream while PostgreSQL is
// stopped for a while; afterwards every acknowledged share is stored, in
// order, none twice.
func TestSharesSurvivePostgresOutage(t *testing.T) {
	cl := pgtest.StartCluster(t)
	ctx := ctxT(t)
	st, err := store.Open(ctx, store.Config{URL: cl.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := startPipeline(t, st, t.TempDir())
	var mu sync.Mutex
	acked := map[uint64]string{}
	var order []uint64
	streamCtx, stopStream := context.WithCancel(ctx)
	streamDone := make(chan error, 1)
	go func() {
		// One writer: times grow with seq, so "in order" is checkable.
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-streamCtx.Done():
				streamDone <- nil
				return
			case <-tick.C:
			}
			s := sampleShare(i, time.Now().UTC())
			s.Time = time.Now().UTC()
			s.JobID = fmt.Sprintf("j%d", i)
			seq, err := p.w.Write(ctx, &s)
			if err != nil {
				streamDone <- err
				return
			}
			mu.Lock()
			acked[seq] = s.JobID
			order = append(order, seq)
			mu.Unlock()
		}
	}()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	waitFor := func(n int) {
		for count() < n {
			select {
			case <-p.sp.Notify():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	waitFor(200)
	cl.Stop()
	before := count()
	// Shares keep being acknowledged while the database is down.
	waitFor(before + 1000)
	if p.d.Stats().Failures == 0 {
		// The drainer must have noticed: wait for its next attempt.
		for p.d.Stats().Failures == 0 {
			waitFor(count() + 50)
		}
	}
	cl.Start()
	waitFor(count() + 200)
	stopStream()
	if err := <-streamDone; err != nil {
		t.Fatal(err)
	}
	if err := p.d.WaitStored(ctx, p.sp.Durable()); err != nil {
		t.Fatal(err)
	}
	stats := p.d.Stats()
	p.stop(t)
	t.Logf("acknowledged %d shares (%d during the outage); drainer %+v", len(acked), 1000, stats)
	checkAcked(t, cl.URL(), acked)
	got := queryInts(t, cl.URL(), `SELECT seq FROM shares ORDER BY time, seq`)
	if len(got) != len(order) {
		t.Fatalf("%d rows, %d acknowledged", len(got), len(order))
	}
	for i := range got {
		if uint64(got[i]) != order[i] {
			t.Fatalf("row %d by time is seq %d, acknowledged order says %d", i, got[i], order[i])
		}
	}
}

// The crash test runs a child process (this test binary) that writes shares
// through the spool and drainer and prints each acknowledged one; the parent
// kills it with SIGKILL mid-stream, twice, then drains and checks.
const crashChildEnv = "STRATUMD_TEST_CRASH_CHILD"

func TestCrashChild(t *testing.T) {
	spec := os.Getenv(crashChildEnv)
	if spec == "" {
		t.Skip("helper process for TestSharesSurviveSIGKILL")
	}
	url, dir, _ := strings.Cut(spec, "|")
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{URL: url})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	p := startPipeline(t, st, dir)
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	pid := os.Getpid()
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				s := sampleShare(i, time.Now().UTC())
				s.Time = time.Now().UTC()
				s.JobID = fmt.Sprintf("%d-%d-%d", pid, w, i)
				seq, err := p.w.Write(ctx, &s)
				if err != nil {
					fmt.Println("ERR", err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintf(out, "ACK %d %s\n", seq, s.JobID)
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func TestSharesSurviveSIGKILL(t *testing.T) {
	st, url := pgtest.NewStore(t)
	dir := t.TempDir()
	acked := map[uint64]string{}
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+url+"|"+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		n := 0
		want := 3000 + 1000*round
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "ERR") {
				t.Fatalf("child: %s", line)
			}
			f := strings.Fields(line)
			if len(f) != 3 || f[0] != "ACK" {
				continue
			}
			seq, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatalf("child line %q", line)
			}
			if prev, dup := acked[seq]; dup {
				t.Fatalf("seq %d acknowledged twice (%s, %s)", seq, prev, f[2])
			}
			acked[seq] = f[2]
			if n++; n == want {
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		cmd.Wait()
		if n < want {
			t.Fatalf("round %d: child acknowledged only %d shares", round, n)
		}
	}
	// Restart in-process on the same spool: the replay stores the rest.
	ctx := ctxT(t)
	p := startPipeline(t, st, dir)
	if err := p.d.WaitStored(ctx, p.sp.Durable()); err != nil {
		t.Fatal(err)
	}
	p.stop(t)
	checkAcked(t, url, acked)
	t.Logf("%d acknowledged shares over 3 SIGKILLs, all stored once", len(acked))
}

// TestDrainerStoresBlocks: a block-solving share brings its blocks row and
// its serialized block (one near the 4 MB limit) with it, in the same
// transaction; a row inserted earlier is kept as it is; OnBlocks hears of
// each block once, without its bytes.
func TestDrainerStoresBlocks(t *testing.T) {
	st, _ := pgtest.NewStore(t)
	dir := t.TempDir()
	sp, err := spool.Open(spool.Config{Dir: filepath.Join(dir, "spool")})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []store.Block
	d, err := store.NewDrainer(store.DrainerConfig{Store: st, Spool: sp, InstanceID: 4,
		QuarantineDir: filepath.Join(dir, "q"), Logger: slog.New(slog.DiscardHandler),
		OnBlocks: func(_ context.Context, bs []store.Block) { mu.Lock(); seen = append(seen, bs...); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	var g errgroup.Group
	g.Go(func() error { return sp.Run(ctx) })
	g.Go(func() error { return d.Run(ctx) })
	w := store.NewShareWriter(sp)
	start := time.Now().UTC()
	var seqs []uint64
	raws := map[string][]byte{} // by block hash
	for i, status := range []store.BlockStatus{store.BlockSubmitted, store.BlockRejected, store.BlockSubmitted} {
		s := sampleShare(i, start)
		s.InstanceID = 4
		raw, hash := rawBlock(byte(i), []int{store.MaxBlockBytes - 2000, 300, 81}[i])
		s.Block = &store.BlockFound{Hash: hash, PrevHash: [32]byte{7}, Reward: 5000000000,
			NetworkDifficulty: 2, Status: status, Reason: string(status), Raw: raw}
		raws[chainhash.Hash(hash).String()] = raw
		if i == 2 {
			// An earlier direct insert (the spool refused the share once).
			if _, err := st.InsertBlock(ctx, store.Block{Height: s.Height, Hash: chainhash.Hash(hash).String(), PrevHash: strings.Repeat("0", 64),
				FoundAt: s.Time, Username: s.Username, Worker: "early", Reward: 1, NetworkDifficulty: 2,
				LastShare: store.SharePos{Time: s.Time, Instance: 4, Seq: 3}}); err != nil {
				t.Fatal(err)
			}
		}
		seq, err := w.Write(ctx, &s)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	if err := d.WaitStored(ctx, seqs[2]); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	all, err := st.Blocks(ctxT(t), 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("blocks %+v, %v", all, err)
	}
	for _, b := range all {
		if raws[b.Hash] == nil || b.LastShare.Instance != 4 || b.Username == "" || b.Raw != nil {
			t.Fatalf("row %+v", b)
		}
		raw, err := st.BlockRaw(ctxT(t), b.Hash)
		switch b.LastShare.Seq {
		case 2:
			if b.Status != store.BlockRejected {
				t.Fatalf("row %+v: status", b)
			}
		case 3:
			if b.Worker != "early" {
				t.Fatalf("the earlier row was replaced: %+v", b)
			}
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the earlier row got bytes: %d, %v", len(raw), err)
			}
			continue
		}
		if err != nil || !bytes.Equal(raw, raws[b.Hash]) {
			t.Fatalf("block %s: %d bytes stored of %d (%v)", b.Hash, len(raw), len(raws[b.Hash]), err)
		}
	}
	if len(seen) != 3 {
		t.Fatalf("OnBlocks saw %d blocks", len(seen))
	}
	for _, b := range seen {
		if b.Raw != nil || raws[b.Hash] == nil {
			t.Fatalf("OnBlocks got %s with %d bytes", b.Hash, len(b.Raw))
		}
	}
}
