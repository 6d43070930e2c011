package embedded

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/mempool"
	"github.com/btcsuite/btcd/wire"
)

// Defaults applied by New to zero Config fields. The mempool ones are btcd's
// own defaults.
const (
	// DefaultMaxOrphanTxs is the default of Config.MaxOrphanTxs.
	DefaultMaxOrphanTxs = 100
	// DefaultMaxOrphanTxSize is the default of Config.MaxOrphanTxSize, in
	// bytes.
	DefaultMaxOrphanTxSize = 100000
	// DefaultMinRelayTxFee is the default of Config.MinRelayTxFee, in
	// satoshis per 1000 bytes.
	DefaultMinRelayTxFee = mempool.DefaultMinRelayTxFee
	// DefaultFreeTxRelayLimit is the default of Config.FreeTxRelayLimit,
	// in thousands of bytes per minute.
	DefaultFreeTxRelayLimit = 15.0
	// DefaultMaxTxVersion is the default of Config.MaxTxVersion.
	DefaultMaxTxVersion = 2
	// DefaultBlockMaxWeight is the default of Config.BlockMaxWeight: the
	// consensus limit less 4,000 weight units kept for the pool's coinbase,
	// which is larger than the one btcd's generator reckons with.
	DefaultBlockMaxWeight = blockchain.MaxBlockWeight - 4000
	// DefaultSigCacheMaxSize is the default of Config.SigCacheMaxSize.
	DefaultSigCacheMaxSize = 100000
	// DefaultUtxoCacheMaxSizeMiB is the default of
	// Config.UtxoCacheMaxSizeMiB on mainnet, testnet3 and signet. btcd
	// allocates the cache up front.
	DefaultUtxoCacheMaxSizeMiB = 250
	// DefaultDevUtxoCacheMaxSizeMiB is the default of
	// Config.UtxoCacheMaxSizeMiB on regtest and simnet.
	DefaultDevUtxoCacheMaxSizeMiB = 16

	// coinbaseSigOpReserve is the sigop cost kept free for the pool's
	// coinbase (btcd's generator counts its own anyone-can-spend coinbase,
	// which has none); Bitcoin Core reserves the same.
	coinbaseSigOpReserve = 400
	// minBlockMaxWeight is the smallest BlockMaxWeight accepted.
	minBlockMaxWeight = 4000
)

// Config configures a Node. Zero numeric fields take the documented
// defaults; the bool fields' zero values are btcd's defaults.
type Config struct {
	// Network is the chain to run (see chain.NetworkParams). Required.
	Network *chaincfg.Params
	// DataDir is the node's data directory, one per network (stratumd uses
	// ~/.stratumd/<network>); the block database lives in
	// DataDir/blocks and is created when missing. Required.
	DataDir string
	// Logger receives the node's logs; nothing is logged when nil.
	Logger *slog.Logger
	// Now is the clock, used for block timestamps, the "too far in the
	// future" check and IsCurrent; time.Now when nil.
	Now func() time.Time

	// BeforeValidate, when set, is called by SubmitBlock with the solved
	// block before the chain validates it: the block relay hook through
	// which a P2P layer broadcasts a found block first. It runs on the
	// submitting goroutine and must not block for long.
	BeforeValidate func(*btcutil.Block)

	// ProcessBlock, when set, processes SubmitBlock's blocks instead of
	// the chain's ProcessBlock, with the same results: the P2P layer sets
	// it so that found blocks are processed on netsync's goroutine, whose
	// notification handler is not safe against another goroutine's
	// ProcessBlock.
	ProcessBlock func(b *btcutil.Block, flags blockchain.BehaviorFlags) (isMain, isOrphan bool, err error)
	// Synced, when set, decides whether the node is current (IsCurrent,
	// and so whether Template refuses with chain.ErrNotSynced) instead of
	// the chain's own judgement, on every network: the P2P layer, which
	// knows the peers' heights, sets it.
	Synced func() bool

	// DisableMempoolMaintenance switches off the goroutine that keeps the
	// mempool in step with connected and disconnected blocks. Set it when
	// btcd's netsync runs on this node's chain and mempool: netsync
	// subscribes to the chain and does the same maintenance itself, inside
	// the chain's notification, and the two would undo each other's work on
	// a reorganization. The P2P layer then reports mempool changes through
	// NotifyMempoolChanged.
	DisableMempoolMaintenance bool

	// MaxOrphanTxs is the most orphan transactions the mempool keeps.
	MaxOrphanTxs int
	// MaxOrphanTxSize is the largest orphan transaction kept, in bytes.
	MaxOrphanTxSize int
	// MinRelayTxFee is the minimum fee rate, in satoshis per 1000 bytes,
	// for a transaction to count as paying a fee, for relay and for
	// inclusion in templates.
	MinRelayTxFee btcutil.Amount
	// FreeTxRelayLimit rate-limits free transactions, in thousands of bytes
	// per minute (for rate-limited submissions; SubmitTx is not).
	FreeTxRelayLimit float64
	// DisableRelayPriority refuses free or low-fee transactions that have
	// a high priority.
	DisableRelayPriority bool
	// AcceptNonStd accepts non-standard transactions into the mempool.
	AcceptNonStd bool
	// RejectReplacement refuses replace-by-fee replacements.
	RejectReplacement bool
	// MaxTxVersion is the highest transaction version accepted.
	MaxTxVersion int32

	// BlockMaxWeight is the largest block weight templates are built to,
	// at most blockchain.MaxBlockWeight - 4000.
	BlockMaxWeight uint32
	// BlockMinWeight fills templates with free transactions up to this
	// weight (0: free transactions are never mined).
	BlockMinWeight uint32
	// BlockPrioritySize is the room for high-priority, low-fee
	// transactions in templates (0: templates are ordered by fee rate
	// only, which is what a pool wants).
	BlockPrioritySize uint32

	// SigCacheMaxSize is the number of entries of the signature and hash
	// caches.
	SigCacheMaxSize uint
	// UtxoCacheMaxSizeMiB bounds the UTXO cache; btcd allocates it when
	// the chain is loaded.
	UtxoCacheMaxSizeMiB uint
	// DisableCheckpoints runs without the network's checkpoints.
	DisableCheckpoints bool
	// HeaderFirst moves templates onto a block from a peer as soon as its
	// header checks out, before the chain has validated it (see
	// Node.HeaderFirst, which the P2P layer calls).
	HeaderFirst bool
	// HeaderFirstTimeout bounds how long templates stay on a block the
	// chain has not connected (default DefaultHeaderFirstTimeout).
	HeaderFirstTimeout time.Duration
}

