package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/proxyproto"
	"github.com/stratumd/stratumd/internal/store"
)

// This file holds the stratum listeners (plain and TLS, each optionally
// behind the PROXY protocol, optionally shared with other processes through
// SO_REUSEPORT), the cap on miner connections and the share retention loop.

// listenFlags defines the settings of this file.
func listenFlags(fs *flag.FlagSet, c *config) {
	fs.BoolVar(&c.ProxyProtocol, "proxy-protocol", false, "require a PROXY protocol v1/v2 header from --proxy-trusted sources (HAProxy send-proxy-v2)")
	fs.Var(&c.ProxyTrusted, "proxy-trusted", "load balancer address or CIDR allowed (and required) to send a PROXY header, repeatable")
	fs.Var(&c.TLSListen, "tls-listen", "stratum+ssl listen address, repeatable (needs --tls-cert and --tls-key); takes the options of --listen")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate chain for --tls-listen (re-read on SIGHUP)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key for --tls-listen (re-read on SIGHUP)")
	fs.IntVar(&c.SoloFeeBPS, "solo-fee-bps", 0, "pool fee on a solo miner's block, in basis points (0..9999), paid to --payout-address by a coinbase output")
	fs.IntVar(&c.MaxConns, "max-conns", 0, "most miner connections open at once, all listeners together (0: the descriptor limit less the reserve for the node, PostgreSQL and the rest; a higher value is capped at that)")
	fs.BoolVar(&c.ReusePort, "reuse-port", false, "open the stratum listeners with SO_REUSEPORT, so that several stratumd processes (distinct --instance-id and --spool-dir) share a port: rolling restarts, more miners than one process's descriptor limit")
	fs.DurationVar(&c.Retention, "retention", 0, "drop daily share partitions older than this, e.g. 720h (0: keep forever); never those a pending payout needs")
}

// checkListen validates the settings of this file.
func (c *config) checkListen() error {
	bad := func(setting, format string, a ...any) error {
		return fmt.Errorf("%w: --%s: %s", cliconf.ErrConfig, setting, fmt.Sprintf(format, a...))
	}
	trusted, err := proxyproto.ParseTrusted(c.ProxyTrusted)
	if err != nil {
		return bad("proxy-trusted", "%v", err)
	}
	if c.ProxyProtocol && len(trusted) == 0 {
		return bad("proxy-trusted", "--proxy-protocol needs the load balancers' addresses")
	}
	if !c.ProxyProtocol && len(trusted) > 0 {
		return bad("proxy-trusted", "has no effect without --proxy-protocol")
	}
	if len(c.TLSListen) > 0 {
		if c.TLSCert == "" || c.TLSKey == "" {
			return bad("tls-cert", "--tls-listen needs --tls-cert and --tls-key")
		}
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			return bad("tls-cert", "%v", err)
		}
	}
	if c.SoloFeeBPS < 0 || c.SoloFeeBPS > chain.MaxSoloFeeBPS {
		return bad("solo-fee-bps", "want 0 to %d, got %d", chain.MaxSoloFeeBPS, c.SoloFeeBPS)
	}
	if c.MaxConns < 0 {
		return bad("max-conns", "0 (the descriptor budget) or more, got %d", c.MaxConns)
	}
	if c.ReusePort && !reusePortSupported {
		return bad("reuse-port", "SO_REUSEPORT is not available on this system")
	}
	if c.Retention < 0 || (c.Retention > 0 && c.Retention < 24*time.Hour) {
		return bad("retention", "0 (keep forever) or at least 24h, got %v", c.Retention)
	}
	return nil
}

// certStore holds the TLS certificate, replaced on SIGHUP.
type certStore struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

func (s *certStore) load() error {
	c, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	s.cert.Store(&c)
	return nil
}

func (s *certStore) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil }

// boundListener is an open stratum listener and its own settings.
type boundListener struct {
	net.Listener
	spec listenSpec
}

