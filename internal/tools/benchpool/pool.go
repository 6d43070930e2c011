package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // -pprof
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"golang.org/x/sync/errgroup"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/chaintest"
	"github.com/stratumd/stratumd/internal/chain/embedded"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/store/spool"
	"github.com/stratumd/stratumd/internal/stratum"
)

// fanoutWait bounds the wait for the fan-out of a tip benchpool made.
const fanoutWait = 5 * time.Second

// pool is a running benchpool.
type pool struct {
	cfg    config
	out    io.Writer
	log    *slog.Logger
	params *chaincfg.Params
	server *stratum.Server

	chaintest *chaintest.Source // -node chaintest
	node      *embedded.Node    // -node embedded

	mu        sync.Mutex
	connected map[chainhash.Hash]time.Time // embedded: when each block connected
	latencies []time.Duration              // tip → first notify written
	outMu     sync.Mutex
}

// printf writes one line of output; safe for concurrent use.
func (p *pool) printf(format string, args ...any) {
	p.outMu.Lock()
	defer p.outMu.Unlock()
	fmt.Fprintf(p.out, format+"\n", args...)
}

// runPool builds the store, spool, drainer, chain source and stratum server
// and runs them until ctx ends or cfg.Duration passes; then it stops the
// server first and the infrastructure after it, as stratumd does, and
// prints the summary.
func runPool(ctx context.Context, cfg config, out io.Writer, log *slog.Logger) error {
	p := &pool{cfg: cfg, out: out, log: log, params: &chaincfg.RegressionNetParams,
		connected: make(map[chainhash.Hash]time.Time)}
	if note := raiseNoFile(); note != "" {
		log.Warn(note)
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cpuStart := cpuTime()
	if cfg.PprofListen != "" {
		pl, err := net.Listen("tcp", cfg.PprofListen)
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
		var wg sync.WaitGroup
		wg.Go(func() { _ = hs.Serve(pl) }) // returns at Close
		defer func() {
			hs.Close()
			wg.Wait()
		}()
	}

	m, err := store.NewMigrator(cfg.DB)
	if err != nil {
		return err
	}
	_, err = m.Up(ctx)
	m.Close()
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, store.Config{URL: cfg.DB})
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	if err := st.EnsurePartitions(ctx, now.Add(-24*time.Hour), now.Add(48*time.Hour)); err != nil {
		return err
	}
	sharesBefore, _, err := st.CountShares(ctx)
	if err != nil {
		return err
	}

	spoolDir := cfg.SpoolDir
	if spoolDir == "" {
		tmp, err := os.MkdirTemp("", "benchpool-spool-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		spoolDir = filepath.Join(tmp, "spool")
	}
	sp, err := spool.Open(spool.Config{Dir: spoolDir, Logger: log.With("part", "spool")})
	if err != nil {
		return fmt.Errorf("open share spool: %w", err)
	}
	defer sp.Close()
	drainer, err := store.NewDrainer(store.DrainerConfig{
		Store: st, Spool: sp, InstanceID: cfg.Instance,
		QuarantineDir: spoolDir + ".quarantine",
		Logger:        log.With("part", "drainer"),
	})
	if err != nil {
		return err
	}

	payout, err := btcutil.NewAddressWitnessPubKeyHash(make([]byte, 20), p.params)
	if err != nil {
		return err
	}
	payoutScript, err := txscript.PayToAddrScript(payout)
	if err != nil {
		return err
	}

	infra := []func(context.Context) error{sp.Run, drainer.Run}
	var source chain.Source
	switch cfg.Node {
	case nodeChaintest:
		src := chaintest.New(p.params)
		src.SetBits(blockchain.BigToCompact(chain.DifficultyToTarget(cfg.NetworkDiff)))
		for i := range cfg.Txs {
			src.AddTx(fakeTx(uint32(i)))
		}
		// The mempool is complete before the first job: no later
		// mempool job mixes into the tip measurements.
		select {
		case <-src.Updates():
		default:
		}
		p.chaintest, source = src, src
	case nodeEmbedded:
		dataDir := cfg.DataDir
		if dataDir == "" {
			tmp, err := os.MkdirTemp("", "benchpool-node-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			dataDir = tmp
		}
		node, err := embedded.New(embedded.Config{Network: p.params, DataDir: dataDir, Logger: log.With("part", "node")})
		if err != nil {
			return fmt.Errorf("open node: %w", err)
		}
		defer node.Close()
		// Called inside ProcessBlock after the node's own subscription,
		// which has already signalled the new tip: the timestamp is at
		// most a few microseconds late.
		node.Chain().Subscribe(func(n *blockchain.Notification) {
			if b, ok := n.Data.(*btcutil.Block); ok && n.Type == blockchain.NTBlockConnected {
				at := time.Now()
				p.mu.Lock()
				p.connected[*b.Hash()] = at
				p.mu.Unlock()
			}
		})
		p.node, source = node, node
		infra = append(infra, node.Run)
	}

	p.server, err = stratum.New(stratum.Config{
		Source: source, Network: p.params, Users: st, Shares: store.NewShareWriter(sp), Blocks: st,
		PayoutScript: payoutScript, InstanceID: cfg.Instance, Auth: stratum.AuthOpen,
		Limits: stratum.Limits{MinDiff: cfg.MinDiff, MaxDiff: cfg.MaxDiff, StartDiff: cfg.MinDiff},
		Logger: log.With("part", "stratum"),
	})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}

	srvCtx, stopSrv := context.WithCancel(ctx)
	defer stopSrv()
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		srvCtx, cancel = context.WithTimeout(srvCtx, cfg.Duration)
		defer cancel()
	}
	infraCtx, stopInfra := context.WithCancel(context.WithoutCancel(ctx))
	defer stopInfra()
	var ig errgroup.Group
	for _, run := range infra {
		ig.Go(func() error {
			err := run(infraCtx)
			if err != nil && infraCtx.Err() == nil {
				log.Error("infrastructure part failed; stopping", "err", err)
				stopSrv()
			}
			return err
		})
	}
	var sg errgroup.Group
	sg.Go(func() error { return p.server.Run(srvCtx) })
	sg.Go(func() error { return p.server.Serve(srvCtx, l) })
	if cfg.TipEvery > 0 {
		sg.Go(func() error { return p.tips(srvCtx, payoutScript) })
	}
	if cfg.StatsEvery > 0 {
		sg.Go(func() error { p.statsLoop(srvCtx); return nil })
	}
	p.printf("benchpool pid=%d listen=%s node=%s min-diff=%g max-diff=%g", os.Getpid(), l.Addr(), cfg.Node, cfg.MinDiff, cfg.MaxDiff)
	if cfg.listening != nil {
		cfg.listening(l.Addr())
	}

	<-srvCtx.Done()
	srvErr := sg.Wait()
	stopInfra()
	infraErr := ig.Wait()
	if err := errors.Join(srvErr, infraErr); err != nil {
		return err
	}

	st2 := p.server.Stats()
	p.printf("server: accepted=%d rejected=%v blocks=%d conns-total=%d jobs=%d fanouts=%d max-fanout=%s write-timeouts=%d",
		st2.SharesAccepted, nonZero(st2.SharesRejected), st2.BlocksFound, st2.ConnectionsTotal, st2.Jobs,
		st2.Fanouts, pct(st2.MaxFanout), st2.WriteTimeouts)
	ds := drainer.Stats()
	p.printf("drainer: stored=%d batches=%d failures=%d backlog=%d", ds.Stored, ds.Batches, ds.Failures, ds.Backlog)
	// A fresh context: ctx may be cancelled by now.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	sharesAfter, _, err := st.CountShares(cctx)
	if err != nil {
		return err
	}
	p.printf("postgresql: %d shares added during the run (count(*) FROM shares: %d before, %d after)",
		sharesAfter-sharesBefore, sharesBefore, sharesAfter)
	p.printLatencies()
	if cpu := cpuTime() - cpuStart; cpu > 0 {
		p.printf("cpu: %.2f s user+system (%.0f accepted shares per CPU second)",
			cpu.Seconds(), float64(st2.SharesAccepted)/cpu.Seconds())
	}
	return nil
}

