package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/stratum"
)

// config is stratumd's whole configuration after flags, environment and
// file are merged and checked.
type config struct {
	ConfigFile    string
	DB            string
	Network       string
	Node          string
	DataDir       string
	Listen        listenList // listenspec.go
	PayoutAddress string
	Auth          string
	AdminPassword string
	// PasswordNice is the nice value of the argon2 password worker; 0
	// checks passwords in-process.
	PasswordNice  int
	ShareDir      string
	SpoolDir      string
	MinDiff       float64
	MaxDiff       float64
	StartDiff     float64
	VardiffTarget time.Duration
	JobInterval   time.Duration
	InstanceID    uint
	CoinbaseTag   string
	LogLevel      string
	LogFormat     string
	// RPC mode (issue: RPC chain source)
	RPCURL    cliconf.StringList
	RPCUser   string
	RPCPass   string
	RPCCookie string
	ZMQBlock  cliconf.StringList
	// Limits and timeouts
	MaxConnsPerIP    int
	ConnRatePerIP    float64
	ConnBurstPerIP   int
	BanThreshold     float64
	BanMalformed     int
	BanDuration      time.Duration
	Extranonce2Size  int
	MaxLine          int
	HandshakeTimeout time.Duration
	IdleTimeout      time.Duration
	WriteTimeout     time.Duration
	// Operations HTTP: Prometheus /metrics, JSON API and web page.
	MetricsListen string
	// PROXY protocol, TLS listeners and share retention (listen.go).
	ProxyProtocol bool
	ProxyTrusted  cliconf.StringList
	TLSListen     listenList
	TLSCert       string
	TLSKey        string
	Retention     time.Duration
	SoloFeeBPS    int  // --solo-fee-bps (listen.go)
	MaxConns      int  // --max-conns (listen.go)
	ReusePort     bool // --reuse-port (listen.go)
	// Peers of the embedded node
	Connect   cliconf.StringList
	AddPeer   cliconf.StringList
	P2PListen cliconf.StringList
	// HeaderFirst moves miners onto a peer's block before it is validated
	// (embedded.Config.HeaderFirst).
	HeaderFirst bool
	// Regtest convenience: mine this many blocks in-process at start when
	// the chain is shorter (e.g. 432 to activate segwit on regtest).
	RegtestPremine int
	// Subcommand options, from the command line only (commandFlags).
	Address      string // adduser --address
	ClearAddress bool   // set-address --clear
	addressSet   bool   // --address was given, even empty

	params *chaincfg.Params
	payout btcutil.Address
}

// regtestDevAddress pays to the key whose secret is 1: anyone can spend it.
// It is the default payout address on regtest and simnet only, so that
// `make run` mines at once; never use it elsewhere.
const regtestDevAddress = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"

func defaultHome() string {
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".stratumd")
	}
	return ".stratumd"
}

