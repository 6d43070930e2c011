package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/btcsuite/btcd/txscript"
	"golang.org/x/sync/errgroup"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/embedded"
	"github.com/stratumd/stratumd/internal/chain/p2p"
	"github.com/stratumd/stratumd/internal/chain/rpcsource"
	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/password"
	"github.com/stratumd/stratumd/internal/payout"
	"github.com/stratumd/stratumd/internal/pwworker"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/store/spool"
	"github.com/stratumd/stratumd/internal/stratum"
)

// daemon holds the running parts of stratumd.
type daemon struct {
	cfg     *config
	args    []string // for reloads
	log     *slog.Logger
	level   *slog.LevelVar
	store   *store.Store
	spool   *spool.Spool
	drainer *store.Drainer
	shares  *store.ShareWriter
	source  chain.Source
	server  *stratum.Server
	ops     opsHTTP // --metrics-listen (http.go)
	// certs is --tls-cert/--tls-key, reloaded on SIGHUP (listen.go).
	certs *certStore

	// listening, when set, is told each listener's address (tests).
	listening func(net.Addr)
	// lockWait, when set, replaces instanceLockWait (tests).
	lockWait time.Duration

	// recorder writes the share dumps of the blocks the drainer stores;
	// resubmitter hands found blocks no node has to the nodes again.
	recorder    *stratum.Recorder
	resubmitter *stratum.Resubmitter
	// rejects counts rejected submits per worker and adds the counts to
	// worker_rejects every few seconds.
	rejects *store.RejectCounter

	infraUp    atomic.Int32 // infrastructure parts running
	infraParts int32
}

// infraPart is a long-running part that must outlive the stratum server:
// the node, the spool and the drainer stop only after every session has.
type infraPart struct {
	name string
	run  func(context.Context) error
}