// openListeners opens the --listen and --tls-listen sockets, wrapped for
// the PROXY protocol when it is on (the header comes before the TLS
// handshake: HAProxy relays TLS untouched in TCP mode).
func (d *daemon) openListeners() ([]boundListener, error) {
	cfg := d.cfg
	var out []boundListener
	fail := func(err error) ([]boundListener, error) {
		for _, l := range out {
			l.Close()
		}
		return nil, err
	}
	var tlsCfg *tls.Config
	if len(cfg.TLSListen) > 0 {
		d.certs = &certStore{certFile: cfg.TLSCert, keyFile: cfg.TLSKey}
		if err := d.certs.load(); err != nil {
			return fail(fmt.Errorf("%w: %w", errStartup, err))
		}
		tlsCfg = &tls.Config{GetCertificate: d.certs.get, MinVersion: tls.VersionTLS12}
	}
	trusted, _ := proxyproto.ParseTrusted(cfg.ProxyTrusted) // checked in checkListen
	var lc net.ListenConfig
	if cfg.ReusePort {
		lc.Control = reusePortControl
		d.warnMigrateReq()
	}
	open := func(flagName, addr string) (net.Listener, error) {
		l, err := lc.Listen(context.Background(), "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%w: --%s %s: %w", errStartup, flagName, addr, err)
		}
		if cfg.ProxyProtocol {
			pl, err := proxyproto.NewListener(l, proxyproto.Config{
				Trusted: trusted, HeaderTimeout: cfg.HandshakeTimeout,
				Logger: d.log.With("part", "proxyproto", "listen", l.Addr().String()),
			})
			if err != nil {
				l.Close()
				return nil, fmt.Errorf("%w: --proxy-protocol on %s: %w", errStartup, addr, err)
			}
			l = pl
		}
		return l, nil
	}
	for _, spec := range cfg.Listen {
		l, err := open("listen", spec.Addr)
		if err != nil {
			return fail(err)
		}
		out = append(out, boundListener{l, spec})
	}
	for _, spec := range cfg.TLSListen {
		l, err := open("tls-listen", spec.Addr)
		if err != nil {
			return fail(err)
		}
		out = append(out, boundListener{tls.NewListener(l, tlsCfg), spec})
	}
	return out, nil
}

// reloadCertOnHUP re-reads the TLS certificate and key on SIGHUP; a bad
// pair is logged and the running one kept. New handshakes use the new one.
func (d *daemon) reloadCertOnHUP(ctx context.Context) {
	if d.certs == nil {
		return
	}
	onSignal(ctx, syscall.SIGHUP, func() {
		if err := d.certs.load(); err != nil {
			d.log.Error("TLS certificate reload refused; keeping the running one", "err", err)
			return
		}
		d.log.Info("TLS certificate reloaded", "cert", d.certs.certFile)
	})
}

// enforceRetention drops old share partitions every hour (see
// store.ApplyRetention); with --retention 0 it only waits for ctx. Failures
// are logged and retried at the next pass.
func (d *daemon) enforceRetention(ctx context.Context) error {
	if d.cfg.Retention <= 0 {
		<-ctx.Done()
		return nil
	}
	for {
		res, err := d.store.ApplyRetention(ctx, time.Now(), d.cfg.Retention)
		switch {
		case err != nil && ctx.Err() == nil:
			lvl := slog.LevelWarn
			if errors.Is(err, store.ErrConflict) {
				lvl = slog.LevelInfo // a payout run is busy: next hour
			}
			d.log.Log(ctx, lvl, "share retention skipped; will retry", "err", err)
		case err == nil && res.KeepAll:
			d.log.Info("share retention: no credited block bounds the pending payouts yet; keeping every partition")
		case err == nil && len(res.Dropped) > 0:
			d.log.Info("share retention: partitions dropped", "dropped", res.Dropped, "cutoff", res.Cutoff, "oldest_needed", res.Needed)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Hour):
		}
	}
}

// migrateReqPath is Linux's switch for moving the connections queued on a
// closing SO_REUSEPORT listener to another listener of its group (5.14+).
const migrateReqPath = "/proc/sys/net/ipv4/tcp_migrate_req"

// warnMigrateReq warns, with --reuse-port, when Linux would reset rather
// than hand over the connections still queued on this process's listeners
// when it stops: miners that connected in the last moment before a rolling
// restart's SIGTERM would see their connection reset and have to retry.
func (d *daemon) warnMigrateReq() {
	b, err := os.ReadFile(migrateReqPath)
	if err != nil || strings.TrimSpace(string(b)) != "0" {
		return // not Linux, too old a kernel (then nothing helps), or on
	}
	d.log.Warn("--reuse-port: net.ipv4.tcp_migrate_req is 0: connections queued on this process's listeners are reset when it stops, "+
		"instead of being handed to the other processes on the port; set it to 1 (sysctl -w net.ipv4.tcp_migrate_req=1) for rolling restarts",
		"sysctl", migrateReqPath)
}
