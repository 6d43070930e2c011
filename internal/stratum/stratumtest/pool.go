package stratumtest

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain/chaintest"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/stratum"
)

// Test defaults of a Pool.
const (
	// DefaultDifficulty is the share difficulty when Config.Limits is zero:
	// about 65,536 hashes a share, a few milliseconds of one core.
	DefaultDifficulty = 1.0 / 65536
	// DefaultJobInterval is the least time between two jobs on one tip, so
	// that a test's mempool change reaches the miners at once.
	DefaultJobInterval = time.Millisecond
)

// Config configures a Pool. The zero value serves regtest templates at
// regtest's easiest bits with the difficulty pinned at DefaultDifficulty.
type Config struct {
	// Bits is the compact network target of the templates and of the
	// blocks the source accepts; chaintest.DefaultBits (about every second
	// hash is a block) when zero.
	Bits uint32
	// Mempool is put in the source's mempool (without fees) before the
	// server starts, so that its first job already carries it.
	Mempool []*wire.MsgTx
	// Limits are the server's difficulty and ban settings. When zero, the
	// difficulty is pinned: MinDiff = MaxDiff = StartDiff =
	// DefaultDifficulty. Otherwise they are used as given (zero fields
	// take stratum's defaults).
	Limits stratum.Limits
	// Now is the clock of the server and of the source's templates;
	// time.Now when nil.
	Now func() time.Time
	// Logger receives the server's logs; none when nil.
	Logger *slog.Logger
	// Configure, when set, has the last word on the server's Config (e.g.
	// VersionMask, Extranonce2Size, JobInterval, ShareDir, Auth).
	Configure func(*stratum.Config)
}

// Pool is a stratum.Server serving one loopback listener, with its job
// manager running, until Stop. Its methods are safe for concurrent use.
type Pool struct {
	// Addr is the listener's host:port.
	Addr string
	// Server is the running server (Stats, SetLimits, ...).
	Server *stratum.Server
	// Source is the server's chain: Advance for a new tip, AddTx for a
	// mempool change, Submitted for the blocks the server handed over.
	Source *chaintest.Source

	shares *shareLog
	blocks *blockLog
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Start builds the server from cfg and starts Serve and Run; it fails t
// when it cannot. Stop runs at t's cleanup.
func Start(t testing.TB, cfg Config) *Pool {
	t.Helper()
	src := chaintest.New(&chaincfg.RegressionNetParams)
	src.Now = cfg.Now
	if cfg.Bits != 0 {
		src.SetBits(cfg.Bits)
	}
	for _, tx := range cfg.Mempool {
		src.AddTx(tx)
	}
	// The first job reads the whole mempool; the update the additions
	// left pending would only make a second, identical job.
	select {
	case <-src.Updates():
	default:
	}

	limits := cfg.Limits
	if limits == (stratum.Limits{}) {
		limits = stratum.Limits{MinDiff: DefaultDifficulty, MaxDiff: DefaultDifficulty, StartDiff: DefaultDifficulty}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	shares := new(shareLog)
	blocks := new(blockLog)
	scfg := stratum.Config{
		Source:       src,
		Network:      &chaincfg.RegressionNetParams,
		Users:        newUsers(),
		Shares:       shares,
		Blocks:       blocks,
		PayoutScript: payoutScript(),
		Auth:         stratum.AuthOpen,
		Limits:       limits,
		JobInterval:  DefaultJobInterval,
		Logger:       logger,
		Now:          cfg.Now,
	}
	if cfg.Configure != nil {
		cfg.Configure(&scfg)
	}
	srv, err := stratum.New(scfg)
	if err != nil {
		src.Close()
		t.Fatalf("stratumtest: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		src.Close()
		t.Fatalf("stratumtest: listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{Addr: l.Addr().String(), Server: srv, Source: src, shares: shares, blocks: blocks, cancel: cancel}
	p.wg.Go(func() {
		if err := srv.Serve(ctx, l); err != nil {
			t.Errorf("stratumtest: serve: %v", err)
		}
	})
	p.wg.Go(func() {
		if err := srv.Run(ctx); err != nil {
			t.Errorf("stratumtest: run: %v", err)
		}
	})
	t.Cleanup(p.Stop)
	return p
}

// Stop shuts the server down as a graceful shutdown does: every session
// gets client.reconnect with empty params and is closed, the listener is
// closed, and Stop returns once Serve and Run (block recordings included)
// have returned. Then the source is closed. It is idempotent.
func (p *Pool) Stop() {
	p.once.Do(func() {
		p.cancel()
		p.wg.Wait()
		p.Source.Close()
	})
}

// Shares returns the shares the server recorded, in sequence order (the
// share with sequence number n is at index n-1).
func (p *Pool) Shares() []store.Share {
	return p.shares.list()
}

// Blocks returns the blocks rows of the pool's found blocks, in order: the
// row of every block-solving share as the drainer stores it with its share
// (store.Share.BlockRow), then those the server inserted itself because
// the share sink refused the share.
func (p *Pool) Blocks() []store.Block {
	var out []store.Block
	for i, s := range p.shares.list() {
		if s.Block != nil {
			out = append(out, s.BlockRow(uint64(i+1)))
		}
	}
	p.blocks.mu.Lock()
	defer p.blocks.mu.Unlock()
	return append(out, p.blocks.rows...)
}

// Address returns a regtest P2WPKH address whose 20-byte program is seed
// repeated: a user name the Pool's open authorization accepts, a different
// one for each seed.
func Address(seed byte) string {
	var program [20]byte
	for i := range program {
		program[i] = seed
	}
	a, err := btcutil.NewAddressWitnessPubKeyHash(program[:], &chaincfg.RegressionNetParams)
	if err != nil {
		panic(err) // cannot happen: the program is 20 bytes
	}
	return a.EncodeAddress()
}

// payoutScript is the script the coinbase pays: Address(0x42)'s, a
// version-0 witness program of 20 bytes (OP_0, push 20, the program).
func payoutScript() []byte {
	s := []byte{0x00, 0x14}
	for range 20 {
		s = append(s, 0x42)
	}
	return s
}
