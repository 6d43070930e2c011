package rpcsource

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// coreDir holds the replies captured from real Bitcoin Core nodes; its
// README names the source of each file.
const coreDir = "testdata/core"

// coreError is one of testdata/core/errors.json: an error reply of Core,
// its HTTP status and its exact body.
type coreError struct {
	Name   string `json:"name"`
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// loadCoreErrors reads testdata/core/errors.json by name.
func loadCoreErrors(t testing.TB) map[string]coreError {
	t.Helper()
	var list []coreError
	if err := json.Unmarshal(readCore(t, "errors.json"), &list); err != nil {
		t.Fatal(err)
	}
	m := make(map[string]coreError, len(list))
	for _, e := range list {
		m[e.Name] = e
	}
	return m
}

// readCore reads a file of testdata/core.
func readCore(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(coreDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeCore is an HTTP JSON-RPC server standing in for Bitcoin Core, which
// cannot be installed here. It replays replies captured from real Core
// nodes (testdata/core; see its README for each file's source and what was
// adapted) byte for byte, and models the Core behaviour stratumd depends
// on, as Core's source and functional tests show it:
//
//   - the envelope: {"result":…,"error":…,"id":…} and a newline, the
//     result of a success replayed as captured; an RPC error with HTTP 500
//     (404 for an unknown method), as httprpc.cpp's JSONErrorReply answers
//     a JSON-RPC 1.0 request; 401 without a body for bad credentials; and,
//     with down set, the plain-text 503 of a full work queue;
//   - getblocktemplate's checks in mining.cpp's order: the long-poll wait
//     first, then the signet rule on signet, then the segwit rule, each
//     refusal answered with Core's error (errors.json);
//   - long polling (mining_getblocktemplate_longpoll.py): a request with a
//     longpollid waits until the test releases it (a new tip or a mempool
//     change) and the id it carried is recorded, so that tests check that
//     it is the longpollid of the reply before;
//   - submitblock: the queued BIP 22 answers (submitblock.json lists the
//     ones Core gives, with the tests that see a live node give them).
//
// Its chain is a tip hash and height; it validates no block. Tests against
// real node binaries (btcd_test.go) cover what a fake cannot.
type fakeCore struct {
	t   testing.TB
	srv *httptest.Server
	net *chaincfg.Params

	errs map[string]coreError

	mu           sync.Mutex
	user, pass   string
	tip          chainhash.Hash
	height       int64
	gbt          []byte   // getblocktemplate result, replayed byte for byte
	gbtErr       string   // name of the errors.json reply getblocktemplate gives, if set
	rpcErr       string   // name of the errors.json reply every call gives, if set
	submits      []string // queued submitblock results, popped in order
	submitted    []string // block hex received
	down         bool     // answer 503 with a plain-text body
	unauthorized int      // 401s sent
	calls        map[string]int
	gbtRules     [][]string  // rules of each getblocktemplate request
	longPollIDs  []string    // longpollid of each long poll request
	longPoll     chan []byte // a long poll returns the result sent here
}

// newFakeCore starts a fake regtest Core at genesis serving the regtest
// template of testdata/core.
func newFakeCore(t testing.TB, user, pass string) *fakeCore {
	t.Helper()
	return newFakeCoreOn(t, user, pass, &chaincfg.RegressionNetParams, "getblocktemplate-regtest.json")
}

// newFakeCoreOn starts a fake Core on net at genesis serving the template
// file of testdata/core.
func newFakeCoreOn(t testing.TB, user, pass string, net *chaincfg.Params, gbtFile string) *fakeCore {
	t.Helper()
	f := &fakeCore{t: t, net: net, errs: loadCoreErrors(t), user: user, pass: pass, tip: *net.GenesisHash,
		gbt: readCore(t, gbtFile), calls: make(map[string]int), longPoll: make(chan []byte)}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCore) set(fn func(f *fakeCore)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// ServeHTTP implements http.Handler.
func (f *fakeCore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	down, rpcErr := f.down, f.rpcErr
	user, pass := f.user, f.pass
	f.mu.Unlock()
	if down {
		http.Error(w, "Work queue depth exceeded", http.StatusServiceUnavailable)
		return
	}
	if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
		f.mu.Lock()
		f.unauthorized++
		f.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="jsonrpc"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var req struct {
		ID     json.RawMessage   `json:"id"`
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &req); err != nil {
		f.t.Errorf("fake core: request %q: %v", body, err)
		return
	}
	if req.ID == nil {
		req.ID = json.RawMessage("null")
	}
	f.mu.Lock()
	f.calls[req.Method]++
	f.mu.Unlock()
	if rpcErr != "" {
		f.writeError(w, rpcErr)
		return
	}
	result, errName := f.answer(r, req.Method, req.Params)
	if errName != "" {
		f.writeError(w, errName)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if _, err := fmt.Fprintf(w, "{\"result\":%s,\"error\":null,\"id\":%s}\n", result, req.ID); err != nil {
		f.t.Logf("fake core: write: %v", err)
	}
}

// writeError replays the named error of errors.json: its status and body.
func (f *fakeCore) writeError(w http.ResponseWriter, name string) {
	e, ok := f.errs[name]
	if !ok {
		f.t.Errorf("fake core: no error %q in errors.json", name)
		e = f.errs["method-not-found"]
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	if _, err := io.WriteString(w, e.Body+"\n"); err != nil {
		f.t.Logf("fake core: write: %v", err)
	}
}

// marshal encodes a computed result.
func (f *fakeCore) marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		f.t.Error(err)
	}
	return b
}

// answer returns a method's result, or the name of the error Core gives.
func (f *fakeCore) answer(r *http.Request, method string, params []json.RawMessage) ([]byte, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch method {
	case "getnetworkinfo":
		return readCore(f.t, "getnetworkinfo-0.20-testnet.json"), ""
	case "getblockhash":
		if len(params) != 1 || string(params[0]) != "0" {
			return nil, "height-out-of-range"
		}
		return f.marshal(f.net.GenesisHash.String()), ""
	case "getbestblockhash":
		return f.marshal(f.tip.String()), ""
	case "getblockheader":
		var hash string
		if len(params) < 1 || json.Unmarshal(params[0], &hash) != nil || hash != f.tip.String() {
			return nil, "block-not-found"
		}
		// The fields of Core 27's verbose getblockheader.
		return f.marshal(map[string]any{
			"hash": hash, "confirmations": 1, "height": f.height, "version": 536870912, "versionHex": "20000000",
			"merkleroot": "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
			"time":       1718000000, "mediantime": 1718000000, "nonce": 2, "bits": "207fffff",
			"difficulty": 4.656542373906925e-10, "nTx": 1,
			"chainwork": fmt.Sprintf("%064x", 2*(f.height+1)),
		}), ""
	case "getblocktemplate":
		var req gbtRequest
		if len(params) != 1 || json.Unmarshal(params[0], &req) != nil {
			return nil, "segwit-rule"
		}
		f.gbtRules = append(f.gbtRules, req.Rules)
		if req.LongPollID != "" {
			f.longPollIDs = append(f.longPollIDs, req.LongPollID)
			f.mu.Unlock()
			var res []byte
			select {
			case res = <-f.longPoll:
			case <-r.Context().Done():
			}
			f.mu.Lock()
			if res == nil {
				return nil, "shutting-down"
			}
			if e := f.checkRules(req.Rules); e != "" {
				return nil, e
			}
			return res, ""
		}
		if e := f.checkRules(req.Rules); e != "" {
			return nil, e
		}
		if f.gbtErr != "" {
			return nil, f.gbtErr
		}
		return f.gbt, ""
	case "submitblock":
		var blockHex string
		if len(params) < 1 || json.Unmarshal(params[0], &blockHex) != nil {
			return nil, "block-decode"
		}
		if _, err := hex.DecodeString(blockHex); err != nil {
			return nil, "block-decode"
		}
		f.submitted = append(f.submitted, blockHex)
		if len(f.submits) == 0 {
			return []byte("null"), ""
		}
		res := f.submits[0]
		f.submits = f.submits[1:]
		return []byte(res), ""
	default:
		return nil, "method-not-found"
	}
}

// checkRules refuses a template request as Core's mining.cpp does: the
// signet rule on signet first, then the segwit rule.
func (f *fakeCore) checkRules(rules []string) string {
	if f.net.Name == chaincfg.SigNetParams.Name && !slices.Contains(rules, "signet") {
		return "signet-rule"
	}
	if !slices.Contains(rules, "segwit") {
		return "segwit-rule"
	}
	return ""
}

// templateOn returns the template moved onto tip at height+1, with Core's
// longpollid for it (the tip's hash and a transactions-updated counter).
// The flow tests use it to play a chain that moves; the moved fields are
// the only ones that differ from the captured reply.
func (f *fakeCore) templateOn(tip chainhash.Hash, height int64) []byte {
	var m map[string]any
	if err := json.Unmarshal(f.gbt, &m); err != nil {
		f.t.Fatal(err)
	}
	m["previousblockhash"] = tip.String()
	m["height"] = height + 1
	m["longpollid"] = fmt.Sprintf("%s%d", tip, height)
	b, err := json.Marshal(m)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}
