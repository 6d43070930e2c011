package bcointest

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/stratumd/stratumd/internal/btcdtest"
	"github.com/stratumd/stratumd/internal/testutil"
)

// RPCUser and APIKey are the credentials of every test node (bcoin checks
// the password only).
const (
	RPCUser = "stratumd"
	APIKey  = "stratumd-test"
)

// regtestP2PKH is bcoin 1.0.2's regtest P2PKH address prefix.
const regtestP2PKH = 0x3c

// MiningAddress is the P2PKH address of btcdtest.KeyOneHash160 in bcoin's
// regtest format: what Generate mines to.
func MiningAddress() string {
	h, _ := hex.DecodeString(btcdtest.KeyOneHash160)
	return base58.CheckEncode(h, regtestP2PKH)
}

// Script returns the path of the pinned bcoin's bin/node: $STRATUMD_BCOIN,
// or what scripts/bcoin.sh installs (run once per test binary).
var Script = sync.OnceValues(func() (string, error) {
	return testutil.ScriptOutput("STRATUMD_BCOIN", "bcoin.sh")
})

// Node is one running bcoin.
type Node struct {
	t       testing.TB
	script  string
	Prefix  string
	RPCPort int

	http *http.Client

	mu   sync.Mutex
	proc *testutil.Proc
}

// Start launches bcoin on regtest (in memory) and waits until its RPC
// answers.
func Start(t testing.TB) *Node {
	t.Helper()
	script, err := Script()
	if err != nil {
		t.Fatalf("bcointest: %v", err)
	}
	n := &Node{t: t, script: script, Prefix: t.TempDir(), RPCPort: btcdtest.FreePort(t),
		http: &http.Client{Timeout: 60 * time.Second}}
	t.Cleanup(n.Stop)
	n.start()
	return n
}

func (n *Node) start() {
	n.t.Helper()
	args := []string{n.script,
		"--network=regtest", "--memory=true", "--prefix=" + n.Prefix, "--no-wallet",
		"--listen=false", "--workers=false",
		"--http-host=127.0.0.1", fmt.Sprintf("--http-port=%d", n.RPCPort), "--api-key=" + APIKey,
		"--log-level=info", "--log-file=false",
	}
	cmd := exec.Command("node", args...)
	// bcoin reads BCOIN_* variables; the test's environment must not
	// change the node.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BCOIN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	p, err := testutil.StartProc(cmd)
	if err != nil {
		n.t.Fatalf("bcointest: %v", err)
	}
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	if err := p.WaitReady(60*time.Second, func() error { return n.Call("getblockcount", nil, nil) }); err != nil {
		n.t.Fatalf("bcointest: %v", err)
	}
}

// RPCAddr is host:port of bcoin's HTTP JSON-RPC server.
func (n *Node) RPCAddr() string { return fmt.Sprintf("127.0.0.1:%d", n.RPCPort) }

// RPCError is a JSON-RPC error answer.
type RPCError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Error implements error.
func (e *RPCError) Error() string { return fmt.Sprintf("bcoin RPC error %d: %s", e.Code, e.Message) }

// Call runs one JSON-RPC call and decodes its result into out (if not
// nil). An error answer is returned as *RPCError.
func (n *Node) Call(method string, params []any, out any) error {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"method": method, "params": params, "id": 1})
	if err != nil {
		return fmt.Errorf("bcointest: %s: %w", method, err)
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+n.RPCAddr()+"/", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("bcointest: %s: %w", method, err)
	}
	req.SetBasicAuth(RPCUser, APIKey)
	resp, err := n.http.Do(req)
	if err != nil {
		return fmt.Errorf("bcointest: %s: %w", method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("bcointest: %s: %w", method, err)
	}
	var r struct {
		Result json.RawMessage `json:"result"`
		Error  *RPCError       `json:"error"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("bcointest: %s: HTTP %d %q: %w", method, resp.StatusCode, b, err)
	}
	if r.Error != nil {
		return fmt.Errorf("bcointest: %s: %w", method, r.Error)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(r.Result, out); err != nil {
		return fmt.Errorf("bcointest: %s result: %w", method, err)
	}
	return nil
}

// Log returns what bcoin printed so far.
func (n *Node) Log() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		return ""
	}
	return n.proc.Log()
}

// Generate mines count blocks with bcoin's own miner (to MiningAddress)
// and returns their hashes.
func (n *Node) Generate(count int) []chainhash.Hash {
	n.t.Helper()
	var hexes []string
	if err := n.Call("generatetoaddress", []any{count, MiningAddress()}, &hexes); err != nil {
		n.t.Fatalf("bcointest: generate %d: %v\n%s", count, err, n.Log())
	}
	hashes := make([]chainhash.Hash, len(hexes))
	for i, h := range hexes {
		p, err := chainhash.NewHashFromStr(h)
		if err != nil {
			n.t.Fatalf("bcointest: generate: hash %q: %v", h, err)
		}
		hashes[i] = *p
	}
	return hashes
}

// BestBlockHash is bcoin's best block hash.
func (n *Node) BestBlockHash() (chainhash.Hash, error) {
	var s string
	if err := n.Call("getbestblockhash", nil, &s); err != nil {
		return chainhash.Hash{}, err
	}
	h, err := chainhash.NewHashFromStr(s)
	if err != nil {
		return chainhash.Hash{}, fmt.Errorf("bcointest: getbestblockhash %q: %w", s, err)
	}
	return *h, nil
}

// Height is bcoin's best height.
func (n *Node) Height() (int64, error) {
	var h int64
	err := n.Call("getblockcount", nil, &h)
	return h, err
}

// WaitBest waits until bcoin's best block is hash.
func (n *Node) WaitBest(ctx context.Context, hash chainhash.Hash) error {
	for {
		best, err := n.BestBlockHash()
		if err == nil && best == hash {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("bcointest: best block not %s: %w (last error: %w)", hash, ctx.Err(), err)
			}
			return fmt.Errorf("bcointest: best block %s, not %s: %w", best, hash, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Stop stops bcoin (SIGINT) and waits for it. Idempotent.
func (n *Node) Stop() {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p != nil {
		p.Halt(syscall.SIGINT, 30*time.Second)
	}
}
