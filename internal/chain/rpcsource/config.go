package rpcsource

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultPollInterval is the default of Config.PollInterval.
	DefaultPollInterval = 5 * time.Second
	// DefaultRequestTimeout is the default of Config.RequestTimeout.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultBackoffMin is the default of Config.BackoffMin.
	DefaultBackoffMin = 250 * time.Millisecond
	// DefaultBackoffMax is the default of Config.BackoffMax. A refused
	// connection costs the node nothing, and every second stratumd is late
	// after a node restart is a second of miners on the old job, so the
	// cap is short: a restart costs at most 2 s beyond its own downtime.
	DefaultBackoffMax = 2 * time.Second

	// MaxReplySize bounds a node's reply, in bytes. A full template of a
	// 4M-weight block is at most ~9 MB of hex plus per-transaction fields.
	MaxReplySize = 64 << 20
)

// Kind is the node implementation a NodeConfig talks to.
type Kind string

// Node kinds.
const (
	// KindDetect asks the node (getnetworkinfo, then getinfo) at connect.
	KindDetect Kind = ""
	// KindBtcd is btcd: block and transaction notifications over its
	// websocket endpoint.
	KindBtcd Kind = "btcd"
	// KindCore is Bitcoin Core (or a compatible bitcoind): new tips from
	// ZMQ hashblock and getblocktemplate long polling.
	KindCore Kind = "core"
)

// NodeConfig says how to reach one node.
type NodeConfig struct {
	// URL is the node's RPC address: http://host:port or https://host:port
	// (ws:// and wss:// are accepted as synonyms). A bare host:port means
	// http. Credentials in the URL (http://user:pass@host:port) are used
	// when User and Pass are empty.
	URL string
	// User and Pass are the RPC credentials (rpcuser/rpcpassword).
	User, Pass string
	// CookieFile is Bitcoin Core's .cookie file, used instead of User and
	// Pass. It is read at connect and again whenever the node answers 401:
	// Core writes a new cookie at every start.
	CookieFile string
	// Kind is the node implementation; KindDetect asks the node.
	Kind Kind
	// ZMQBlock is Core's zmqpubhashblock endpoint (tcp://127.0.0.1:28332).
	// Without it a Core node's new tips come from template long polling and
	// the slow poll. Not valid for btcd.
	ZMQBlock string
	// CAFile is a PEM file of the certificate(s) to trust for https/wss,
	// e.g. btcd's rpc.cert; empty means the system roots.
	CAFile string
}

// Config configures a Source.
type Config struct {
	// Nodes are the nodes in order of preference: templates come from the
	// first healthy one, found blocks go to all of them. At least one.
	Nodes []NodeConfig
	// Network is the chain the nodes must be on (their genesis block is
	// checked at connect). Required.
	Network *chaincfg.Params
	// Logger receives the source's logs; nothing is logged when nil.
	Logger *slog.Logger
	// Now is the clock for outage timestamps; time.Now when nil.
	Now func() time.Time

	// PollInterval is how often every node is asked for its best block
	// hash: the last resort for new tips when notifications are lost (and
	// the only tip source of a Core node without ZMQ whose long poll is
	// unavailable), and a health check. Default DefaultPollInterval.
	PollInterval time.Duration
	// RequestTimeout bounds every RPC call except the template long poll.
	// Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between reconnection
	// attempts to a node that is down; it doubles per failed attempt.
	// Defaults DefaultBackoffMin and DefaultBackoffMax.
	BackoffMin, BackoffMax time.Duration
}

// endpoint is a validated NodeConfig.
type endpoint struct {
	NodeConfig
	rpcURL string      // http(s)://host:port/path, no credentials
	host   string      // host:port
	name   string      // scheme://host:port, for logs
	tls    *tls.Config // nil for plain http
	caPEM  []byte      // CAFile's bytes, for the btcd websocket client
}