// run builds every part and runs them until ctx ends.
//
// Start-up: the schema must be current; the spool is opened (recovering
// what a crash left) before anything can accept a share, and the drainer
// replays an unreplayed spool first thing; the node is opened (and, on
// regtest with --regtest-premine, mined up to that height); then the stratum
// listeners open and systemd hears READY=1.
//
// Shutdown (SIGTERM/SIGINT): the listeners close and every miner gets
// client.reconnect; once all sessions are gone the spool commits what is
// queued, the drainer makes a last bounded pass, the recorder writes the
// dumps of the blocks it stored, and the node closes its database. The
// resubmitter stops with the infrastructure; the blocks it still follows
// are in the blocks table and followed again at the next start. A failing
// part stops the whole daemon the same way.
func (d *daemon) run(ctx context.Context, stderr io.Writer) error {
	cfg := d.cfg
	d.level = new(slog.LevelVar)
	lvl, _ := parseLevel(cfg.LogLevel)
	d.level.Set(lvl)
	log := cfg.loggerWith(stderr, d.level)
	d.log = log
	fdLim := raiseNoFile(log) // before anything opens a file (fdbudget.go)

	hasher, stopHasher, err := d.startPasswordWorker(ctx)
	if err != nil {
		return err
	}
	defer stopHasher() // the last thing run does: after the server has stopped
	st, err := openStore(ctx, cfg, hasher)
	if err != nil {
		return err
	}
	defer st.Close()
	d.store = st
	// Two processes on one instance id would hand out the same extranonce1
	// prefix and collide on share keys (with --reuse-port they may even
	// share a port): the second one refuses to start.
	instLock, err := store.LockInstance(ctx, cfg.DB, uint8(cfg.InstanceID), cmp.Or(d.lockWait, instanceLockWait))
	if err != nil {
		return fmt.Errorf("%w: --instance-id %d: %w; give every process on this database its own id", errStartup, cfg.InstanceID, err)
	}
	defer instLock.Close()
	for _, dir := range []string{cfg.DataDir, cfg.ShareDir} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	sp, err := spool.Open(spool.Config{Dir: cfg.SpoolDir, Logger: log.With("part", "spool")})
	if err != nil {
		return fmt.Errorf("open share spool: %w", err)
	}
	defer sp.Close()
	d.spool = sp
	d.shares = store.NewShareWriter(sp)
	d.recorder, err = stratum.NewRecorder(stratum.RecorderConfig{Store: st, ShareDir: cfg.ShareDir,
		Logger: log.With("part", "recorder")})
	if err != nil {
		return err
	}
	d.drainer, err = store.NewDrainer(store.DrainerConfig{
		Store: st, Spool: sp, InstanceID: uint8(cfg.InstanceID),
		QuarantineDir: filepath.Join(filepath.Dir(cfg.SpoolDir), "quarantine"),
		Logger:        log.With("part", "drainer"),
		// A found block travels with its share: once both are stored, the
		// recorder writes the block's share dump, and the resubmitter
		// follows it (set below, before the drainer runs).
		OnBlocks: func(ctx context.Context, blocks []store.Block) {
			d.recorder.Stored(ctx, blocks)
			d.resubmitter.Stored(ctx, blocks)
		},
	})
	if err != nil {
		return err
	}
	d.rejects, err = store.NewRejectCounter(store.RejectCounterConfig{Store: st, Logger: log.With("part", "rejects")})
	if err != nil {
		return err
	}
	payoutScript, err := txscript.PayToAddrScript(cfg.payout)
	if err != nil {
		return fmt.Errorf("payout address %s: %w", cfg.PayoutAddress, err)
	}

	infra := []infraPart{
		{"spool", sp.Run},
		{"drainer", d.drainer.Run},
		{"partitions", d.maintainPartitions},
		{"retention", d.enforceRetention}, // --retention (listen.go)
		// After the server: the last rejects are flushed at shutdown.
		{"rejects", d.rejects.Run},
	}
	switch cfg.Node {
	case "embedded":
		// In this case, log drops info lines while premining is set: the
		// node's and the P2P layer's per-block lines of the pre-mine
		// (premine.go).
		var premining atomic.Bool
		log := slog.New(quietHandler{log.Handler(), &premining})
		node, err := p2p.NewNode(
			embedded.Config{Network: cfg.params, DataDir: cfg.DataDir, Logger: log.With("part", "node"),
				HeaderFirst: cfg.HeaderFirst},
			p2p.Config{Connect: cfg.Connect, AddPeers: cfg.AddPeer, Listen: cfg.P2PListen, DataDir: cfg.DataDir,
				Logger: log.With("part", "p2p"), UserAgentVersion: version()})
		if err != nil {
			return fmt.Errorf("open node: %w", err)
		}
		defer node.Close()
		d.source = node
		infra = append(infra, infraPart{"node", node.Run})
		watcher := &payout.OrphanWatcher{Store: st, Chain: node, Logger: log.With("part", "orphans"), Interval: 2 * time.Second}
		infra = append(infra, infraPart{"orphans", watcher.Run})
		if h := int(node.BestHeight()); cfg.RegtestPremine > h {
			// One line for the whole pre-mine, none per block.
			log.Debug("pre-mining in-process", "from", h, "to", cfg.RegtestPremine)
			start := time.Now()
			premining.Store(true)
			hashes, err := node.Generate(ctx, cfg.RegtestPremine-h, payoutScript)
			premining.Store(false)
			if err != nil {
				return fmt.Errorf("--regtest-premine: %w", err)
			}
			log.Info("pre-mined", "blocks", len(hashes), "from", h, "height", node.BestHeight(),
				"tip", hashes[len(hashes)-1], "took", time.Since(start).Round(time.Millisecond))
		}
	case "rpc":
		src, err := newRPCSource(cfg, log.With("part", "rpc"))
		if err != nil {
			return err
		}
		d.source = src
		infra = append(infra, infraPart{"rpc", src.Run})
	}

	d.resubmitter, err = stratum.NewResubmitter(stratum.ResubmitterConfig{Source: d.source, Store: st,
		Logger: log.With("part", "resubmitter")})
	if err != nil {
		return err
	}
	infra = append(infra, infraPart{"resubmitter", d.resubmitter.Run})

	// Miners get what descriptors the node, PostgreSQL and the rest leave
	// (fdbudget.go).
	budget, err := budgetConns(cfg, fdLim, int(st.Pool().Config().MaxConns), log)
	if err != nil {
		return err
	}
	d.server, err = stratum.New(stratum.Config{
		Source: d.source, Network: cfg.params, Users: st, Shares: d.shares, Blocks: st,
		Recorder: d.recorder, Resubmitter: d.resubmitter,
		PayoutScript: payoutScript, SoloFeeBPS: cfg.SoloFeeBPS, CoinbaseTag: cfg.CoinbaseTag, InstanceID: uint8(cfg.InstanceID),
		Auth: cfg.Auth, AdminPassword: cfg.AdminPassword, AdminHasher: hasher,
		Limits: cfg.limits(), MaxConns: budget.maxConns, JobInterval: cfg.JobInterval,
		Extranonce2Size: cfg.Extranonce2Size, MaxLineLength: cfg.MaxLine,
		HandshakeTimeout: cfg.HandshakeTimeout, IdleTimeout: cfg.IdleTimeout, WriteTimeout: cfg.WriteTimeout,
		Observer: d.opsObserver(),
		Rejects:  d.rejects,
		Logger:   log.With("part", "stratum"),
	})
	if err != nil {
		return err
	}
	listeners, err := d.openListeners() // --listen, --tls-listen, --proxy-protocol (listen.go)
	if err != nil {
		return err
	}
	if err := d.listenOps(); err != nil {
		for _, o := range listeners {
			o.Close()
		}
		return err
	}

	// Infrastructure runs on its own context, cancelled only after the
	// stratum server has stopped (or when a part of it fails).
	srvCtx, stopSrv := context.WithCancel(ctx)
	defer stopSrv()
	infraCtx, stopInfra := context.WithCancel(context.WithoutCancel(ctx))
	defer stopInfra()
	// The recorder outlives the drainer: the blocks of its last pass get
	// their dumps too.
	recCtx, stopRecorder := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRecorder()
	var rg errgroup.Group
	rg.Go(func() error { return d.recorder.Run(recCtx) })
	var ig errgroup.Group
	d.infraParts = int32(len(infra))
	for _, p := range infra {
		d.infraUp.Add(1)
		ig.Go(func() error {
			err := p.run(infraCtx)
			d.infraUp.Add(-1)
			if err != nil && infraCtx.Err() == nil {
				log.Error("part failed; stopping", "part", p.name, "err", err)
				stopSrv()
			}
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			return nil
		})
	}

	sd := newNotifier(os.LookupEnv)
	var sg errgroup.Group
	sg.Go(func() error { return d.server.Run(srvCtx) })
	for _, l := range listeners {
		log.Info("stratum listening", "addr", l.Addr().String(), "listen", l.spec.Value)
		if d.listening != nil {
			d.listening(l.Addr())
		}
		sg.Go(func() error { return d.server.ServeListener(srvCtx, l.Listener, l.spec.listenerConfig()) })
	}
	sg.Go(func() error { return d.serveOps(srvCtx) })
	sg.Go(func() error { return sd.Watchdog(srvCtx, d.healthy) })
	sg.Go(func() error { d.reloadOnHUP(srvCtx, sd); return nil })
	sg.Go(func() error { d.reloadCertOnHUP(srvCtx); return nil })
	ready := []any{"version", version(), "network", cfg.Network, "node", cfg.Node,
		"instance", cfg.InstanceID, "auth", cfg.Auth, "stratum", d.stratumURLs(listeners)}
	if d.ops.l != nil {
		ready = append(ready, "web", httpURL(d.ops.l.Addr())+"/", "metrics", httpURL(d.ops.l.Addr())+"/metrics")
	}
	ready = append(ready, "spool", cfg.SpoolDir, "spool_durable", sp.Durable())
	log.Info("stratumd ready", ready...)
	if err := sd.Ready("serving"); err != nil {
		log.Warn("systemd notification failed", "err", err)
	}

	<-srvCtx.Done()
	sd.Stopping()
	log.Info("stopping: reconnecting miners, flushing the spool")
	srvErr := sg.Wait()
	stopInfra()
	infraErr := ig.Wait()
	stopRecorder() // the drainer has stopped: no new blocks
	recErr := rg.Wait()
	log.Info("stratumd stopped", "server", fmt.Sprintf("%+v", d.server.Stats()), "drainer", fmt.Sprintf("%+v", d.drainer.Stats()),
		"recorder", fmt.Sprintf("%+v", d.recorder.Stats()), "resubmitter", fmt.Sprintf("%+v", d.resubmitter.Stats()))
	return errors.Join(srvErr, infraErr, recErr)
}