// nonZero keeps the non-zero counts of m.
func nonZero(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64)
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// fakeTx is a template transaction for the chaintest mempool; it is never
// validated (no share becomes a block).
func fakeTx(n uint32) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: n}, Sequence: wire.MaxTxInSequenceNum})
	tx.AddTxOut(wire.NewTxOut(1000, []byte{txscript.OP_TRUE}))
	return tx
}

// statsLoop prints a stats line every cfg.StatsEvery until ctx ends.
func (p *pool) statsLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.StatsEvery)
	defer t.Stop()
	var last uint64
	lastAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			st := p.server.Stats()
			rate := float64(st.SharesAccepted-last) / now.Sub(lastAt).Seconds()
			last, lastAt = st.SharesAccepted, now
			p.printf("stats: conns=%d ready=%d accepted=%d (%.0f/s) rejected=%v last-fanout=%s max-fanout=%s",
				st.Connections, st.Authorized, st.SharesAccepted, rate, nonZero(st.SharesRejected),
				pct(st.LastFanout), pct(st.MaxFanout))
		}
	}
}

// tips makes a new tip every cfg.TipEvery until ctx ends and records the
// time from the tip to the first notify written.
func (p *pool) tips(ctx context.Context, payoutScript []byte) error {
	t := time.NewTicker(p.cfg.TipEvery)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		before := p.server.Stats().Fanouts
		var at time.Time
		var height int32
		if p.chaintest != nil {
			at = time.Now()
			p.chaintest.Advance()
			_, height = p.chaintest.Tip()
		} else {
			var err error
			at, height, err = p.mine(ctx, n, payoutScript)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				p.log.Error("mining a block failed", "err", err)
				continue
			}
		}
		st, ok := p.waitFanout(ctx, before, at)
		switch {
		case !ok:
			if ctx.Err() == nil {
				p.printf("tip height=%d: no job within %v", height, fanoutWait)
			}
			continue
		case st.LastFanoutSessions == 0 || st.LastFanoutFirstWrite.IsZero():
			p.printf("tip height=%d: no session got the notify (none subscribed and authorized)", height)
			continue
		}
		first := st.LastFanoutFirstWrite.Sub(at)
		p.mu.Lock()
		p.latencies = append(p.latencies, first)
		p.mu.Unlock()
		p.printf("tip height=%d: tip → first notify written %s, fan-out start → first write %s, fan-out (%d sessions) %s",
			height, pct(first), pct(st.LastFanoutFirstWrite.Sub(st.LastFanoutStart)), st.LastFanoutSessions, pct(st.LastFanout))
	}
}

