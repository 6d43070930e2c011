package btcdtest

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/testutil"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
)

// RPCUser and RPCPass are the credentials of every test node.
const (
	RPCUser = "stratumd"
	RPCPass = "stratumd-test"
)

// KeyOneHash160 is HASH160 of the compressed public key whose secret is 1.
// Every test node's generate pays to its P2WPKH address: anyone can spend it.
const KeyOneHash160 = "751e76e8199196d454941c45d1b3a323f1433bd6"

// MiningAddress returns the P2WPKH address of KeyOneHash160 on params.
func MiningAddress(params *chaincfg.Params) string {
	h, _ := hex.DecodeString(KeyOneHash160)
	a, err := btcutil.NewAddressWitnessPubKeyHash(h, params)
	if err != nil {
		panic(err) // a 20-byte hash always makes an address
	}
	return a.EncodeAddress()
}

// ToolsBin returns the directory holding the pinned btcd, btcctl and
// btcwallet binaries: $STRATUMD_TOOLS_BIN, or what scripts/tools.sh builds
// (run once per test binary).
var ToolsBin = sync.OnceValues(func() (string, error) {
	return testutil.ScriptOutput("STRATUMD_TOOLS_BIN", "tools.sh")
})

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Options adjust a node.
type Options struct {
	// Network is "regtest" (default) or "simnet". btcd deletes its regtest
	// chain at every start, so a test that restarts the node and needs its
	// chain back uses simnet.
	Network string
	// Args are extra btcd arguments (e.g. "--connect=127.0.0.1:18444").
	Args []string
	// DataDir reuses a directory (restart); empty means a new temporary one.
	DataDir string
}

// Node is one running btcd.
type Node struct {
	t       testing.TB
	bin     string
	DataDir string
	RPCPort int
	P2PPort int
	Params  *chaincfg.Params
	args    []string

	mu     sync.Mutex
	proc   *testutil.Proc // the last btcd started
	client *rpcclient.Client
}

// Start launches btcd on regtest and waits until its RPC answers.
func Start(t testing.TB, o Options) *Node {
	t.Helper()
	dir, err := ToolsBin()
	if err != nil {
		t.Fatalf("btcdtest: %v", err)
	}
	n := &Node{t: t, bin: filepath.Join(dir, "btcd"), DataDir: o.DataDir, args: o.Args, Params: &chaincfg.RegressionNetParams}
	switch o.Network {
	case "", "regtest":
	case "simnet":
		n.Params = &chaincfg.SimNetParams
	default:
		t.Fatalf("btcdtest: network %q", o.Network)
	}
	if n.DataDir == "" {
		n.DataDir = t.TempDir()
	}
	t.Cleanup(n.Stop)
	// A port that was free a moment ago may be taken by another test's
	// process before btcd binds it: new ports, up to three times.
	for attempt := 1; ; attempt++ {
		n.RPCPort, n.P2PPort = FreePort(t), FreePort(t)
		err := n.tryStart()
		if err == nil {
			return n
		}
		if attempt == 3 || !strings.Contains(n.Log(), "address already in use") {
			t.Fatalf("btcdtest: %v", err)
		}
		n.Stop()
	}
}

// start starts btcd again on its ports (a restart).
func (n *Node) start() {
	n.t.Helper()
	if err := n.tryStart(); err != nil {
		n.t.Fatalf("btcdtest: %v", err)
	}
}

// tryStart starts btcd and waits until its RPC answers.
func (n *Node) tryStart() error {
	conf := filepath.Join(n.DataDir, "btcd.conf")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		return err
	}
	netFlag := "--regtest"
	if n.Params == &chaincfg.SimNetParams {
		netFlag = "--simnet"
	}
	args := []string{
		netFlag, "--datadir=" + filepath.Join(n.DataDir, "data"), "--logdir=" + filepath.Join(n.DataDir, "logs"),
		"--rpcuser=" + RPCUser, "--rpcpass=" + RPCPass, "--notls",
		fmt.Sprintf("--rpclisten=127.0.0.1:%d", n.RPCPort), fmt.Sprintf("--listen=127.0.0.1:%d", n.P2PPort),
		"--miningaddr=" + MiningAddress(n.Params), "--nodnsseed", "--debuglevel=info", "--txindex",
		"--configfile=" + conf,
	}
	args = append(args, n.args...)
	p, err := testutil.StartProc(exec.Command(n.bin, args...))
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	c, err := rpcclient.New(n.ConnConfig(), nil)
	if err != nil {
		return fmt.Errorf("rpc client: %w", err)
	}
	if err := p.WaitReady(60*time.Second, func() error { _, err := c.GetBlockCount(); return err }); err != nil {
		c.Shutdown()
		return err
	}
	n.mu.Lock()
	n.client = c
	n.mu.Unlock()
	return nil
}

// ConnConfig is an HTTP-POST rpcclient configuration for the node.
func (n *Node) ConnConfig() *rpcclient.ConnConfig {
	return &rpcclient.ConnConfig{Host: n.RPCAddr(), User: RPCUser, Pass: RPCPass,
		HTTPPostMode: true, DisableTLS: true}
}

// RPCAddr is host:port of the RPC server; P2PAddr of the P2P listener.
func (n *Node) RPCAddr() string { return fmt.Sprintf("127.0.0.1:%d", n.RPCPort) }

// P2PAddr is host:port of the node's P2P listener.
func (n *Node) P2PAddr() string { return fmt.Sprintf("127.0.0.1:%d", n.P2PPort) }

// Client is an HTTP-POST RPC client of the running node.
func (n *Node) Client() *rpcclient.Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.client
}

// Log returns what btcd printed so far.
func (n *Node) Log() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		return ""
	}
	return n.proc.Log()
}

// Generate mines n blocks with btcd's own CPU miner (to MiningAddress).
func (n *Node) Generate(count uint32) []*chainhash.Hash {
	n.t.Helper()
	hashes, err := n.Client().Generate(count)
	if err != nil {
		n.t.Fatalf("btcdtest: generate %d: %v", count, err)
	}
	return hashes
}

// WaitHeight waits until the node's best height is at least h.
func (n *Node) WaitHeight(ctx context.Context, h int64) error {
	for {
		got, err := n.Client().GetBlockCount()
		if err == nil && got >= h {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("btcdtest: height %d not reached (at %d, %w): %w", h, got, err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (n *Node) halt(sig syscall.Signal) {
	n.mu.Lock()
	p, c := n.proc, n.client
	n.client = nil
	n.mu.Unlock()
	if c != nil {
		c.Shutdown()
	}
	if p != nil {
		p.Halt(sig, 30*time.Second)
	}
}

// Stop stops btcd gracefully (SIGINT) and waits for it. Idempotent.
func (n *Node) Stop() { n.halt(syscall.SIGINT) }

// Kill stops btcd with SIGKILL.
func (n *Node) Kill() { n.halt(syscall.SIGKILL) }

// Restart starts btcd again on the same data directory and ports. On
// regtest btcd starts over from genesis (it deletes its regtest chain at
// start); on simnet the chain is kept.
func (n *Node) Restart() {
	n.t.Helper()
	n.Stop()
	n.start()
}
