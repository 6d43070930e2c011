package main

import (
	"context"
	"fmt"
	"net"

	"golang.org/x/sync/errgroup"

	"github.com/stratumd/stratumd/internal/chain/embedded"
	"github.com/stratumd/stratumd/internal/chain/p2p"
	"github.com/stratumd/stratumd/internal/chain/rpcsource"
	"github.com/stratumd/stratumd/internal/httpapi"
	"github.com/stratumd/stratumd/internal/stratum"
)

// opsHTTP is the operations HTTP part on --metrics-listen: Prometheus
// metrics, the JSON API and the web page (package httpapi).
type opsHTTP struct {
	tracker *httpapi.Tracker
	l       net.Listener
}

// opsObserver returns what the stratum server tells of accepted shares:
// the hashrate tracker when --metrics-listen is set, otherwise nil.
func (d *daemon) opsObserver() stratum.ShareObserver {
	if d.cfg.MetricsListen == "" {
		return nil
	}
	d.ops.tracker = httpapi.NewTracker(httpapi.TrackerConfig{})
	return d.ops.tracker
}

// listenOps opens the --metrics-listen listener; nothing when it is empty.
func (d *daemon) listenOps() error {
	if d.cfg.MetricsListen == "" {
		return nil
	}
	l, err := net.Listen("tcp", d.cfg.MetricsListen)
	if err != nil {
		return fmt.Errorf("%w: --metrics-listen %s: %w", errStartup, d.cfg.MetricsListen, err)
	}
	d.ops.l = l
	return nil
}

// serveOps serves the operations HTTP endpoints until ctx ends. A failure
// is logged and leaves the rest of the daemon running: mining does not stop
// for want of metrics.
func (d *daemon) serveOps(ctx context.Context) error {
	if d.ops.l == nil {
		return nil
	}
	srv, err := httpapi.New(httpapi.Config{
		Stratum: d.server, Drainer: d.drainer, Resubmitter: d.resubmitter, Store: d.store, Tracker: d.ops.tracker,
		Rejects: d.rejects,
		Node:    d.nodeHealth, Version: version(), Logger: d.log.With("part", "http"),
	})
	if err != nil {
		d.ops.l.Close()
		return err
	}
	d.log.Info("metrics, API and web page listening", "addr", d.ops.l.Addr().String())
	var g errgroup.Group
	g.Go(func() error { return d.ops.tracker.Run(ctx) })
	g.Go(func() error {
		if err := srv.Serve(ctx, d.ops.l); err != nil {
			d.log.Error("metrics HTTP server failed; mining continues without it", "err", err)
		}
		return nil
	})
	return g.Wait()
}

// nodeHealth reports the chain source's state for /metrics.
func (d *daemon) nodeHealth() httpapi.NodeHealth {
	switch src := d.source.(type) {
	case *p2p.Node:
		st := src.Stats()
		peers := st.Peers
		return httpapi.NodeHealth{Kind: "embedded", Height: src.BestHeight(), Up: src.IsCurrent(), Peers: &peers,
			Sync: &httpapi.SyncState{Synced: st.Synced, BestPeerHeight: st.BestPeerHeight, Progress: st.Progress,
				BlocksPerSecond: st.BlocksPerSecond}}
	case *embedded.Node:
		return httpapi.NodeHealth{Kind: "embedded", Height: src.BestHeight(), Up: src.IsCurrent()}
	case *rpcsource.Source:
		st := src.Stats()
		nh := httpapi.NodeHealth{Kind: "rpc", Outages: st.Outages}
		for _, n := range st.Nodes {
			nh.Nodes = append(nh.Nodes, httpapi.NodeState{Name: n.Name, Healthy: n.Healthy, Height: n.Height, Outages: n.Outages})
			if n.Healthy {
				nh.Up = true
				nh.Height = max(nh.Height, n.Height)
			}
		}
		return nh
	}
	return httpapi.NodeHealth{Kind: fmt.Sprintf("%T", d.source)}
}
