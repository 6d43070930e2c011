package httpapi

import (
	"bufio"
	"context"
	"net/http"

	"github.com/stratumd/stratumd/internal/store"
)

// handleMetrics writes every metric in the Prometheus text format. The
// block counts come from PostgreSQL; when the query fails the other
// metrics are still written and stratumd_database_up is 0.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	counts, dbErr := s.cfg.Store.BlockCounts(ctx)
	if dbErr != nil {
		s.log.Warn("metrics: block counts", "err", dbErr)
	}

	w.Header().Set("Content-Type", ContentTypeMetrics)
	bw := bufio.NewWriterSize(w, 16<<10)
	p := &promWriter{w: bw}
	now := s.cfg.Now()
	st := s.cfg.Stratum.Stats()

	p.family("stratumd_build_info", typeGauge, "Always 1; the version label says which build runs.")
	p.sample("stratumd_build_info", 1, "version", s.cfg.Version)

	// Connections and miners.
	p.single("stratumd_connections", typeGauge, "Open miner connections.", float64(st.Connections))
	p.single("stratumd_connections_accepted_total", typeCounter, "Miner connections accepted and given a session.", float64(st.ConnectionsTotal))
	p.single("stratumd_connections_refused_total", typeCounter, "Miner connections closed at accept (banned address, per-IP cap or per-IP rate, server full).", float64(st.Refused))
	p.single("stratumd_connections_refused_rate_total", typeCounter, "Of the refused connections, those over the per-IP connection rate.", float64(st.RefusedRate))
	p.single("stratumd_connections_refused_full_total", typeCounter, "Of the refused connections, those refused because stratumd_connections_max were open (descriptor budget or --max-conns).", float64(st.RefusedFull))
	p.single("stratumd_connections_max", typeGauge, "Most miner connections open at once, all listeners together: the descriptor limit less the reserve, or --max-conns (0: no cap).", float64(st.MaxConns))
	p.single("stratumd_addresses_evicted_total", typeCounter, "Address records forgotten before they were idle because the admission table was full (a flood from many addresses).", float64(st.AddressesEvicted))
	p.single("stratumd_miners_subscribed", typeGauge, "Sessions subscribed now.", float64(st.Subscribed))
	p.single("stratumd_miners_authorized", typeGauge, "Sessions with at least one authorized worker now.", float64(st.Authorized))
	p.single("stratumd_auth_failures_total", typeCounter, "mining.authorize calls refused after a check (unknown user, wrong password, invalid name or not an address).", float64(st.AuthFailures))
	p.single("stratumd_auth_refused_total", typeCounter, "mining.authorize calls refused without a password check (same wrong password again, or too many failed checks from the address).", float64(st.AuthRefused))
	p.single("stratumd_bans_total", typeCounter, "Addresses banned.", float64(st.Bans))
	p.single("stratumd_malformed_lines_total", typeCounter, "Malformed lines from miners (each closed its connection).", float64(st.Malformed))
	p.single("stratumd_session_panics_total", typeCounter, "Sessions dropped by a recovered panic.", float64(st.Panics))
	p.single("stratumd_write_timeouts_total", typeCounter, "Sessions closed because a write to the miner timed out.", float64(st.WriteTimeouts))
	p.byLabel("stratumd_sessions_closed_total", "Sessions ended, by the one reason each ended for.", "reason", st.SessionsClosed)

	// Shares.
	p.single("stratumd_shares_accepted_total", typeCounter, "Shares accepted (durable and acknowledged).", float64(st.SharesAccepted))
	p.byLabel("stratumd_shares_rejected_total", "Submits rejected, by reason.", "reason", st.SharesRejected)
	p.single("stratumd_shares_version_bits_unnegotiated_total", typeCounter, "Accepted shares whose version bits were rolled without mining.configure (inside the pool's mask).", float64(st.VersionBitsUnnegotiated))
	p.single("stratumd_miner_replies_total", typeCounter, "Replies miners sent to the pool's requests (client.get_version, mining.ping).", float64(st.Responses))
	p.single("stratumd_reconnects_total", typeCounter, "Sessions sent client.reconnect on demand (mining.reconnect_miners, stratumd reconnect).", float64(st.Reconnects))
	if s.cfg.Rejects != nil {
		// Per-worker counts are in the API and SQL (worker_rejects), never
		// labels here: worker names are unbounded.
		rs := s.cfg.Rejects.Stats()
		p.single("stratumd_worker_rejects_pending", typeGauge, "Rejected submits counted per worker in memory, not yet added to worker_rejects.", float64(rs.Pending))
		p.single("stratumd_worker_rejects_flushed_total", typeCounter, "Rejected submits added to worker_rejects.", float64(rs.Flushed))
		p.single("stratumd_worker_rejects_dropped_total", typeCounter, "Rejected submits never to be counted per worker (memory bound reached while the database was down, or refused values).", float64(rs.Dropped))
		p.single("stratumd_worker_rejects_flush_failures_total", typeCounter, "Flushes of per-worker reject counts that failed.", float64(rs.FlushFailures))
	}
	diffTotal, _ := s.cfg.Tracker.Totals()
	p.single("stratumd_share_difficulty_total", typeCounter,
		"Sum of the assigned difficulty of accepted shares; rate() × 2^32 is the hashrate.", diffTotal)

	// Hashrate.
	pool, users, workers := s.cfg.Tracker.Pool()
	window := s.cfg.Tracker.Window().Seconds()
	p.single("stratumd_hashrate_window_seconds", typeGauge, "Window the hashrate estimates are made over.", window)
	p.single("stratumd_hashrate", typeGauge, "Pool hashrate estimate in hashes per second (accepted share difficulty over the window).", pool.Hashrate)
	p.single("stratumd_active_users", typeGauge, "Users with an accepted share within the window.", float64(users))
	p.single("stratumd_active_workers", typeGauge, "Workers with an accepted share within the window.", float64(workers))
	if s.cfg.MaxUserSeries > 0 {
		p.family("stratumd_user_hashrate", typeGauge, "Per-user hashrate estimate in hashes per second (the highest ones, at most a configured number of users).")
		for _, u := range s.cfg.Tracker.Users(s.cfg.MaxUserSeries) {
			p.sample("stratumd_user_hashrate", u.Rate.Hashrate, "user", u.Name)
		}
	}

	// Blocks.
	p.single("stratumd_blocks_found_total", typeCounter, "Shares of this process that met the network target.", float64(st.BlocksFound))
	p.single("stratumd_blocks_submit_failed_total", typeCounter, "Of those, blocks the node refused or that could not be handed over.", float64(st.BlocksRejected))
	if s.cfg.Resubmitter != nil {
		rs := s.cfg.Resubmitter.Stats()
		p.single("stratumd_found_blocks_pending", typeGauge, "Found blocks no node is known to have in its best chain yet (followed by the resubmitter).", float64(rs.Pending))
		p.single("stratumd_block_resubmissions_total", typeCounter, "Found blocks handed to the node(s) again.", float64(rs.Resubmitted))
		p.single("stratumd_block_resubmissions_failed_total", typeCounter, "Of those, resubmissions no node answered.", float64(rs.Failed))
		p.family("stratumd_found_blocks_settled_total", typeCounter, "Found blocks the resubmitter stopped following, by outcome: in a node's best chain (confirmed), given up (orphaned: the chain moved 6 blocks past), rejected by a node.")
		p.sample("stratumd_found_blocks_settled_total", float64(rs.OnChain), "outcome", "confirmed")
		p.sample("stratumd_found_blocks_settled_total", float64(rs.Orphaned), "outcome", "orphaned")
		p.sample("stratumd_found_blocks_settled_total", float64(rs.Rejected), "outcome", "rejected")
	}
	p.single("stratumd_database_up", typeGauge, "1 when the last database query for these metrics succeeded.", boolValue(dbErr == nil))
	if dbErr == nil {
		p.family("stratumd_blocks", typeGauge, "The pool's blocks in the database, by status (orphaned: no longer in the best chain).")
		for _, status := range []store.BlockStatus{store.BlockSubmitted, store.BlockRejected, store.BlockConfirmed,
			store.BlockOrphaned, store.BlockMatured, store.BlockCredited} {
			p.sample("stratumd_blocks", float64(counts[status]), "status", string(status))
		}
	}

	// Jobs and templates.
	p.single("stratumd_jobs_total", typeCounter, "Jobs built.", float64(st.Jobs))
	p.single("stratumd_template_errors_total", typeCounter, "Failed attempts to get a template.", float64(st.TemplateErrors))
	if !st.LastJob.IsZero() {
		p.single("stratumd_template_age_seconds", typeGauge, "Time since the current job was built.", now.Sub(st.LastJob).Seconds())
		p.single("stratumd_job_height", typeGauge, "Height of the block the current job builds.", float64(st.JobHeight))
		p.single("stratumd_network_difficulty", typeGauge, "Network difficulty of the current job.", st.NetworkDifficulty)
	}
	p.single("stratumd_fanout_last_seconds", typeGauge, "Time from the first to the last write of the last job's notify fan-out.", st.LastFanout.Seconds())
	p.single("stratumd_fanout_max_seconds", typeGauge, "Longest notify fan-out since start.", st.MaxFanout.Seconds())

	// Spool and database writes.
	if s.cfg.Drainer != nil {
		ds := s.cfg.Drainer.Stats()
		p.single("stratumd_spool_backlog", typeGauge, "Durable spooled shares not yet stored in PostgreSQL.", float64(ds.Backlog))
		p.single("stratumd_spool_stored_total", typeCounter, "Shares copied from the spool into PostgreSQL.", float64(ds.Stored))
		p.single("stratumd_spool_quarantined_total", typeCounter, "Spool records set aside because PostgreSQL refused them.", float64(ds.Quarantined))
		p.single("stratumd_db_write_failures_total", typeCounter, "Failed attempts to store a batch of shares.", float64(ds.Failures))
		writeHistogram(p, "stratumd_db_write_seconds", "Time to store one batch of shares (COPY and commit).", ds.StoreLatency)
	}

	// Chain source.
	if s.cfg.Node != nil {
		nh := s.cfg.Node()
		p.family("stratumd_node_up", typeGauge, "1 when the chain source can serve templates (embedded: current; rpc: a node is healthy).")
		p.sample("stratumd_node_up", boolValue(nh.Up), "source", nh.Kind)
		p.single("stratumd_node_height", typeGauge, "Best tip height known to the chain source.", float64(nh.Height))
		if nh.Peers != nil {
			p.single("stratumd_node_peers", typeGauge, "Peers of the embedded node (handshake completed).", float64(*nh.Peers))
		}
		if sy := nh.Sync; sy != nil {
			p.single("stratumd_node_synced", typeGauge, "1 when the embedded node is synced (miners are served).", boolValue(sy.Synced))
			p.single("stratumd_node_sync_progress", typeGauge, "Embedded node's height as a fraction of its best peer's.", sy.Progress)
			p.single("stratumd_node_best_peer_height", typeGauge, "Highest block height an outbound peer claims.", float64(sy.BestPeerHeight))
			p.single("stratumd_node_sync_blocks_per_second", typeGauge, "Blocks connected per second during sync.", sy.BlocksPerSecond)
		}
		if nh.Kind == "rpc" {
			p.single("stratumd_node_outages_total", typeCounter, "RPC nodes going from healthy to down.", float64(nh.Outages))
			p.family("stratumd_rpc_node_up", typeGauge, "1 while the RPC node is connected and answering.")
			for _, n := range nh.Nodes {
				p.sample("stratumd_rpc_node_up", boolValue(n.Healthy), "node", n.Name)
			}
			p.family("stratumd_rpc_node_height", typeGauge, "The RPC node's best tip height.")
			for _, n := range nh.Nodes {
				p.sample("stratumd_rpc_node_height", float64(n.Height), "node", n.Name)
			}
			p.family("stratumd_rpc_node_outages_total", typeCounter, "The RPC node's outages.")
			for _, n := range nh.Nodes {
				p.sample("stratumd_rpc_node_outages_total", float64(n.Outages), "node", n.Name)
			}
			p.family("stratumd_rpc_zmq_gaps_total", typeCounter, "Breaks in the RPC node's ZMQ hashblock sequence (notifications lost or the node restarted); each made stratumd fetch a fresh template.")
			for _, n := range nh.Nodes {
				p.sample("stratumd_rpc_zmq_gaps_total", float64(n.ZMQGaps), "node", n.Name)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		s.log.Debug("metrics: write", "err", err)
	}
}

// writeHistogram writes h as a histogram in seconds: cumulative buckets,
// +Inf, sum and count.
func writeHistogram(p *promWriter, name, help string, h store.LatencyHistogram) {
	p.family(name, typeHistogram, help)
	var cum uint64
	for i, b := range h.Bounds {
		if i < len(h.Counts) {
			cum += h.Counts[i]
		}
		p.sample(name+"_bucket", float64(cum), "le", formatValue(b.Seconds()))
	}
	p.sample(name+"_bucket", float64(h.Count), "le", "+Inf")
	p.sample(name+"_sum", h.Sum.Seconds())
	p.sample(name+"_count", float64(h.Count))
}