// withDefaults validates c and returns it with defaults applied, and the
// validated endpoints.
func (c Config) withDefaults() (Config, []endpoint, error) {
	if len(c.Nodes) == 0 {
		return c, nil, fmt.Errorf("%w: no nodes", ErrInvalidConfig)
	}
	if c.Network == nil {
		return c, nil, fmt.Errorf("%w: no network", ErrInvalidConfig)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.PollInterval < 0 || c.RequestTimeout < 0 || c.BackoffMin < 0 || c.BackoffMax < 0 {
		return c, nil, fmt.Errorf("%w: negative duration", ErrInvalidConfig)
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffMin)
	}
	if c.BackoffMax < c.BackoffMin {
		return c, nil, fmt.Errorf("%w: backoff max %v below min %v", ErrInvalidConfig, c.BackoffMax, c.BackoffMin)
	}
	eps := make([]endpoint, len(c.Nodes))
	for i, nc := range c.Nodes {
		ep, err := nc.validate()
		if err != nil {
			return c, nil, fmt.Errorf("node %d: %w", i+1, err)
		}
		eps[i] = ep
	}
	return c, eps, nil
}

// validate checks nc and derives its endpoint.
func (nc NodeConfig) validate() (endpoint, error) {
	raw := nc.URL
	if raw == "" {
		return endpoint{}, fmt.Errorf("%w: empty URL", ErrInvalidConfig)
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, fmt.Errorf("%w: URL: %w", ErrInvalidConfig, err)
	}
	useTLS := false
	switch u.Scheme {
	case "http", "ws":
	case "https", "wss":
		useTLS = true
	default:
		return endpoint{}, fmt.Errorf("%w: URL scheme %q (want http, https, ws or wss)", ErrInvalidConfig, u.Scheme)
	}
	if u.Host == "" || u.Port() == "" {
		return endpoint{}, fmt.Errorf("%w: URL %q needs host:port", ErrInvalidConfig, u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return endpoint{}, fmt.Errorf("%w: URL %q has a query or fragment", ErrInvalidConfig, u.Redacted())
	}
	if u.User != nil && nc.User == "" && nc.Pass == "" {
		nc.User = u.User.Username()
		nc.Pass, _ = u.User.Password()
	}
	u.User = nil
	switch {
	case nc.CookieFile != "" && (nc.User != "" || nc.Pass != ""):
		return endpoint{}, fmt.Errorf("%w: set either a cookie file or user and password", ErrInvalidConfig)
	case nc.CookieFile == "" && nc.Pass == "":
		return endpoint{}, fmt.Errorf("%w: no credentials (user and password, or cookie file)", ErrInvalidConfig)
	}
	switch nc.Kind {
	case KindDetect, KindBtcd, KindCore:
	default:
		return endpoint{}, fmt.Errorf("%w: kind %q (want btcd, core or empty)", ErrInvalidConfig, nc.Kind)
	}
	if nc.ZMQBlock != "" {
		if nc.Kind == KindBtcd {
			return endpoint{}, fmt.Errorf("%w: btcd has no ZMQ", ErrInvalidConfig)
		}
		z, err := url.Parse(nc.ZMQBlock)
		if err != nil || z.Scheme != "tcp" || z.Port() == "" {
			return endpoint{}, fmt.Errorf("%w: ZMQ endpoint %q (want tcp://host:port)", ErrInvalidConfig, nc.ZMQBlock)
		}
	}
	ep := endpoint{NodeConfig: nc, host: u.Host}
	scheme := "http"
	if useTLS {
		scheme = "https"
		ep.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		if nc.CAFile != "" {
			pem, err := os.ReadFile(nc.CAFile)
			if err != nil {
				return endpoint{}, fmt.Errorf("%w: CA file: %w", ErrInvalidConfig, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return endpoint{}, fmt.Errorf("%w: CA file %s holds no PEM certificate", ErrInvalidConfig, nc.CAFile)
			}
			ep.tls.RootCAs, ep.caPEM = pool, pem
		}
	} else if nc.CAFile != "" {
		return endpoint{}, fmt.Errorf("%w: CA file given for a plain-http URL", ErrInvalidConfig)
	}
	u.Scheme = scheme
	if u.Path == "" {
		u.Path = "/"
	}
	ep.rpcURL = u.String()
	ep.name = scheme + "://" + u.Host
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return endpoint{}, fmt.Errorf("%w: URL host %q: %w", ErrInvalidConfig, u.Host, err)
	}
	return ep, nil
}