var errStartup = errors.New("start-up")

// instanceLockWait is how long start-up waits for another process's lock
// on the instance id: a process killed a moment ago (restarted by systemd
// at once) leaves a PostgreSQL backend that has not yet noticed.
const instanceLockWait = 10 * time.Second

// newRPCSource builds the RPC chain source of --rpc-url (and its
// credentials and --zmq-block); it starts nothing.
func newRPCSource(cfg *config, log *slog.Logger) (*rpcsource.Source, error) {
	var nodes []rpcsource.NodeConfig
	for i, u := range cfg.RPCURL {
		n := rpcsource.NodeConfig{URL: u, User: cfg.RPCUser, Pass: cfg.RPCPass, CookieFile: cfg.RPCCookie}
		if i < len(cfg.ZMQBlock) {
			n.ZMQBlock = cfg.ZMQBlock[i]
		}
		nodes = append(nodes, n)
	}
	src, err := rpcsource.New(rpcsource.Config{Nodes: nodes, Network: cfg.params, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("%w: --rpc-url: %w", cliconf.ErrConfig, err)
	}
	return src, nil
}

// startPasswordWorker starts the argon2 child process of --password-nice
// when passwords are checked at all (--auth password or --admin-password),
// and returns it with the function that stops it. The hasher is nil
// (in-process checks) when no worker is wanted.
func (d *daemon) startPasswordWorker(ctx context.Context) (password.Hasher, func(), error) {
	cfg := d.cfg
	if cfg.PasswordNice == 0 || (cfg.Auth != "password" && cfg.AdminPassword == "") {
		return nil, func() {}, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("password worker: find own binary: %w", err)
	}
	conc := max(1, runtime.GOMAXPROCS(0)-1)
	log := d.log.With("part", "pwworker")
	c, err := pwworker.Start(ctx, pwworker.Options{
		Command:     []string{exe, "password-worker", strconv.Itoa(cfg.PasswordNice), strconv.Itoa(conc)},
		Concurrency: conc,
		Hasher:      password.Argon2id{Params: password.DefaultParams()},
		Logger:      log,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("password worker: %w", err)
	}
	stop := func() {
		c.Close()
		log.Info("password worker stopped", "stats", fmt.Sprintf("%+v", c.Stats()))
	}
	return c, stop, nil
}

// healthy is what the systemd watchdog checks: every infrastructure part
// (spool committer, drainer, node) is still running. A part that ended
// stops the pings, and systemd restarts a daemon that could not stop.
func (d *daemon) healthy() bool {
	return d.infraUp.Load() == d.infraParts
}

// reloadOnHUP re-reads the configuration on SIGHUP and applies what can
// change safely at run time: difficulty and ban settings, and the log level.
// A bad configuration is logged and the running one kept.
func (d *daemon) reloadOnHUP(ctx context.Context, sd *notifier) {
	onSignal(ctx, syscall.SIGHUP, func() {
		sd.Reloading()
		cfg, _, err := parseConfig(d.args, os.LookupEnv, io.Discard)
		if err == nil {
			err = d.server.SetLimits(cfg.limits())
		}
		if err == nil && d.cfg.listenersChanged(cfg) {
			d.log.Warn("listeners changed in the configuration: they take effect at the next start", "listen", cfg.Listen.String(), "tls_listen", cfg.TLSListen.String())
		}
		if err != nil {
			d.log.Error("reload refused; keeping the running configuration", "err", err)
		} else {
			lvl, _ := parseLevel(cfg.LogLevel)
			d.level.Set(lvl)
			d.log.Info("configuration reloaded", "min_diff", cfg.MinDiff, "max_diff", cfg.MaxDiff,
				"max_conns_per_ip", cfg.MaxConnsPerIP, "log_level", cfg.LogLevel)
		}
		sd.Ready("serving")
	})
}

// onSignal calls f for every sig received until ctx ends. Each caller gets
// its own subscription: every one of them sees every signal.
func onSignal(ctx context.Context, sig os.Signal, f func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sig)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
		f()
	}
}

// maintainPartitions keeps share partitions created three days ahead,
// checking every hour. Failures are logged and retried: the drainer creates
// a missing partition itself when it needs one.
func (d *daemon) maintainPartitions(ctx context.Context) error {
	for {
		now := time.Now()
		if err := d.store.EnsurePartitions(ctx, now, now.Add(72*time.Hour)); err != nil && ctx.Err() == nil {
			d.log.Warn("creating share partitions ahead failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Hour):
		}
	}
}