// parseConfig reads flags, STRATUMD_* variables and the TOML file, and
// checks the result. Errors name the setting at fault.
func parseConfig(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (*config, []string, error) {
	c := &config{}
	fs := flag.NewFlagSet("stratumd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	parseConfigFlags(fs, c)
	cmdOnly := commandFlags(fs, c)
	positional, err := cliconf.Parse(fs, args, cliconf.Options{EnvPrefix: "STRATUMD", ConfigFlag: "config", LookupEnv: lookupEnv,
		CommandLineOnly: cmdOnly})
	if err != nil {
		return nil, nil, err
	}
	fs.Visit(func(f *flag.Flag) { c.addressSet = c.addressSet || f.Name == "address" })
	if c.DB == "" {
		c.DB, _ = lookupEnv("DATABASE_URL")
	}
	if err := c.check(positional); err != nil {
		return nil, nil, err
	}
	return c, positional, nil
}

// parseConfigFlags defines every setting of c as a flag of fs.
func parseConfigFlags(fs *flag.FlagSet, c *config) {
	fs.StringVar(&c.ConfigFile, "config", "", "TOML configuration file")
	fs.StringVar(&c.DB, "db", "", "PostgreSQL connection string (default $DATABASE_URL)")
	fs.StringVar(&c.Network, "network", "mainnet", "mainnet, testnet3, testnet4, signet, regtest or simnet")
	fs.StringVar(&c.Node, "node", "embedded", "chain source: embedded (in-process node) or rpc")
	fs.StringVar(&c.DataDir, "datadir", "", "node data directory (default ~/.stratumd/<network>)")
	fs.Var(&c.Listen, "listen", "stratum listen address, repeatable (default 0.0.0.0:3333); ADDR,key=value,... gives the listener its own min-diff, max-diff, start-diff, vardiff-target and pow2")
	fs.StringVar(&c.PayoutAddress, "payout-address", "", "address the coinbase pays (required off regtest/simnet)")
	fs.StringVar(&c.Auth, "auth", "password", "miner authorization: password (users must exist) or open (user name is an address)")
	fs.StringVar(&c.AdminPassword, "admin-password", "", "password for mining.authorize_admin; file:PATH reads it from a file (empty: admin calls off)")
	fs.IntVar(&c.PasswordNice, "password-nice", 15, "nice value (1-19) of the child process that checks argon2 passwords, so that password floods never take CPU from miners (0: check in-process)")
	fs.StringVar(&c.ShareDir, "share-dir", "", "directory for <height>-<hash>.json share dumps (default ~/.stratumd/shares)")
	fs.StringVar(&c.SpoolDir, "spool-dir", "", "durable share spool directory (default <datadir>/spool)")
	fs.Float64Var(&c.MinDiff, "min-diff", 1, "lowest share difficulty (fractions allowed)")
	fs.Float64Var(&c.MaxDiff, "max-diff", 1<<40, "highest share difficulty")
	fs.Float64Var(&c.StartDiff, "start-diff", 0, "first share difficulty of a connection (default: min-diff)")
	fs.DurationVar(&c.VardiffTarget, "vardiff-target", 10*time.Second, "target time between a connection's shares")
	fs.DurationVar(&c.JobInterval, "job-interval", 30*time.Second, "at most one new job per interval while only the mempool changes")
	fs.UintVar(&c.InstanceID, "instance-id", 0, "0-255: first byte of extranonce1, unique per instance sharing a database")
	fs.StringVar(&c.CoinbaseTag, "coinbase-tag", "/stratumd/", "text in the coinbase")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	fs.Var(&c.RPCURL, "rpc-url", "node RPC URL for --node rpc, repeatable")
	fs.StringVar(&c.RPCUser, "rpc-user", "", "node RPC user")
	fs.StringVar(&c.RPCPass, "rpc-pass", "", "node RPC password; file:PATH reads it from a file")
	fs.StringVar(&c.RPCCookie, "rpc-cookie", "", "Bitcoin Core .cookie file")
	fs.Var(&c.ZMQBlock, "zmq-block", "Bitcoin Core zmqpubhashblock endpoint of the --rpc-url in the same position, repeatable")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", 0, "open connections allowed from one IP address (0: no cap)")
	fs.Float64Var(&c.ConnRatePerIP, "conn-rate-per-ip", defaultConnRatePerIP, "new connections per second one IP address may open; more are closed at accept (0: no limit)")
	fs.IntVar(&c.ConnBurstPerIP, "conn-burst-per-ip", defaultConnBurstPerIP, "new connections one IP address may open at once before --conn-rate-per-ip applies")
	fs.Float64Var(&c.BanThreshold, "ban-threshold", 0.5, "ban an address when more than this fraction of a connection's recent submits are invalid")
	fs.IntVar(&c.BanMalformed, "ban-malformed", 5, "ban an address after this many malformed lines within --ban-duration")
	fs.DurationVar(&c.BanDuration, "ban-duration", 10*time.Minute, "how long a ban lasts")
	fs.IntVar(&c.Extranonce2Size, "extranonce2-size", 8, "bytes of extranonce2 miners roll (2-8)")
	fs.IntVar(&c.MaxLine, "max-line", 16<<10, "longest line accepted from a miner, in bytes")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", 15*time.Second, "time a new connection has to subscribe and authorize")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 10*time.Minute, "close connections that send nothing valid for this long")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 5*time.Second, "close connections that do not take a write within this time")
	fs.StringVar(&c.MetricsListen, "metrics-listen", "", "address for Prometheus /metrics, the JSON API and the web page, e.g. 127.0.0.1:9100 (empty: off)")
	listenFlags(fs, c)
	fs.Var(&c.Connect, "connect", "embedded node: connect only to this peer host:port, repeatable")
	fs.Var(&c.AddPeer, "addpeer", "embedded node: also connect to this peer, beside the network's DNS seeds, repeatable")
	fs.Var(&c.P2PListen, "p2p-listen", "embedded node: accept inbound peers on this address, repeatable (default: none)")
	fs.BoolVar(&c.HeaderFirst, "header-first", true, "embedded node: move miners onto a block from a peer as soon as its header and proof of work check out, while it is validated (empty template; back to the old tip if it fails)")
	fs.IntVar(&c.RegtestPremine, "regtest-premine", 0, "regtest/simnet: mine blocks in-process at start until the chain has this height (432 activates segwit)")
}

// commandFlags defines the subcommands' own flags and returns their names.
// They are read from the command line only, never from STRATUMD_* or the
// TOML file, where they would apply to every later command; each is refused
// with any other command (config.check).
func commandFlags(fs *flag.FlagSet, c *config) []string {
	fs.StringVar(&c.Address, "address", "", "adduser: the new user's payout address, checked for --network (command line only)")
	fs.BoolVar(&c.ClearAddress, "clear", false, "set-address: remove the user's payout address (command line only)")
	return []string{"address", "clear"}
}

// Default per-IP connection rate limit: a farm of thousands of miners
// behind one NAT that reconnects at once gets in over a minute or so of
// retries, while a flood from a few addresses is refused before it costs a
// session.
const (
	defaultConnRatePerIP  = 50
	defaultConnBurstPerIP = 200
)

func devNetwork(name string) bool { return name == "regtest" || name == "simnet" }

// check validates the configuration and fills in derived defaults.
func (c *config) check(positional []string) error {
	bad := func(setting, format string, a ...any) error {
		return fmt.Errorf("%w: --%s: %s", cliconf.ErrConfig, setting, fmt.Sprintf(format, a...))
	}
	var err error
	if c.params, err = chain.NetworkParams(c.Network); err != nil {
		return bad("network", "%v", err)
	}
	cmd := ""
	if len(positional) > 0 {
		cmd = positional[0]
	}
	if c.addressSet && cmd != "adduser" {
		return bad("address", "only for adduser (set-address takes the address as an argument)")
	}
	if c.ClearAddress && cmd != "set-address" {
		return bad("clear", "only for set-address")
	}
	// Subcommands other than the daemon need only the database.
	if cmd != "" {
		return nil
	}
	if c.DB == "" {
		return bad("db", "no database: set --db, STRATUMD_DB or DATABASE_URL")
	}
	switch c.Node {
	case "embedded":
		if chain.IsSignet(c.params) {
			// btcd's chain checks no signet block solution, so the
			// embedded node would take our blocks and its peers refuse
			// them ("bad-signet-blksig"): refuse here, once, clearly.
			if err := chain.CheckSignetChallenge(chaincfg.DefaultSignetChallenge); err != nil {
				return bad("network", "signet with --node embedded: %v; for a custom signet whose "+
					"challenge is 51 run Bitcoin Core with -signetchallenge=51 and --node rpc", err)
			}
		}
		if len(c.Connect) > 0 && len(c.AddPeer) > 0 {
			return bad("connect", "--connect (only these peers) and --addpeer exclude each other")
		}
	case "rpc":
		if len(c.Connect)+len(c.AddPeer)+len(c.P2PListen) > 0 {
			return bad("node", "--connect, --addpeer and --p2p-listen need --node embedded")
		}
		if len(c.RPCURL) == 0 {
			return bad("rpc-url", "--node rpc needs at least one --rpc-url")
		}
		if len(c.ZMQBlock) > len(c.RPCURL) {
			return bad("zmq-block", "more endpoints than --rpc-url nodes")
		}
	default:
		return bad("node", "%q is neither embedded nor rpc", c.Node)
	}
	if c.Auth != "password" && c.Auth != "open" {
		return bad("auth", "%q is neither password nor open", c.Auth)
	}
	if c.PayoutAddress == "" {
		if !devNetwork(c.Network) {
			return bad("payout-address", "required on %s", c.Network)
		}
		c.PayoutAddress = regtestDevAddress
		if c.Network == "simnet" {
			return bad("payout-address", "required on simnet (the built-in development address is regtest's)")
		}
	}
	if c.payout, err = btcutil.DecodeAddress(c.PayoutAddress, c.params); err != nil || !c.payout.IsForNet(c.params) {
		return bad("payout-address", "%q is not a %s address", c.PayoutAddress, c.Network)
	}
	for _, d := range []struct {
		name string
		v    float64
	}{{"min-diff", c.MinDiff}, {"max-diff", c.MaxDiff}} {
		if !(d.v > 0) || math.IsInf(d.v, 0) {
			return bad(d.name, "must be a positive number, got %v", d.v)
		}
	}
	if c.MaxDiff < c.MinDiff {
		return bad("max-diff", "%v is below --min-diff %v", c.MaxDiff, c.MinDiff)
	}
	if c.StartDiff == 0 {
		c.StartDiff = c.MinDiff
	}
	if c.StartDiff < c.MinDiff || c.StartDiff > c.MaxDiff || math.IsNaN(c.StartDiff) {
		return bad("start-diff", "%v is outside [--min-diff, --max-diff]", c.StartDiff)
	}
	if c.VardiffTarget < time.Second {
		return bad("vardiff-target", "at least 1s, got %v", c.VardiffTarget)
	}
	if c.JobInterval < time.Second {
		return bad("job-interval", "at least 1s, got %v", c.JobInterval)
	}
	if c.InstanceID > 255 {
		return bad("instance-id", "0 to 255, got %d", c.InstanceID)
	}
	if len(c.CoinbaseTag) > 64 {
		return bad("coinbase-tag", "at most 64 bytes")
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return bad("log-level", "%v", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return bad("log-format", "%q is neither text nor json", c.LogFormat)
	}
	if c.PasswordNice < 0 || c.PasswordNice > 19 {
		return bad("password-nice", "0 to 19, got %d", c.PasswordNice)
	}
	if c.MaxConnsPerIP < 0 {
		return bad("max-conns-per-ip", "not negative")
	}
	if !(c.ConnRatePerIP >= 0) || math.IsInf(c.ConnRatePerIP, 0) {
		return bad("conn-rate-per-ip", "a rate per second, 0 or more, got %v", c.ConnRatePerIP)
	}
	if c.ConnBurstPerIP < 1 {
		return bad("conn-burst-per-ip", "at least 1, got %d", c.ConnBurstPerIP)
	}
	if !(c.BanThreshold > 0 && c.BanThreshold <= 1) {
		return bad("ban-threshold", "a fraction in (0, 1], got %v", c.BanThreshold)
	}
	if c.BanMalformed < 1 {
		return bad("ban-malformed", "at least 1")
	}
	if c.BanDuration < time.Second {
		return bad("ban-duration", "at least 1s")
	}
	if c.Extranonce2Size < 2 || c.Extranonce2Size > 8 {
		return bad("extranonce2-size", "2 to 8, got %d", c.Extranonce2Size)
	}
	if c.MaxLine < 1024 || c.MaxLine > 1<<20 {
		return bad("max-line", "1024 to 1048576 bytes, got %d", c.MaxLine)
	}
	for _, t := range []struct {
		name string
		v    time.Duration
	}{{"handshake-timeout", c.HandshakeTimeout}, {"idle-timeout", c.IdleTimeout}, {"write-timeout", c.WriteTimeout}} {
		if t.v < 100*time.Millisecond {
			return bad(t.name, "at least 100ms, got %v", t.v)
		}
	}
	if c.RegtestPremine < 0 || (c.RegtestPremine > 0 && !devNetwork(c.Network)) {
		return bad("regtest-premine", "only on regtest or simnet, and not negative")
	}
	if _, _, err := net.SplitHostPort(c.MetricsListen); c.MetricsListen != "" && err != nil {
		return bad("metrics-listen", "%v", err)
	}
	if err := c.checkListen(); err != nil {
		return err
	}
	if err := c.checkProfiles(); err != nil {
		return err
	}
	if c.AdminPassword, err = cliconf.Secret(c.AdminPassword, nil); err != nil {
		return bad("admin-password", "%v", err)
	}
	if c.RPCPass, err = cliconf.Secret(c.RPCPass, nil); err != nil {
		return bad("rpc-pass", "%v", err)
	}
	if len(c.Listen) == 0 {
		c.Listen = listenList{{Value: "0.0.0.0:3333", Addr: "0.0.0.0:3333"}}
	}
	home := defaultHome()
	if c.DataDir == "" {
		c.DataDir = filepath.Join(home, c.Network)
	}
	if c.ShareDir == "" {
		c.ShareDir = filepath.Join(home, "shares")
	}
	if c.SpoolDir == "" {
		c.SpoolDir = filepath.Join(c.DataDir, "spool")
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(strings.ToUpper(s)))
	return l, err
}

// limits are the settings the stratum server may change at run time.
func (c *config) limits() stratum.Limits {
	return stratum.Limits{
		MinDiff: c.MinDiff, MaxDiff: c.MaxDiff, StartDiff: c.StartDiff, VardiffTarget: c.VardiffTarget,
		MaxConnsPerIP: c.MaxConnsPerIP, ConnRatePerIP: c.ConnRatePerIP, ConnBurstPerIP: c.ConnBurstPerIP,
		BanThreshold: c.BanThreshold, BanMalformed: c.BanMalformed, BanDuration: c.BanDuration,
	}
}

// loggerWith builds the daemon's slog logger; level may change later.
func (c *config) loggerWith(w io.Writer, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// version is the module version the binary was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
		return v
	}
	return "unknown"
}
