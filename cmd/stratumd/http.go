package main

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"golang.org/x/net/netutil"
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

// opsMaxConns bounds the open connections of the operations listener
// (netutil.LimitListener: more wait in the kernel's queue), so that scrapers
// and browsers cannot take the descriptors of the descriptor budget's
// reserve (fdbudget.go).
const opsMaxConns = 32

// listenOps opens the --metrics-listen listener; nothing when it is empty.
func (d *daemon) listenOps() error {
	if d.cfg.MetricsListen == "" {
		return nil
	}
	l, err := net.Listen("tcp", d.cfg.MetricsListen)
	if err != nil {
		return fmt.Errorf("%w: --metrics-listen %s: %w", errStartup, d.cfg.MetricsListen, err)
	}
	d.ops.l = netutil.LimitListener(l, opsMaxConns)
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
	base := httpURL(d.ops.l.Addr())
	d.log.Info("web page, JSON API and metrics listening", "web", base+"/", "api", base+"/api/pool",
		"metrics", base+"/metrics")
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
			nh.Nodes = append(nh.Nodes, httpapi.NodeState{Name: n.Name, Healthy: n.Healthy, Height: n.Height, Outages: n.Outages,
				ZMQGaps: n.ZMQGaps})
			if n.Healthy {
				nh.Up = true
				nh.Height = max(nh.Height, n.Height)
			}
		}
		return nh
	}
	return httpapi.NodeHealth{Kind: fmt.Sprintf("%T", d.source)}
}

// httpURL is the http:// base URL of a listener's address; an unspecified
// IP (0.0.0.0, ::) is written as the loopback address, where it can be
// opened from the same machine.
func httpURL(a net.Addr) string {
	return "http://" + reachable(a)
}

// stratumURLs are the stratum+tcp:// and stratum+ssl:// URLs of the
// listeners openListeners opened: the --listen ones first, then the
// --tls-listen ones.
func (d *daemon) stratumURLs(ls []boundListener) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		scheme := "stratum+tcp://"
		if i >= len(d.cfg.Listen) {
			scheme = "stratum+ssl://"
		}
		out[i] = scheme + reachable(l.Addr())
	}
	return out
}

// reachable is a listener's host:port with an unspecified IP replaced by
// the loopback address.
func reachable(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return a.String()
	}
	lo := net.IPv4(127, 0, 0, 1)
	if ta.IP.To4() == nil {
		lo = net.IPv6loopback
	}
	return net.JoinHostPort(lo.String(), strconv.Itoa(ta.Port))
}
