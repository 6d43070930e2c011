package rpcsource

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// fakeCore is an HTTP JSON-RPC server that answers as Bitcoin Core does:
// JSON-RPC 1.0 envelopes, RPC errors with HTTP 500 (404 for unknown
// methods), 401 without a body for bad credentials, and the recorded
// replies of testdata/core. Its chain is a tip hash and height.
type fakeCore struct {
	t   testing.TB
	srv *httptest.Server

	mu           sync.Mutex
	user, pass   string
	tip          chainhash.Hash
	height       int64
	gbt          []byte    // getblocktemplate result
	gbtErr       *RPCError // getblocktemplate error, if set
	submits      []string  // queued submitblock results, popped in order
	submitted    []string  // block hex received
	down         bool      // answer 503 with a plain-text body
	unauthorized int       // 401s sent
	calls        map[string]int
	longPoll     chan []byte // a long poll returns the result sent here
}

// newFakeCore starts a fake regtest Core at genesis serving the recorded
// template.
func newFakeCore(t testing.TB, user, pass string) *fakeCore {
	t.Helper()
	gbt, err := os.ReadFile("testdata/core/getblocktemplate-regtest.json")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeCore{t: t, user: user, pass: pass, tip: *chaincfg.RegressionNetParams.GenesisHash, gbt: gbt,
		calls: make(map[string]int), longPoll: make(chan []byte)}
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
	down := f.down
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
		f.reply(w, req.ID, nil, &RPCError{Code: -32700, Message: "Parse error"})
		return
	}
	f.mu.Lock()
	f.calls[req.Method]++
	f.mu.Unlock()
	result, rerr := f.answer(r, req.Method, req.Params)
	f.reply(w, req.ID, result, rerr)
}

// answer computes a method's result.
func (f *fakeCore) answer(r *http.Request, method string, params []json.RawMessage) (any, *RPCError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch method {
	case "getnetworkinfo":
		raw, err := os.ReadFile("testdata/core/getnetworkinfo.json")
		if err != nil {
			f.t.Error(err)
		}
		return json.RawMessage(raw), nil
	case "getblockhash":
		if len(params) != 1 || string(params[0]) != "0" {
			return nil, &RPCError{Code: -8, Message: "Block height out of range"}
		}
		return chaincfg.RegressionNetParams.GenesisHash.String(), nil
	case "getbestblockhash":
		return f.tip.String(), nil
	case "getblockheader":
		var hash string
		if len(params) < 1 || json.Unmarshal(params[0], &hash) != nil || hash != f.tip.String() {
			return nil, &RPCError{Code: -5, Message: "Block not found"}
		}
		// The fields of Core 27's verbose getblockheader.
		return map[string]any{
			"hash": hash, "confirmations": 1, "height": f.height, "version": 536870912, "versionHex": "20000000",
			"merkleroot": "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
			"time":       1718000000, "mediantime": 1718000000, "nonce": 2, "bits": "207fffff",
			"difficulty": 4.656542373906925e-10, "nTx": 1,
			"chainwork": fmt.Sprintf("%064x", 2*(f.height+1)),
		}, nil
	case "getblocktemplate":
		var req gbtRequest
		if len(params) != 1 || json.Unmarshal(params[0], &req) != nil {
			return nil, &RPCError{Code: -8, Message: "getblocktemplate must be called with the segwit rule set"}
		}
		if f.gbtErr != nil {
			return nil, f.gbtErr
		}
		if req.LongPollID != "" {
			f.mu.Unlock()
			var res []byte
			select {
			case res = <-f.longPoll:
			case <-r.Context().Done():
			}
			f.mu.Lock()
			if res == nil {
				return nil, &RPCError{Code: -1, Message: "cancelled"}
			}
			return json.RawMessage(res), nil
		}
		return json.RawMessage(f.gbt), nil
	case "submitblock":
		var blockHex string
		if len(params) < 1 || json.Unmarshal(params[0], &blockHex) != nil {
			return nil, &RPCError{Code: -1, Message: "submitblock \"hexdata\""}
		}
		if _, err := hex.DecodeString(blockHex); err != nil {
			return nil, &RPCError{Code: -22, Message: "Block decode failed"}
		}
		f.submitted = append(f.submitted, blockHex)
		if len(f.submits) == 0 {
			return nil, nil
		}
		res := f.submits[0]
		f.submits = f.submits[1:]
		return json.RawMessage(res), nil
	default:
		return nil, &RPCError{Code: -32601, Message: "Method not found"}
	}
}

// reply writes a JSON-RPC 1.0 reply as Core does.
func (f *fakeCore) reply(w http.ResponseWriter, id json.RawMessage, result any, rerr *RPCError) {
	if id == nil {
		id = json.RawMessage("null")
	}
	w.Header().Set("Content-Type", "application/json")
	env := map[string]any{"result": result, "error": nil, "id": id}
	if rerr != nil {
		env["result"], env["error"] = nil, rerr
		if rerr.Code == -32601 {
			w.WriteHeader(http.StatusNotFound)
		} else {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}
	if err := json.NewEncoder(w).Encode(env); err != nil {
		f.t.Logf("fake core: write: %v", err)
	}
}

// templateOn returns the recorded template moved onto tip at height+1.
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
