package p2p

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Defaults applied to zero Config fields.
const (
	// DefaultMaxPeers is the default of Config.MaxPeers (btcd's).
	DefaultMaxPeers = 125
	// DefaultTargetOutbound is the default of Config.TargetOutbound.
	DefaultTargetOutbound = 8
	// DefaultBanThreshold is the default of Config.BanThreshold.
	DefaultBanThreshold = 100
	// DefaultBanDuration is the default of Config.BanDuration.
	DefaultBanDuration = 24 * time.Hour
	// DefaultProgressInterval is the default of Config.ProgressInterval.
	DefaultProgressInterval = 10 * time.Second
	// DefaultAnnounceTTL is the default of Config.AnnounceTTL.
	DefaultAnnounceTTL = 10 * time.Minute
	// DefaultTrickleInterval is the default of Config.TrickleInterval.
	DefaultTrickleInterval = time.Second
	// DefaultWriteTimeout is the default of Config.WriteTimeout.
	DefaultWriteTimeout = 2 * time.Minute
	// DefaultDialTimeout is the default of Config.DialTimeout.
	DefaultDialTimeout = 30 * time.Second
	// DefaultRetryInterval is the default of Config.RetryInterval.
	DefaultRetryInterval = 5 * time.Second
	// DefaultMessageRate is the default of Config.MessageRate.
	DefaultMessageRate = 100
	// DefaultMessageBurst is the default of Config.MessageBurst.
	DefaultMessageBurst = 1000
)

// Config configures the P2P layer of an embedded node. Every field maps to
// a stratumd flag (see the package documentation); zero numeric fields
// take the documented defaults.
type Config struct {
	// Connect lists host:port peers to connect to (--connect, repeatable).
	// When set, these are the only outbound peers: no DNS seeds, no
	// address manager, no other outbound connections. They are retried
	// forever.
	Connect []string
	// AddPeers lists host:port peers to keep connected (--addpeer,
	// repeatable) in addition to peers found through the network's DNS
	// seeds and the address manager. Ignored when Connect is set.
	AddPeers []string
	// Listen lists the addresses to accept inbound peers on
	// (--p2p-listen, repeatable); none by default.
	Listen []string
	// DisableDNSSeed skips the DNS seeds (regtest and simnet have none).
	DisableDNSSeed bool
	// DataDir is where the address manager keeps peers.json (stratumd
	// passes the node's data directory). Required unless Connect is set.
	DataDir string

	// MaxPeers bounds inbound plus outbound peers.
	MaxPeers int
	// TargetOutbound is the number of outbound peers kept from the
	// address manager (ignored with Connect).
	TargetOutbound int
	// BanThreshold is the ban score at which a peer is disconnected and
	// its address banned.
	BanThreshold uint32
	// BanDuration is how long a banned address stays banned.
	BanDuration time.Duration
	// MessageRate and MessageBurst bound the messages per second a peer
	// may send besides blocks, headers and transactions (a token bucket);
	// every message beyond adds one to its transient ban score.
	MessageRate  float64
	MessageBurst float64

	// ProgressInterval is how often sync progress is logged while the
	// node is not synced.
	ProgressInterval time.Duration
	// AnnounceTTL is how long a found block stays in the announced map,
	// served to the peers' getdata whatever became of it locally.
	AnnounceTTL time.Duration
	// TrickleInterval batches transaction announcements to each peer.
	TrickleInterval time.Duration
	// WriteTimeout bounds every write to a peer: a peer that stops
	// reading is dropped and its queue freed.
	WriteTimeout time.Duration
	// DialTimeout bounds outbound connection attempts.
	DialTimeout time.Duration
	// RetryInterval is the first wait before a failed persistent peer is
	// dialled again (it backs off up to 5 minutes).
	RetryInterval time.Duration

	// UserAgentVersion is the version in our user agent
	// (/stratumd:VERSION/); "0.0.0" when empty.
	UserAgentVersion string
	// Logger receives the layer's logs; nothing is logged when nil.
	Logger *slog.Logger
	// Now is the clock for bans, rates and the announced map; time.Now
	// when nil.
	Now func() time.Time
	// Dial opens outbound connections; a net.Dialer with DialTimeout when
	// nil.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Lookup resolves DNS seeds and host names; net.LookupIP when nil.
	Lookup func(host string) ([]net.IP, error)
}

// withDefaults validates c and returns it with defaults applied.
func (c Config) withDefaults() (Config, error) {
	if len(c.Connect) == 0 && c.DataDir == "" {
		return c, fmt.Errorf("%w: no data directory for the address manager", ErrInvalidConfig)
	}
	for _, list := range [][]string{c.Connect, c.AddPeers, c.Listen} {
		for _, a := range list {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return c, fmt.Errorf("%w: address %q: %w", ErrInvalidConfig, a, err)
			}
		}
	}
	if c.MaxPeers < 0 || c.TargetOutbound < 0 || c.BanDuration < 0 || c.MessageRate < 0 ||
		c.MessageBurst < 0 || c.ProgressInterval < 0 || c.AnnounceTTL < 0 ||
		c.TrickleInterval < 0 || c.WriteTimeout < 0 || c.DialTimeout < 0 || c.RetryInterval < 0 {
		return c, fmt.Errorf("%w: negative limit", ErrInvalidConfig)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxPeers, DefaultMaxPeers)
	def(&c.TargetOutbound, DefaultTargetOutbound)
	if c.TargetOutbound > c.MaxPeers {
		return c, fmt.Errorf("%w: target outbound %d over max peers %d", ErrInvalidConfig,
			c.TargetOutbound, c.MaxPeers)
	}
	if c.BanThreshold == 0 {
		c.BanThreshold = DefaultBanThreshold
	}
	if c.MessageRate == 0 {
		c.MessageRate = DefaultMessageRate
	}
	if c.MessageBurst == 0 {
		c.MessageBurst = DefaultMessageBurst
	}
	defDur(&c.BanDuration, DefaultBanDuration)
	defDur(&c.ProgressInterval, DefaultProgressInterval)
	defDur(&c.AnnounceTTL, DefaultAnnounceTTL)
	defDur(&c.TrickleInterval, DefaultTrickleInterval)
	defDur(&c.WriteTimeout, DefaultWriteTimeout)
	defDur(&c.DialTimeout, DefaultDialTimeout)
	defDur(&c.RetryInterval, DefaultRetryInterval)
	if c.UserAgentVersion == "" {
		c.UserAgentVersion = "0.0.0"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Dial == nil {
		d := &net.Dialer{Timeout: c.DialTimeout}
		c.Dial = d.DialContext
	}
	if c.Lookup == nil {
		c.Lookup = net.LookupIP
	}
	return c, nil
}