// isDevNetwork reports whether p is regtest or simnet, where the node mines
// on a chain that is not current and Generate is allowed.
func isDevNetwork(p *chaincfg.Params) bool {
	return p.Net == wire.TestNet || p.Net == wire.SimNet
}

// withDefaults validates c and returns it with defaults applied.
func (c Config) withDefaults() (Config, error) {
	if c.Network == nil {
		return c, fmt.Errorf("%w: no network", ErrInvalidConfig)
	}
	if c.DataDir == "" {
		return c, fmt.Errorf("%w: no data directory", ErrInvalidConfig)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HeaderFirstTimeout < 0 {
		return c, fmt.Errorf("%w: negative header-first timeout", ErrInvalidConfig)
	}
	if c.HeaderFirstTimeout == 0 {
		c.HeaderFirstTimeout = DefaultHeaderFirstTimeout
	}
	if c.MaxOrphanTxs < 0 || c.MaxOrphanTxSize < 0 || c.MinRelayTxFee < 0 ||
		c.FreeTxRelayLimit < 0 || c.MaxTxVersion < 0 {
		return c, fmt.Errorf("%w: negative mempool policy value", ErrInvalidConfig)
	}
	if c.MaxOrphanTxs == 0 {
		c.MaxOrphanTxs = DefaultMaxOrphanTxs
	}
	if c.MaxOrphanTxSize == 0 {
		c.MaxOrphanTxSize = DefaultMaxOrphanTxSize
	}
	if c.MinRelayTxFee == 0 {
		c.MinRelayTxFee = DefaultMinRelayTxFee
	}
	if c.FreeTxRelayLimit == 0 {
		c.FreeTxRelayLimit = DefaultFreeTxRelayLimit
	}
	if c.MaxTxVersion == 0 {
		c.MaxTxVersion = DefaultMaxTxVersion
	}
	if c.BlockMaxWeight == 0 {
		c.BlockMaxWeight = DefaultBlockMaxWeight
	}
	if c.BlockMaxWeight < minBlockMaxWeight || c.BlockMaxWeight > DefaultBlockMaxWeight {
		return c, fmt.Errorf("%w: block max weight %d not in %d..%d", ErrInvalidConfig,
			c.BlockMaxWeight, minBlockMaxWeight, DefaultBlockMaxWeight)
	}
	c.BlockMinWeight = min(c.BlockMinWeight, c.BlockMaxWeight)
	c.BlockPrioritySize = min(c.BlockPrioritySize, c.BlockMaxWeight)
	if c.SigCacheMaxSize == 0 {
		c.SigCacheMaxSize = DefaultSigCacheMaxSize
	}
	if c.UtxoCacheMaxSizeMiB == 0 {
		c.UtxoCacheMaxSizeMiB = DefaultUtxoCacheMaxSizeMiB
		if isDevNetwork(c.Network) {
			c.UtxoCacheMaxSizeMiB = DefaultDevUtxoCacheMaxSizeMiB
		}
	}
	return c, nil
}

// clockTimeSource is btcd's median time source (peer time offsets) on top
// of an injected clock.
type clockTimeSource struct {
	blockchain.MedianTimeSource
	now func() time.Time
}

// AdjustedTime returns the clock's time, truncated to the second, adjusted
// by the median offset of the peers' time samples.
func (c clockTimeSource) AdjustedTime() time.Time {
	return time.Unix(c.now().Unix(), 0).Add(c.Offset())
}
