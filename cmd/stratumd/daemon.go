package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/store/spool"
)

// daemon holds the running parts of stratumd.
type daemon struct {
	cfg     *config
	log     *slog.Logger
	store   *store.Store
	spool   *spool.Spool
	drainer *store.Drainer
	shares  *store.ShareWriter
}

// runDaemon builds every part and runs them until ctx ends. Start-up order
// matters: the database schema must be current, and the spool is opened
// (recovering what a crash left) before anything can accept a share; the
// drainer replays an unreplayed spool first thing.
func runDaemon(ctx context.Context, cfg *config, stderr io.Writer) error {
	log := cfg.logger(stderr)
	d := &daemon{cfg: cfg, log: log}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	d.store = st
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
	d.drainer, err = store.NewDrainer(store.DrainerConfig{
		Store: st, Spool: sp, InstanceID: uint8(cfg.InstanceID),
		QuarantineDir: filepath.Join(filepath.Dir(cfg.SpoolDir), "quarantine"),
		Logger:        log.With("part", "drainer"),
	})
	if err != nil {
		return err
	}
	log.Info("stratumd starting", "version", version(), "network", cfg.Network, "node", cfg.Node,
		"instance", cfg.InstanceID, "spool", cfg.SpoolDir, "spool_durable", sp.Durable())

	sd := newNotifier(os.LookupEnv)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sp.Run(gctx) })
	g.Go(func() error { return d.drainer.Run(gctx) })
	g.Go(func() error { return d.maintainPartitions(gctx) })
	g.Go(func() error { return sd.Watchdog(gctx, func() bool { return gctx.Err() == nil }) })
	if err := sd.Ready("serving"); err != nil {
		log.Warn("systemd notification failed", "err", err)
	}
	<-gctx.Done()
	sd.Stopping()
	err = g.Wait()
	log.Info("stratumd stopped", "drainer", fmt.Sprintf("%+v", d.drainer.Stats()))
	return err
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
