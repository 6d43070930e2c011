package miner

import (
	"log/slog"
	"time"
)

// User agents of the miners the Miner imitates.
const (
	// UserAgentCPUMiner is cpuminer's mining.subscribe parameter.
	UserAgentCPUMiner = "cpuminer/2.5.1"
	// UserAgentBitaxe is an ESP-Miner (BitAxe) mining.subscribe parameter.
	UserAgentBitaxe = "bitaxe/BM1370/v2.4.0"
)

// Defaults for zero Options fields.
const (
	// DefaultVersionRollingMask is the mask requested in mining.configure,
	// as ESP-Miner and most ASIC firmwares request it.
	DefaultVersionRollingMask uint32 = 0x1fffe000
	// DefaultMaxLineLength bounds the lines read from the pool.
	DefaultMaxLineLength = 64 << 10
	// DefaultWriteTimeout bounds every write to the pool.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultHandshakeTimeout bounds Handshake when its context has no
	// deadline.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultMaxJobs is how many jobs are kept between clean jobs.
	DefaultMaxJobs = 16
	// DefaultMaxEvents is how many notifications Events keeps.
	DefaultMaxEvents = 1024
)

// Options configure a Miner. The zero value is a cpuminer without version
// rolling, authorizing an empty user; set at least User.
type Options struct {
	// User is the pool user, usually a payout address.
	User string
	// Password is sent with every mining.authorize ("x" when empty, as
	// cpuminer does).
	Password string
	// Workers are worker names, each authorized as "User.worker"; when
	// empty, User alone is authorized. Shares are submitted under the first.
	Workers []string
	// UserAgent is the mining.subscribe parameter; UserAgentCPUMiner when
	// empty.
	UserAgent string
	// VersionRolling sends BIP 310 mining.configure first, as ESP-Miner
	// does, and rolls version bits inside the negotiated mask.
	VersionRolling bool
	// VersionRollingMask is the mask requested; DefaultVersionRollingMask
	// when zero.
	VersionRollingMask uint32
	// SuggestDifficulty, when positive, is sent with
	// mining.suggest_difficulty right after mining.subscribe, as ESP-Miner
	// does. Its reply is not waited for (some pools send none).
	SuggestDifficulty float64
	// ExtranonceSubscribe sends mining.extranonce.subscribe after
	// authorizing, as NiceHash-compatible miners do.
	ExtranonceSubscribe bool
	// Pipeline sends all handshake requests at once and then reads the
	// replies, as ESP-Miner does; otherwise each request waits for its
	// reply, as cpuminer does.
	Pipeline bool

	// MaxLineLength bounds the lines read from the pool;
	// DefaultMaxLineLength when zero.
	MaxLineLength int
	// WriteTimeout bounds every write; DefaultWriteTimeout when zero.
	WriteTimeout time.Duration
	// HandshakeTimeout bounds Handshake (and Dial) when the context has no
	// deadline; DefaultHandshakeTimeout when zero.
	HandshakeTimeout time.Duration
	// MaxJobs bounds the jobs kept; DefaultMaxJobs when zero.
	MaxJobs int
	// MaxEvents bounds the notifications kept for Events and WaitEvent
	// (oldest dropped first); DefaultMaxEvents when zero.
	MaxEvents int
	// OnEvent, when set, is called from the reader goroutine for every
	// notification, after the Miner's state is updated. It must not block
	// or call the Miner's blocking methods.
	OnEvent func(Event)
	// Logger receives debug logs; none when nil.
	Logger *slog.Logger
	// Now is the clock for event times and latencies; time.Now when nil.
	Now func() time.Time
	// KernelTimestamps times every line read by the kernel's receive
	// timestamp of its bytes (SO_TIMESTAMPNS, Linux, TCP connections):
	// when the line reached the socket rather than when the reader
	// goroutine got to it, so that a load tool running thousands of
	// Miners on the pool's own cores does not add its scheduling delays
	// to what it measures. Elsewhere, or when the socket refuses, Now is
	// used.
	KernelTimestamps bool
	// KernelTxTimestamps starts a submit's latency at the kernel's
	// transmit timestamp of the request (SO_TIMESTAMPING, software, Linux,
	// TCP): when it left the socket, not when the writing goroutine was
	// about to write it, so that the miner's own waits for a core between
	// the two are not counted. It costs a read of the socket's error
	// queue per submit. Elsewhere, or when the socket refuses, the time
	// before the write is used.
	KernelTxTimestamps bool
}

func (o *Options) setDefaults() {
	if o.UserAgent == "" {
		o.UserAgent = UserAgentCPUMiner
	}
	if o.VersionRollingMask == 0 {
		o.VersionRollingMask = DefaultVersionRollingMask
	}
	if o.MaxLineLength <= 0 {
		o.MaxLineLength = DefaultMaxLineLength
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.MaxJobs <= 0 {
		o.MaxJobs = DefaultMaxJobs
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = DefaultMaxEvents
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// WorkerNames returns the names mining.authorize sends: "User.worker" for
// each worker, or User alone.
func (o *Options) WorkerNames() []string {
	if len(o.Workers) == 0 {
		return []string{o.User}
	}
	names := make([]string, len(o.Workers))
	for i, w := range o.Workers {
		names[i] = o.User + "." + w
	}
	return names
}
