package httpapi

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/stratum"
)

// Server defaults, used for zero fields of Config.
const (
	DefaultQueryTimeout    = 5 * time.Second
	DefaultShutdownTimeout = 5 * time.Second
	// DefaultMaxUserSeries bounds the per-user hashrate series of /metrics.
	DefaultMaxUserSeries = 1000
)

// Limits of the JSON API's list endpoints.
const (
	DefaultListLimit = 20
	MaxListLimit     = 200
)

// Sentinel errors.
var (
	// ErrConfig reports a Config that cannot work.
	ErrConfig = errors.New("httpapi: invalid config")
)

// StratumStats is what the API reads of the stratum server
// (*stratum.Server).
type StratumStats interface {
	Stats() stratum.Stats
}

// DrainerStats is what the API reads of the share drainer (*store.Drainer).
type DrainerStats interface {
	Stats() store.DrainerStats
}

// ResubmitterStats is what the API reads of the found-block resubmitter
// (*stratum.Resubmitter).
type ResubmitterStats interface {
	Stats() stratum.ResubmitterStats
}

// RejectStats is what the metrics read of the per-worker reject counter
// (*store.RejectCounter).
type RejectStats interface {
	Stats() store.RejectCounterStats
}

// Store is what the API queries in PostgreSQL (*store.Store).
type Store interface {
	BlockCounts(ctx context.Context) (map[store.BlockStatus]int64, error)
	Blocks(ctx context.Context, limit int, statuses ...store.BlockStatus) ([]store.Block, error)
	UserByName(ctx context.Context, name string) (store.User, error)
	WorkerStats(ctx context.Context, user string, since time.Time) ([]store.WorkerStat, error)
	WorkerDetails(ctx context.Context, user string) ([]store.WorkerDetail, store.Round, error)
	UserBalance(ctx context.Context, user string) (store.Balance, error)
	Payments(ctx context.Context, user string, limit int) ([]store.Payment, error)
}

// NodeHealth is the chain source's state as metrics report it.
type NodeHealth struct {
	// Kind is "embedded" or "rpc".
	Kind string
	// Height is the best tip's height as the source knows it.
	Height int32
	// Up says whether the source can serve templates: the embedded node
	// is current, or at least one RPC node is healthy.
	Up bool
	// Outages counts nodes going from healthy to down (RPC).
	Outages uint64
	// Peers is the embedded node's peer count; nil when it has no P2P
	// layer (or for RPC).
	Peers *int
	// Nodes are the RPC nodes, empty for the embedded node.
	Nodes []NodeState
	// Sync is the embedded node's initial sync state; nil without P2P.
	Sync *SyncState
}

// SyncState is the embedded node's sync progress.
type SyncState struct {
	Synced          bool
	BestPeerHeight  int32
	Progress        float64 // 0..1 of the best peer's height
	BlocksPerSecond float64
}

// NodeState is one RPC node's state.
type NodeState struct {
	Name    string
	Healthy bool
	Height  int32
	Outages uint64
	// ZMQGaps counts breaks in the node's ZMQ hashblock sequence.
	ZMQGaps uint64
}

// Config configures a Server. Stratum, Store and Tracker are required.
type Config struct {
	// Stratum is the stratum server whose counters are reported.
	Stratum StratumStats
	// Drainer, when set, reports the spool backlog and database writes.
	Drainer DrainerStats
	// Resubmitter, when set, reports the found blocks handed over again.
	Resubmitter ResubmitterStats
	// Rejects, when set, reports the per-worker reject counter.
	Rejects RejectStats
	// Store answers the block, user and payment queries.
	Store Store
	// Tracker estimates hashrates from accepted shares.
	Tracker *Tracker
	// Node, when set, reports the chain source's health.
	Node func() NodeHealth
	// Version is reported as stratumd_build_info{version}.
	Version string
	// QueryTimeout bounds every database query of a request (default 5 s).
	QueryTimeout time.Duration
	// ShutdownTimeout bounds the wait for requests in flight when Serve's
	// context ends (default 5 s).
	ShutdownTimeout time.Duration
	// MaxUserSeries bounds the per-user hashrate series of /metrics, the
	// highest hashrates first (default 1000; negative: none).
	MaxUserSeries int
	// Logger receives the server's log lines (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Server serves /metrics, the JSON API under /api/ and the web page at /.
// Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler
}

//go:embed web
var webFS embed.FS

// New checks cfg and returns a Server; it starts nothing.
func New(cfg Config) (*Server, error) {
	if cfg.Stratum == nil || cfg.Store == nil || cfg.Tracker == nil {
		return nil, fmt.Errorf("%w: stratum, store and tracker are required", ErrConfig)
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = DefaultQueryTimeout
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.MaxUserSeries == 0 {
		cfg.MaxUserSeries = DefaultMaxUserSeries
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	web, err := fs.Sub(webFS, "web")
	if err != nil {
		return nil, fmt.Errorf("httpapi: embedded web page: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", s.getOnly(s.handleMetrics))
	mux.HandleFunc("/api/pool", s.getOnly(s.handlePool))
	mux.HandleFunc("/api/pool/history", s.getOnly(s.handleHistory))
	mux.HandleFunc("/api/users/{name}", s.getOnly(s.handleUser))
	mux.HandleFunc("/api/blocks", s.getOnly(s.handleBlocks))
	mux.HandleFunc("/api/payments", s.getOnly(s.handlePayments))
	mux.HandleFunc("/api/", s.getOnly(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint")
	}))
	static := http.FileServerFS(web)
	mux.HandleFunc("/", s.getOnly(func(w http.ResponseWriter, r *http.Request) {
		// Everything the page needs is served from here: no other origin.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		w.Header().Set("X-Frame-Options", "DENY")
		static.ServeHTTP(w, r)
	}))
	s.handler = mux
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// getOnly answers methods other than GET and HEAD with 405.
func (s *Server) getOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		h(w, r)
	}
}

// Serve answers HTTP requests on l until ctx ends; then it stops accepting,
// waits up to ShutdownTimeout for requests in flight, and returns nil. It
// returns an error when l fails otherwise. Serve closes l.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			hs.Close()
		}
	}()
	err := hs.Serve(l)
	close(done)
	<-stopped
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("httpapi: serve on %v: %w", l.Addr(), err)
}
