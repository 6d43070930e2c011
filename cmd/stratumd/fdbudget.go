package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/stratumd/stratumd/internal/chain/p2p"
	"github.com/stratumd/stratumd/internal/chain/rpcsource"
	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/proxyproto"
	"github.com/stratumd/stratumd/internal/rlimit"
)

// This file holds the descriptor budget: at start stratumd raises its soft
// RLIMIT_NOFILE to the hard limit, reserves descriptors for everything
// that is not a miner (the node, PostgreSQL, the spool, the metrics
// listener, the password worker, the process itself) and caps the miner
// connections of all listeners together at what is left. A miner past the
// cap is closed at accept (stratum.Config.MaxConns); without the cap the
// last free descriptor goes to a miner, and the next RPC call to the node,
// PostgreSQL connection or spool segment fails with EMFILE.

// Descriptors reserved per part. Each is the most the part can hold open at
// once, from its code or its library's defaults, as stated.
const (
	// fdProcess: stdin, stdout and stderr, the runtime's epoll descriptor
	// and its wake-up eventfd, the systemd notify socket, the share dumps
	// being written, /proc and certificate reads, os.Executable.
	fdProcess = 16
	// fdPerListener: the listening socket and one connection accepted
	// and being refused.
	fdPerListener = 2
	// fdPostgresExtra: beside the pool, the instance lock's connection
	// (store.LockInstance), the migration check's (closed before the pool
	// opens, counted to be safe) and a connection being replaced.
	fdPostgresExtra = 3
	// fdSpool: the directory lock, the segment being written, the one
	// being read, spool.id and its temporary file, a quarantine file, and
	// the directory opened for fsync.
	fdSpool = 8
	// fdRPCNode per --rpc-url: HTTP connections (at most
	// rpcsource.MaxConnsPerNode) and the btcd websocket.
	fdRPCNode = rpcsource.MaxConnsPerNode + 1
	// fdZMQ per --zmq-block: the ZMQ socket and a reconnecting one.
	fdZMQ = 2
	// fdLevelDB: goleveldb's default OpenFilesCacheCapacity (500), which
	// btcd's ffldb keeps, plus its LOCK, LOG, MANIFEST, CURRENT and journal.
	fdLevelDB = 500 + 10
	// fdBlockFiles: ffldb's maxOpenFiles (25) flat block files for reads
	// and the one being written.
	fdBlockFiles = 25 + 1
	// fdP2PExtra: DNS seed lookups and the peers file, beside one per peer
	// (p2p.DefaultMaxPeers) and per --p2p-listen.
	fdP2PExtra = 10
	// fdPasswordWorker: the worker's stdin, stdout and stderr pipes and its
	// pidfd.
	fdPasswordWorker = 4
	// fdMarginBase and fdMarginDivisor: the margin kept free beside the
	// parts, fdMarginBase plus 1 % of the limit, for what no part counts
	// (a library's transient file, a TLS handshake's reads).
	fdMarginBase    = 64
	fdMarginDivisor = 100

	// fewConns: a descriptor limit that leaves fewer miners than this is
	// logged as a warning (raise LimitNOFILE= or ulimit -Hn).
	fewConns = 1000
)

// fdPart is one part's share of the descriptor reserve.
type fdPart struct {
	name string
	n    int
}

// fdReserve returns the descriptors cfg's parts need, besides the miners;
// pgConns is the PostgreSQL pool's size.
func fdReserve(cfg *config, pgConns int) []fdPart {
	listeners := len(cfg.Listen) + len(cfg.TLSListen)
	perListener := fdPerListener
	if cfg.ProxyProtocol {
		// Connections whose PROXY header is being read are not sessions
		// yet: the cap does not count them.
		perListener += proxyproto.DefaultMaxPending
	}
	parts := []fdPart{
		{"process", fdProcess},
		{"listeners", listeners * perListener},
		{"postgres", pgConns + fdPostgresExtra},
		{"spool", fdSpool},
	}
	switch cfg.Node {
	case "rpc":
		parts = append(parts, fdPart{"node", len(cfg.RPCURL)*fdRPCNode + len(cfg.ZMQBlock)*fdZMQ})
	default: // embedded
		peers := p2p.DefaultMaxPeers + len(cfg.P2PListen) + fdP2PExtra
		parts = append(parts, fdPart{"node", fdLevelDB + fdBlockFiles + peers})
	}
	if cfg.MetricsListen != "" {
		parts = append(parts, fdPart{"metrics", 1 + opsMaxConns})
	}
	if cfg.PasswordNice != 0 && (cfg.Auth == "password" || cfg.AdminPassword != "") {
		parts = append(parts, fdPart{"password-worker", fdPasswordWorker})
	}
	return parts
}

