package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/testutil"

	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/proxyproto"
)

func TestListenConfigErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not a certificate"), 0o600)
	db := map[string]string{"DATABASE_URL": "postgres://x"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--proxy-protocol"}, "--proxy-trusted"},
		{[]string{"--proxy-trusted", "127.0.0.1"}, "--proxy-trusted: has no effect"},
		{[]string{"--proxy-protocol", "--proxy-trusted", "haproxy.example"}, "--proxy-trusted"},
		{[]string{"--tls-listen", "127.0.0.1:0"}, "--tls-cert"},
		{[]string{"--tls-listen", "127.0.0.1:0", "--tls-cert", junk, "--tls-key", junk}, "--tls-cert"},
		{[]string{"--retention", "1h"}, "--retention"},
		{[]string{"--retention", "-24h"}, "--retention"},
	} {
		args := append([]string{"--network", "regtest"}, tc.args...)
		_, _, err := parseConfig(args, env(db), io.Discard)
		if !errors.Is(err, cliconf.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v; want a configuration error naming %s", tc.args, err, tc.want)
		}
	}
	cfg, _, err := parseConfig([]string{"--network", "regtest", "--proxy-protocol", "--proxy-trusted", "127.0.0.1,10.0.0.0/8",
		"--retention", "720h"}, env(db), io.Discard)
	if err != nil || !cfg.ProxyProtocol || len(cfg.ProxyTrusted) != 1 || cfg.Retention != 720*time.Hour {
		t.Fatalf("valid settings: %+v, %v", cfg, err)
	}
}

// selfSigned writes a self-signed ECDSA certificate for 127.0.0.1 with the
// given common name and returns the paths and the parsed certificate.
func selfSigned(t *testing.T, dir, cn string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	// Write to temporary names and rename, as certbot's deploy does, so a
	// reload never sees half a pair.
	for path, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(path+".tmp", pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{certFile, keyFile} {
		if err := os.Rename(p+".tmp", p); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile, cert
}

// startDaemonAll runs stratumd like startDaemon and returns every listener
// address in order: the --listen ones, then the --tls-listen ones.
func startDaemonAll(t *testing.T, db string, n int, args ...string) (*running, []string) {
	t.Helper()
	args = append([]string{"--db", db}, args...)
	cfg, pos, err := parseConfig(args, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil || len(pos) != 0 {
		t.Fatalf("config %v: %v", args, err)
	}
	addrs := make(chan net.Addr, n)
	d := &daemon{cfg: cfg, args: args, listening: func(a net.Addr) { addrs <- a }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs := &testutil.SyncBuffer{}
	var w io.Writer = logs
	if os.Getenv("STRATUMD_TEST_LOG") != "" {
		w = io.MultiWriter(logs, os.Stderr)
	}
	go func() { done <- d.run(ctx, w) }()
	r := &running{d: d, logs: logs}
	var got []string
	for len(got) < n {
		select {
		case a := <-addrs:
			got = append(got, a.String())
		case err := <-done:
			cancel()
			t.Fatalf("stratumd exited at start: %v\n%s", err, logs)
		case <-time.After(2 * time.Minute):
			cancel()
			t.Fatalf("stratumd did not start listening\n%s", logs)
		}
	}
	r.addr = got[0]
	var once sync.Once
	var stopErr error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(time.Minute):
				stopErr = errors.New("stratumd did not stop within a minute")
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if t.Failed() {
			t.Logf("stratumd log:\n%s", logs)
		}
	})
	return r, got
}

// TestTLSListener: the in-repo miner mines over stratum+ssl with a
// certificate generated here; the plain listener keeps working beside it; a
// new certificate is served after SIGHUP; PROXY v2 in front of TLS (as
// HAProxy in TCP mode sends it) gives the share the client's address.
func TestTLSListener(t *testing.T) {
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	certFile, keyFile, cert1 := selfSigned(t, dir, "stratumd test 1")
	r, addrs := startDaemonAll(t, db, 2, "--network", "regtest", "--auth", "open",
		"--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile,
		"--proxy-protocol", "--proxy-trusted", "127.0.0.1",
		"--datadir", filepath.Join(dir, "node"), "--share-dir", filepath.Join(dir, "shares"),
		"--min-diff", "1e-9", "--max-diff", "1e-9")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	dialTLS := func(want *x509.Certificate, proxyFrom string) *miner.Miner {
		t.Helper()
		raw, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}).DialContext(ctx, "tcp", addrs[1])
		if err != nil {
			t.Fatal(err)
		}
		// From 127.0.0.1, a trusted source: the header comes first.
		h := proxyproto.Header{Command: proxyproto.CmdProxy, Protocol: proxyproto.ProtoTCP4}
		if proxyFrom != "" {
			h.Source = netip.MustParseAddrPort(proxyFrom)
			h.Destination = netip.MustParseAddrPort(addrs[1])
		} else {
			h.Command, h.Protocol = proxyproto.CmdLocal, proxyproto.ProtoUnspec
		}
		hb, err := h.AppendV2(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Write(hb); err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(want)
		conn := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
		if err := conn.HandshakeContext(ctx); err != nil {
			raw.Close()
			t.Fatalf("TLS handshake: %v", err)
		}
		if got := conn.ConnectionState().PeerCertificates[0]; !got.Equal(want) {
			t.Fatalf("server certificate %q, want %q", got.Subject.CommonName, want.Subject.CommonName)
		}
		m := miner.New(conn, miner.Options{User: regtestDevAddress, Workers: []string{"tls"}})
		if err := m.Handshake(ctx); err != nil {
			m.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	mineOne := func(m *miner.Miner) {
		t.Helper()
		for {
			res, err := m.Mine(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Accepted {
				return
			}
		}
	}

	m := dialTLS(cert1, "198.51.100.23:4444")
	mineOne(m)

	// The plain listener, with a LOCAL header (a health check's kind).
	raw, err := net.Dial("tcp", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	local := proxyproto.Header{Command: proxyproto.CmdLocal}
	hb, _ := local.AppendV2(nil)
	raw.Write(hb)
	plain := miner.New(raw, miner.Options{User: regtestDevAddress, Workers: []string{"plain"}})
	defer plain.Close()
	if err := plain.Handshake(ctx); err != nil {
		t.Fatal(err)
	}
	mineOne(plain)

	// A new certificate, then SIGHUP: new handshakes get it. The test
	// takes SIGHUP too, so that a signal arriving before the daemon's
	// handler is registered cannot end the test process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	_, _, cert2 := selfSigned(t, dir, "stratumd test 2")
	for !strings.Contains(r.logs.String(), "TLS certificate reloaded") {
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		select {
		case <-ctx.Done():
			t.Fatal("no reload logged")
		case <-time.After(20 * time.Millisecond):
		}
	}
	m2 := dialTLS(cert2, "")
	mineOne(m2)
	m.Close()
	m2.Close()
	plain.Close()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	// The shares' remote addresses: the PROXY client for the first TLS
	// miner, the real peer for the LOCAL ones.
	type wr struct{ Worker, Remote string }
	got := dbRows[wr](t, db, `SELECT worker, remote_addr FROM shares GROUP BY 1, 2 ORDER BY 1, 2`)
	want := []wr{{"plain", "127.0.0.1"}, {"tls", "127.0.0.1"}, {"tls", "198.51.100.23"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("shares (worker, remote_addr) = %v, want %v", got, want)
	}
}