// mine mines one block on the embedded node's tip in-process and submits
// it; it returns when the block connected and its height.
func (p *pool) mine(ctx context.Context, n int, payoutScript []byte) (time.Time, int32, error) {
	tmpl, err := p.node.Template(ctx)
	if err != nil {
		return time.Time{}, 0, err
	}
	job, err := chain.NewJob(fmt.Sprintf("bench%d", n), tmpl, chain.CoinbaseConfig{
		PayoutScript: payoutScript, Tag: "/benchpool/", Extranonce1Size: 4, Extranonce2Size: 4,
	})
	if err != nil {
		return time.Time{}, 0, err
	}
	b, err := embedded.Solve(ctx, job)
	if err != nil {
		return time.Time{}, 0, err
	}
	res, err := p.node.SubmitBlock(ctx, b)
	if err != nil {
		return time.Time{}, 0, err
	}
	if res.Status != chain.Accepted {
		return time.Time{}, 0, fmt.Errorf("block at height %d: %s %s", tmpl.Height, res.Status, res.Reason)
	}
	hash := b.BlockHash()
	p.mu.Lock()
	at, ok := p.connected[hash]
	delete(p.connected, hash)
	p.mu.Unlock()
	if !ok {
		return time.Time{}, 0, fmt.Errorf("block %s accepted but no connected notification", hash)
	}
	return at, tmpl.Height, nil
}

// waitFanout polls the server's stats until a fan-out after before has
// completed and started after at; false when none does within fanoutWait.
// Polling is fine here: it only reads counters and is not what is measured.
func (p *pool) waitFanout(ctx context.Context, before uint64, at time.Time) (stratum.Stats, bool) {
	deadline := time.Now().Add(fanoutWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		st := p.server.Stats()
		if st.Fanouts > before && !st.LastFanoutStart.Before(at) {
			return st, true
		}
		time.Sleep(200 * time.Microsecond)
	}
	return stratum.Stats{}, false
}

// printLatencies prints the median, p90 and max of the tip → first notify
// latencies.
func (p *pool) printLatencies() {
	p.mu.Lock()
	l := slices.Clone(p.latencies)
	p.mu.Unlock()
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	at := func(q float64) time.Duration { return l[min(len(l)-1, int(q*float64(len(l))))] }
	p.printf("tip → first notify written (%s, %d tips): median %s, p90 %s, min %s, max %s",
		p.cfg.Node, len(l), pct(at(0.5)), pct(at(0.9)), pct(l[0]), pct(l[len(l)-1]))
}