// connBudget is the outcome of planning the descriptors.
type connBudget struct {
	limit, hard uint64 // the soft limit after the raise, and the hard limit
	reserve     []fdPart
	margin      int
	// maxConns is the cap on miner connections; 0 means none (the limit
	// could not be read).
	maxConns int
	// clamped reports that --max-conns asked for more than the limit allows.
	clamped bool
}

// reserved is the sum of the parts and the margin.
func (b connBudget) reserved() int {
	n := b.margin
	for _, p := range b.reserve {
		n += p.n
	}
	return n
}

// planConns computes the cap on miner connections for the descriptor
// limit: the limit less the reserve and the margin, or maxConns (the
// --max-conns setting, 0: unset) when that is lower. It fails with
// cliconf.ErrConfig when the limit leaves no room for a single miner.
func planConns(limit, hard uint64, reserve []fdPart, maxConns int) (connBudget, error) {
	b := connBudget{limit: limit, hard: hard, reserve: reserve, margin: fdMarginBase + int(limit/fdMarginDivisor)}
	room := int64(limit) - int64(b.reserved())
	if room < 1 {
		return b, fmt.Errorf("%w: the descriptor limit (RLIMIT_NOFILE %d, hard %d) leaves no room for miners: "+
			"the node, PostgreSQL, the spool and the rest need %d (%s); raise LimitNOFILE= or ulimit -n",
			cliconf.ErrConfig, limit, hard, b.reserved(), b.describe())
	}
	b.maxConns = int(room)
	if maxConns > 0 {
		if maxConns > b.maxConns {
			b.clamped = true
		} else {
			b.maxConns = maxConns
		}
	}
	return b, nil
}

// describe lists the reserve as "name n, ...".
func (b connBudget) describe() string {
	var parts []string
	for _, p := range b.reserve {
		parts = append(parts, fmt.Sprintf("%s %d", p.name, p.n))
	}
	parts = append(parts, fmt.Sprintf("margin %d", b.margin))
	return strings.Join(parts, ", ")
}

// fdLimit is the descriptor limit after raiseNoFile; known is false
// where it could not be read (no RLIMIT_NOFILE).
type fdLimit struct {
	soft, hard uint64
	known      bool
}

// raiseNoFile raises the soft descriptor limit to the hard one, first
// thing at start, before the node, PostgreSQL or a listener opens a file.
func raiseNoFile(log *slog.Logger) fdLimit {
	soft, hard, err := rlimit.RaiseNoFile(^uint64(0))
	if err != nil && soft == 0 {
		log.Warn("descriptor limit unknown; only --max-conns caps the miner connections", "err", err)
		return fdLimit{}
	}
	if err != nil {
		log.Warn("could not raise the descriptor limit to the hard limit", "err", err, "soft", soft, "hard", hard)
	}
	return fdLimit{soft: soft, hard: hard, known: true}
}

// budgetConns plans the miner connections for lim (planConns) and logs
// the outcome; pgConns is the PostgreSQL pool's size. Where the limit is
// unknown only --max-conns caps the miners.
func budgetConns(cfg *config, lim fdLimit, pgConns int, log *slog.Logger) (connBudget, error) {
	if !lim.known {
		return connBudget{maxConns: cfg.MaxConns}, nil
	}
	b, err := planConns(lim.soft, lim.hard, fdReserve(cfg, pgConns), cfg.MaxConns)
	if err != nil {
		return b, err
	}
	if b.clamped {
		log.Warn("--max-conns is more than the descriptor limit allows; capping the miner connections lower",
			"max_conns", cfg.MaxConns, "using", b.maxConns, "limit", b.limit)
	}
	lvl := slog.LevelInfo
	if b.maxConns < fewConns && !(cfg.MaxConns > 0 && !b.clamped) {
		lvl = slog.LevelWarn // the limit, not the operator, keeps the miners few
	}
	log.Log(context.Background(), lvl, "descriptor budget", "limit", b.limit, "hard", b.hard, "max_conns", b.maxConns,
		"reserved", b.reserved(), "reserve", b.describe())
	return b, nil
}
